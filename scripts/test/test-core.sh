#!/usr/bin/env bash
# The FTP core's unit tests as a machine without a JDK, libhdfs or MIT krb5 runs them:
#
#   cargo test --workspace --no-default-features --target-dir target/core
#
# run with JAVA_HOME unset and a `java` on PATH that fails (hdfs-sys finds its JDK through one or the
# other), then proven: no hdfs-sys, krb5-sys or java-locator in the build graph, and no test binary
# that links libjvm, libhdfs or libkrb5. target/core keeps its own cache, so the product binary in
# target/release is never replaced by a core build.
set -euo pipefail
cd "$(dirname "$0")/../.."

CARGO=${CARGO:-cargo}
TARGET=target/core
CORE_PACKAGES=(--workspace --no-default-features)
CORE=("${CORE_PACKAGES[@]}" --target-dir "$TARGET")

fail() { echo "test-core: $*" >&2; exit 1; }

# Any use of a JDK during the build fails loudly.
no_jdk="$PWD/$TARGET/no-jdk"
mkdir -p "$no_jdk"
for tool in java javac; do
    printf '#!/bin/sh\necho "test-core: %s called; the core must build without a JDK" >&2\nexit 1\n' "$tool" \
        > "$no_jdk/$tool"
    chmod +x "$no_jdk/$tool"
done
export PATH="$no_jdk:$PATH"
unset JAVA_HOME HDFSFTPD_HADOOP_JARS CLASSPATH

forbidden_crates=$($CARGO tree "${CORE_PACKAGES[@]}" -e normal,build --prefix none \
    | grep -E '^(hdfs-sys|krb5-sys|java-locator) ' | sort -u || true)
[ -z "$forbidden_crates" ] || fail "the core build graph holds $(echo "$forbidden_crates" | tr '\n' ' ')"

$CARGO test "${CORE[@]}"

binaries=$($CARGO test "${CORE[@]}" --no-run --message-format=json \
    | python3 -c 'import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and message.get("executable"):
        print(message["executable"])')
[ -n "$binaries" ] || fail "no test binary was built"
for binary in $binaries; do
    linked=$(readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
    if echo "$linked" | grep -E '^lib(jvm|hdfs|krb5|gssapi_krb5|k5crypto)\b'; then
        fail "$binary links the libraries above"
    fi
    echo "test-core: $(basename "$binary") links only: $(echo $linked)"
done
