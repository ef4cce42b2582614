#!/usr/bin/env bash
# Installs everything the project needs, idempotently; safe to run again.
#
#   tools/setup.sh            host part (libtorch for tch) + firmware part (QEMU, Cortex-M core library)
#   tools/setup.sh host       only libtorch
#   tools/setup.sh firmware   only QEMU and the thumbv7em toolchain
#
# libtorch comes from PyPI's torch wheel (the only source this machine reaches), installed into a venv
# in a per-user cache keyed by version, so every clone of the project reuses it. The script then writes
# `.cargo/config.toml`'s [env] (LIBTORCH, rpath via build.rs) so plain `cargo run` works afterwards.
set -euo pipefail

TORCH_VERSION=2.13.0
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

setup_host() {
    if [ ! -f "$VENV/.complete" ]; then
        log "installing torch==$TORCH_VERSION (CPU) into $VENV (about 2 minutes, 4.7 GB)"
        rm -rf "$VENV"
        apt_install python3-venv  # Debian's python3 has no venv (ensurepip) without it
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check "torch==$TORCH_VERSION"
        touch "$VENV/.complete"
    fi
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
    apt_install qemu-system-arm
    if rustup target list --installed 2>/dev/null | grep -q thumbv7em-none-eabihf; then
        log "thumbv7em-none-eabihf: rustup target present"
    elif rustup target add thumbv7em-none-eabihf >/dev/null 2>&1; then
        log "thumbv7em-none-eabihf: installed with rustup"
    else
        # rustup cannot download here; Debian's toolchain ships core's source, so build-std works.
        apt_install rustc-web cargo-web rust-web-src
        log "thumbv7em-none-eabihf: Debian rustc-web + build-std (tools/cargo-thumb)"
    fi
    if ! command -v defmt-print >/dev/null 2>&1; then
        log "cargo install defmt-print"
        cargo install --quiet --locked defmt-print
    fi
}

case "$what" in
    host) setup_host ;;
    firmware) setup_firmware ;;
    all) setup_host; setup_firmware ;;
    *) echo "usage: $0 [host|firmware|all]" >&2; exit 2 ;;
esac
