#!/usr/bin/env bash
# Sets up (idempotently) and runs every test: the host workspace (unit, integration and equivalence
# tests, the CLI's hostile cases, the fuzz corpus replayed), the same for core-infer and the hostile
# inputs with overflow checks on, clippy (no warnings anywhere, no-panic rules in core-infer), the API docs of core-infer,
# core-infer built for a Cortex-M4F, the firmware in QEMU on each core (M3, M4, M7, M33, M55), and the C API (host C test, C firmware in QEMU).
# `.ci/run` calls this script.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

step "set-up"
bash tools/setup.sh all

step "host tests (release build: libtorch and tract compile once)"
cargo test --release --workspace

step "hostile inputs and kernel proptests again with overflow checks (profile checked): an overflow fails"
cargo test --profile checked -p core-infer -p fuzz-models

step "core-infer: clippy denies unwrap/expect/panic/indexing in non-test code"
cargo clippy --release -p core-infer --features std -- -D warnings

step "workspace: clippy on every crate, tests and benches included, without warnings"
cargo clippy --release --workspace --all-targets -- -D warnings

step "core-infer: its API docs build without warnings (no broken links)"
RUSTDOCFLAGS="-D warnings" cargo doc --release --no-deps -p core-infer --features std

step "core-infer builds for thumbv7em-none-eabihf (no_std, no alloc)"
bash tools/cargo-thumb.sh build --release -p core-infer --features defmt,dsp
bash tools/cargo-thumb.sh build --release -p core-infer --no-default-features --features dsp
if bash tools/cargo-thumb.sh --rustup; then
    step "core-infer: clippy on the Arm DSP kernels (thumbv7em), the same no-panic rules"
    cargo clippy --release -p core-infer --no-default-features --features dsp --target thumbv7em-none-eabihf -- -D warnings
    step "core-infer: clippy on the Helium kernels (thumbv8m.main for the Cortex-M55), the same rules"
    CARGO_TARGET_THUMBV8M_MAIN_NONE_EABIHF_RUSTFLAGS="-C target-cpu=cortex-m55" CARGO_TARGET_DIR=target/clippy-m55 \
        cargo clippy --release -p core-infer --no-default-features --features mve --target thumbv8m.main-none-eabihf -- -D warnings
fi

if [ -d firmware-example ] && [ -f firmware-example/Cargo.toml ]; then
    step "firmware in QEMU on every supported core (build, run, diff against the expected output; one table)"
    bash tools/firmware.sh matrix
fi

step "C API: header current, clippy, host C test (gcc) and the C firmware in QEMU, both diffed against expected.txt"
(cd core-infer/capi && cargo clippy --quiet --release -- -D warnings)
bash tools/capi.sh test
step "all tests passed"
