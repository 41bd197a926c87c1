#!/usr/bin/env bash
# Provisions what the HDFS backend needs to build and to be tested on a machine without Hadoop:
#   - JDK 17 and Maven from Debian (libhdfs's build needs jni.h and javac; Hadoop fails on newer JDKs);
#   - from Maven Central, cached outside the repository:
#       client:  the Hadoop client jars hdfsftpd runs libhdfs on (scripts/cluster/hadoop-client/pom.xml);
#       cluster: the test cluster's jars, MiniDFSCluster and friends (scripts/cluster/hdfs-cluster/pom.xml).
# Idempotent; runs unattended (CI=true, no stdin). Prints the jar directory of the set asked for
# (client unless told) on its last line.
#   scripts/cluster/provision-hadoop.sh [client|cluster]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
CACHE="${HDFSFTPD_CACHE:-$HOME/.cache/hdfsftpd}"
set_name=${1:-client}

die() {
    echo "provision-hadoop: error: $*" >&2
    exit 1
}

say() {
    echo "provision-hadoop: $*" >&2
}

case "$set_name" in
    client) pom="$here/hadoop-client/pom.xml" ;;
    cluster) pom="$here/hdfs-cluster/pom.xml" ;;
    *) die "unknown jar set '$set_name' (client or cluster)" ;;
esac

java_major() {
    "$1" -version 2>&1 | sed -n 's/^javac \([0-9]*\).*/\1/p'
}

apt_install() {
    [ "$(id -u)" = 0 ] || die "$* missing, and installing it needs root (apt-get install $*)"
    say "installing $* from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q </dev/null >&2 || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends "$@" </dev/null >&2 || die "apt-get install $* failed"
}

ensure_jdk17() {
    if command -v javac >/dev/null && [ "$(java_major javac)" = 17 ]; then
        return
    fi
    if [ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/javac ] || [ -x /usr/lib/jvm/java-17-openjdk-arm64/bin/javac ]; then
        die "JDK 17 is installed but 'javac' on PATH is $(javac -version 2>&1 || echo missing); put JDK 17 first on PATH or set JAVA_HOME"
    fi
    apt_install openjdk-17-jdk-headless
    [ "$(java_major javac)" = 17 ] || die "after installing openjdk-17-jdk-headless, 'javac' is not version 17"
}

ensure_maven() {
    command -v mvn >/dev/null || apt_install maven
}

# The jar directory is named after the pom's content: a changed pom is a new directory, resolved afresh.
pom_hash=$(sha256sum "$pom" | cut -c1-12)
jar_dir="$CACHE/hadoop-$set_name-$pom_hash"

ensure_jdk17
if [ ! -e "$jar_dir/.complete" ]; then
    ensure_maven
    say "resolving the Hadoop $set_name jars from Maven Central into $jar_dir"
    rm -rf "$jar_dir"
    mkdir -p "$CACHE"
    mvn -B -q -Dstyle.color=never -f "$pom" dependency:copy-dependencies -DoutputDirectory="$jar_dir" </dev/null >&2 \
        || die "mvn could not resolve $pom"
    ls "$jar_dir"/hadoop-client-api-*.jar >/dev/null 2>&1 || die "no hadoop-client-api jar in $jar_dir after mvn"
    touch "$jar_dir/.complete"
fi
say "JDK 17 and the Hadoop $set_name jars ready"
echo "$jar_dir"
