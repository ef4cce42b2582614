#!/usr/bin/env bash
# Runs cargo for thumbv7em-none-eabihf: with rustup's target when it is installed, else with Debian's
# rustc-web toolchain, which ships core's source, through -Zbuild-std=core.
# The one place that makes this choice (tools/setup.sh installs one or the other):
#   tools/cargo-thumb.sh --rustup    exits 0 if rustup's target is installed (its clippy can then check the
#                                    Arm code too), 1 if the Debian build-std fallback is in use
# THUMB_TARGET picks another Arm target (tools/firmware.sh --core: thumbv7m-none-eabi for the Cortex-M3).
set -euo pipefail
target=${THUMB_TARGET:-thumbv7em-none-eabihf}
rustup_target() { rustup target list --installed 2>/dev/null | grep -q "$target"; }
if [ "${1:-}" = "--rustup" ]; then rustup_target; exit; fi
if rustup_target; then
    exec cargo "$@" --target "$target"
fi
export RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc
exec /usr/bin/cargo "$@" --target "$target" -Zbuild-std=core
