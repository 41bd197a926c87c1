#!/bin/sh
# Installs what building hdfsftpd needs on Debian/Ubuntu, only where it is missing. Idempotent.
set -eu

need=""
for pkg in pkg-config gcc libssl-dev libcrypt-dev libkrb5-dev openjdk-17-jdk-headless; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need="$need $pkg"
done
if [ -n "$need" ]; then
    echo "install-build-deps: installing$need"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "install-build-deps: cargo (Rust toolchain) is not installed; see https://rustup.rs" >&2
    exit 1
fi
# `make lint` runs rustfmt and clippy, which rustup's minimal profile leaves out.
if command -v rustup >/dev/null 2>&1; then
    cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
    cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
fi
