#!/usr/bin/env bash
# The HDFS backend's tests: provisions JDK 17 and the Hadoop client jars, runs the ffi wrapper's unit tests
# (real JVM against file:///) and the end-to-end pytest suite against the release binary.
set -euo pipefail
cd "$(dirname "$0")/.."
HDFSFTPD_HADOOP_JARS="$(scripts/provision-hadoop.sh | tail -n 1)"
export HDFSFTPD_HADOOP_JARS
cargo test -p hdfsftpd-ffi hdfs::
cargo build --release
HDFSFTPD_BIN="$PWD/target/release/hdfsftpd" python3 -m pytest -q tests/test_hdfs.py "$@"
