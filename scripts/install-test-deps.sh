#!/usr/bin/env bash
# Install what the integration tests (tests/*.py) need, only if missing.
# Idempotent and non-interactive (safe under CI=true with no stdin).
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive

# command -> Debian package providing it
declare -A need=(
  [curl]=curl
  [lftp]=lftp
  [openssl]=openssl
  [truncate]=coreutils
  [vsftpd]=vsftpd  # tests/test_bench.py runs the benchmark's quick mode
)
missing=()
for cmd in "${!need[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    missing+=("${need[$cmd]}")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-test-deps: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi
  $SUDO apt-get update -q </dev/null
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
fi

PY="${PYTHON:-python3}"
if ! "$PY" -c 'import pytest, pytest_timeout' >/dev/null 2>&1; then
  echo "install-test-deps: installing python test requirements" >&2
  "$PY" -m pip install -q --disable-pip-version-check --root-user-action=ignore -r tests/requirements.txt </dev/null
fi

echo "install-test-deps: ok (curl $(command -v curl), lftp $(command -v lftp))" >&2
