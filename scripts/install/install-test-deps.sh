#!/usr/bin/env bash
# Install what the integration tests (tests/*.py) need, only if missing.
# Idempotent and non-interactive (safe under CI=true with no stdin).
set -euo pipefail
cd "$(dirname "$0")/../.."

export DEBIAN_FRONTEND=noninteractive

# command -> Debian package providing it
declare -A need=(
  [curl]=curl
  [lftp]=lftp
  [openssl]=openssl
  [truncate]=coreutils
  [vsftpd]=vsftpd  # tests/test_bench.py runs the benchmark's quick mode
  [wget]=wget      # tests/test_cli_clients.py
  [tnftp]=tnftp    # tests/test_cli_clients.py: the classic BSD ftp command
  [javac]=openjdk-17-jdk-headless  # tests/test_java_clients.py (and libhdfs, scripts/cluster/provision-hadoop.sh)
  [haproxy]=haproxy  # tests/test_multinode.py balances over three nodes
  [rsyslogd]=rsyslog  # tests/test_ops.py: --log-file syslog against a real syslog daemon
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
# gssapi (tests/gss_client.py) builds against libkrb5-dev, which the build dependencies include.
if ! "$PY" -c 'import pytest, pytest_timeout, gssapi' >/dev/null 2>&1; then
  echo "install-test-deps: installing python test requirements" >&2
  "$PY" -m pip install -q --disable-pip-version-check --root-user-action=ignore -r tests/requirements.txt </dev/null
fi

# Apache commons-net, the FTP client Java service applications embed (tests/test_java_clients.py),
# and commons-io, its one run-time dependency: from Maven Central into a cache outside the repository,
# each checked against its pinned SHA-256.
MAVEN_JARS=(
  "commons-net commons-net 3.13.0 9e88444afadc9467f0bf3d328f93b9538da35a9be05cdee430766e64fddbd6c5"
  "commons-io commons-io 2.21.0 7d643a2afea8b058b762aa6fb90e5b256f6c729739f8b3784c3370ddc609e88d"
)
maven_dir="${HDFSFTPD_CACHE:-$HOME/.cache/hdfsftpd}/maven"
for entry in "${MAVEN_JARS[@]}"; do
  read -r group artifact version sha256 <<<"$entry"
  jar="$maven_dir/$artifact-$version.jar"
  if echo "$sha256  $jar" | sha256sum -c --status 2>/dev/null; then
    continue
  fi
  echo "install-test-deps: fetching $artifact $version from Maven Central" >&2
  mkdir -p "$maven_dir"
  url="https://repo1.maven.org/maven2/${group//.//}/$artifact/$version/$artifact-$version.jar"
  curl -sSfL --retry 3 -o "$jar.part" "$url" </dev/null
  if ! echo "$sha256  $jar.part" | sha256sum -c --status; then
    rm -f "$jar.part"
    echo "install-test-deps: error: $url does not have the expected SHA-256" >&2
    exit 1
  fi
  mv "$jar.part" "$jar"
done

echo "install-test-deps: ok (curl $(command -v curl), lftp $(command -v lftp))" >&2
