#!/usr/bin/env bash
# Provisions what the HDFS backend needs to build and to be tested on a machine without Hadoop:
#   - JDK 17 from Debian (libhdfs's build needs jni.h and javac; Hadoop 3.3 fails on newer JDKs);
#   - the Hadoop 3.3 client jars, taken from PyPI's pyspark source distribution (no Hadoop
#     distribution is reachable here), cached outside the repository.
# Idempotent; runs unattended (CI=true, no stdin). Prints the jar directory on its last line.
set -euo pipefail

PYSPARK_VERSION=3.5.3
CACHE="${HDFSFTPD_CACHE:-$HOME/.cache/hdfsftpd}"
JAR_DIR="$CACHE/hadoop-jars"
# The client jars libhdfs needs: without commons-lang3 libhdfs segfaults, without the logging jars the
# JVM fails with NoClassDefFoundError. log4j2 makes Hadoop's own messages visible.
JARS=(
    hadoop-client-api-3.3.4.jar
    hadoop-client-runtime-3.3.4.jar
    commons-lang3-3.12.0.jar
    commons-logging-1.1.3.jar
    slf4j-api-2.0.7.jar
    log4j-api-2.20.0.jar
    log4j-core-2.20.0.jar
    log4j-slf4j2-impl-2.20.0.jar
)

die() {
    echo "provision-hadoop: error: $*" >&2
    exit 1
}

say() {
    echo "provision-hadoop: $*" >&2
}

java_major() {
    "$1" -version 2>&1 | sed -n 's/^javac \([0-9]*\).*/\1/p'
}

ensure_jdk17() {
    if command -v javac >/dev/null && [ "$(java_major javac)" = 17 ]; then
        return
    fi
    if [ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/javac ] || [ -x /usr/lib/jvm/java-17-openjdk-arm64/bin/javac ]; then
        die "JDK 17 is installed but 'javac' on PATH is $(javac -version 2>&1 || echo missing); put JDK 17 first on PATH or set JAVA_HOME"
    fi
    say "installing openjdk-17-jdk-headless from Debian"
    [ "$(id -u)" = 0 ] || die "JDK 17 is missing and installing it needs root (apt-get install openjdk-17-jdk-headless)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q </dev/null >&2 || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends openjdk-17-jdk-headless </dev/null >&2 \
        || die "apt-get install openjdk-17-jdk-headless failed"
    [ "$(java_major javac)" = 17 ] || die "after installing openjdk-17-jdk-headless, 'javac' is not version 17"
}

jars_present() {
    local jar
    for jar in "${JARS[@]}"; do
        [ -s "$JAR_DIR/$jar" ] || return 1
    done
}

fetch_jars() {
    local work="$CACHE/pyspark-download"
    rm -rf "$work"
    mkdir -p "$work" "$JAR_DIR"
    say "downloading pyspark==$PYSPARK_VERSION source distribution (~317 MB) for its Hadoop client jars"
    python3 -m pip download --quiet --no-deps --no-binary :all: --no-input \
        -d "$work" "pyspark==$PYSPARK_VERSION" </dev/null >&2 \
        || die "pip download pyspark==$PYSPARK_VERSION failed"
    local sdist="$work/pyspark-$PYSPARK_VERSION.tar.gz"
    [ -s "$sdist" ] || die "pip download left no $sdist"
    local members=()
    local jar
    for jar in "${JARS[@]}"; do
        members+=("pyspark-$PYSPARK_VERSION/deps/jars/$jar")
    done
    tar --no-same-owner -xzf "$sdist" -C "$work" "${members[@]}" || die "the sdist lacks some of: ${JARS[*]}"
    for jar in "${JARS[@]}"; do
        mv "$work/pyspark-$PYSPARK_VERSION/deps/jars/$jar" "$JAR_DIR/$jar"
    done
    rm -rf "$work"
}

ensure_jdk17
if ! jars_present; then
    fetch_jars
fi
jars_present || die "jars missing from $JAR_DIR after provisioning"
say "JDK 17 and Hadoop client jars ready"
echo "$JAR_DIR"
