#!/usr/bin/env bash
# Installs everything the project needs, idempotently; safe to run again.
#
#   tools/setup.sh            host part (libtorch for tch) + firmware part (QEMU, Cortex-M core library)
#   tools/setup.sh host       only libtorch
#   tools/setup.sh firmware   only QEMU, the thumbv7em and thumbv7m targets and the Arm GNU C toolchain (the C example)
#   tools/setup.sh pycaptcha  only the Python `captcha` library (for tools/pycaptcha.sh); prints its python
#   tools/setup.sh styles     that Python and Debian fonts (for tools/stylecaptcha.sh); prints its python
#   tools/setup.sh pretrain   that Python and the fonts of tools/pretrain.sh; prints its python
#   tools/setup.sh ort        ONNX Runtime from PyPI (the peer tools/bench.sh measures); prints its python
#
# libtorch comes from PyPI's torch wheel (the only source this machine reaches), installed into a venv
# in a per-user cache keyed by version, so every clone of the project reuses it. The script then writes
# `.cargo/config.toml`'s [env] (LIBTORCH, rpath via build.rs) so plain `cargo run` works afterwards.
set -euo pipefail

TORCH_VERSION=2.13.0
PYCAPTCHA_VERSION=0.7.1
PILLOW_VERSION=13.0.0
ORT_VERSION=1.31.1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${CAPTCHA_OCR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/captcha-ocr}
VENV=$CACHE/torch-$TORCH_VERSION
what=${1:-all}

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

apt_install() {
    # Installs Debian packages only if one of them is missing (apt-get update is slow).
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
    log "apt-get install ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

venv_install() {
    # A venv at $1 holding the PyPI packages $2..., unless a completed one is there already.
    local venv=$1; shift
    [ -f "$venv/.complete" ] && return 0
    log "installing $* into $venv"
    rm -rf "$venv"
    apt_install python3-venv  # Debian's python3 has no venv (ensurepip) without it
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
    touch "$venv/.complete"
}

setup_host() {
    [ -f "$VENV/.complete" ] || log "torch is about 2 minutes and 4.7 GB"
    venv_install "$VENV" "torch==$TORCH_VERSION"
    local torch_dir
    torch_dir=$(ls -d "$VENV"/lib/python3*/site-packages/torch | head -n 1)
    mkdir -p "$ROOT/.cargo"
    # Generated, not committed: paths differ per machine.
    cat > "$ROOT/.cargo/config.toml" <<CFG
# Written by tools/setup.sh; do not edit (re-run the script instead).
[env]
LIBTORCH = "$torch_dir"
LIBTORCH_BYPASS_VERSION_CHECK = "1"
CFG
    log "libtorch: $torch_dir (wired into .cargo/config.toml)"
}

setup_firmware() {
    # QEMU for the boards (qemu-system-misc: qemu-system-riscv32); the Arm GNU toolchain and newlib for the
    # C example (firmware-example/c).
    local packages=(qemu-system-arm qemu-system-misc gcc-arm-none-eabi libnewlib-arm-none-eabi)
    if ! apt_install "${packages[@]}"; then
        # Some machine images carry a newer qemu-utils (qemu-img, from backports) whose Breaks: rule refuses
        # Debian's own system emulators. The device figures are measured with Debian's QEMU (7.2), so
        # qemu-utils goes back to the emulators' version (qemu-img keeps working).
        local version sudo=""
        version=$(apt-cache policy qemu-system-arm | awk '/Candidate:/ {print $2}')
        [ "$(id -u)" -ne 0 ] && sudo=sudo
        log "the installed qemu-utils refuses qemu-system-arm $version: installing qemu-utils $version with it"
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --allow-downgrades \
            "${packages[@]}" "qemu-utils=$version" >/dev/null
    fi
    # thumbv7em: Cortex-M4 and M7 (DSP, FPU); thumbv7m: Cortex-M3; thumbv8m.main: Cortex-M33 and M55;
    # riscv32imac: RV32 (tools/firmware.sh --core, matrix)
    local target
    for target in thumbv7em-none-eabihf thumbv7m-none-eabi thumbv8m.main-none-eabihf riscv32imac-unknown-none-elf; do
        if rustup target list --installed 2>/dev/null | grep -q "$target"; then
            log "$target: rustup target present"
        elif rustup target add "$target" >/dev/null 2>&1; then
            log "$target: installed with rustup"
        else
            # rustup cannot download here; Debian's toolchain ships core's source, so build-std works.
            apt_install rustc-web cargo-web rust-web-src
            log "$target: Debian rustc-web + build-std (tools/cargo-thumb)"
        fi
    done
    if ! command -v defmt-print >/dev/null 2>&1; then
        log "cargo install defmt-print"
        cargo install --quiet --locked defmt-print
    fi
}

setup_pycaptcha() {
    local venv=$CACHE/pycaptcha-$PYCAPTCHA_VERSION
    venv_install "$venv" "captcha==$PYCAPTCHA_VERSION" "pillow==$PILLOW_VERSION"
    echo "$venv/bin/python"
}

# The style generator of tools/stylecaptcha.sh: the same Pillow, and several font families from Debian.
setup_styles() {
    apt_install fonts-dejavu-core fonts-liberation fonts-freefont-ttf >&2
    setup_pycaptcha
}

# The pretraining set's generator (tools/pretrain.sh): the same Pillow, and font families no benchmark
# style draws with.
setup_pretrain() {
    apt_install fonts-urw-base35 fonts-open-sans fonts-lato fonts-crosextra-carlito fonts-crosextra-caladea \
        fonts-roboto-unhinted fonts-cantarell fonts-comfortaa fonts-linuxlibertine >&2
    setup_pycaptcha
}

# ONNX Runtime (and onnx, which its quantization tools need) for tools/ort_bench.py.
setup_ort() {
    local venv=$CACHE/onnxruntime-$ORT_VERSION
    venv_install "$venv" "onnxruntime==$ORT_VERSION" onnx
    echo "$venv/bin/python"
}

case "$what" in
    host) setup_host ;;
    firmware) setup_firmware ;;
    pycaptcha) setup_pycaptcha ;;
    styles) setup_styles ;;
    pretrain) setup_pretrain ;;
    ort) setup_ort ;;
    all) setup_host; setup_firmware ;;
    *) echo "usage: $0 [host|firmware|pycaptcha|styles|pretrain|ort|all]" >&2; exit 2 ;;
esac
