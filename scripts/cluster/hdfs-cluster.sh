#!/usr/bin/env bash
# A real HDFS on this machine, for tests and for trying hdfsftpd: a NameNode (an HA pair with --ha) and
# 3 DataNodes of Hadoop's MiniDFSCluster in one JVM of their own, on 127.0.0.1 ephemeral ports, with
# every file under DIR. Nothing is written outside DIR but the jar cache (scripts/cluster/provision-hadoop.sh).
#
#   scripts/cluster/hdfs-cluster.sh start DIR [--ha] [--secure] [--datanodes N] [--owner PID] [--audit]
#                                   [--conf KEY=VALUE]...
#       returns once the cluster accepts writes; writes DIR/cluster.env (HDFS_URI, HADOOP_CONF_DIR,
#       HADOOP_CLASSPATH, HDFSFTPD_JVM_OPTS, HDFS_CLUSTER_CLASSPATH; with --secure also KRB5_CONFIG,
#       HDFSFTPD_KRB5_KEYTAB, HDFSFTPD_KRB5_SERVICE) for a shell to source.
#       --owner PID: the cluster cannot outlive process PID (a test run). Within seconds of PID's end,
#       however it ended (SIGKILL included), the cluster shuts down, its KDC is stopped by pid, the pid
#       files go and `stop DIR` has nothing left to do. Without it the cluster runs until `stop DIR`.
#       --conf KEY=VALUE: a setting of the NameNode's and DataNodes' configuration (repeatable).
#       --audit: the NameNode's audit log (one line per metadata call: cmd=create src=/user/ann/f …) goes
#       to DIR/audit.log, for tests that check which calls the gateway makes; each complete() call, which
#       the audit log leaves out, goes to DIR/complete.log (DIR* NameSystem.completeFile: /user/ann/f for …).
#   scripts/cluster/hdfs-cluster.sh add-user DIR NAME PASSWORD
#       /user/NAME owned by NAME, mode 0700 (and, on a secure cluster, the principal NAME@REALM).
#   scripts/cluster/hdfs-cluster.sh ctl DIR COMMAND [ARG...]      (as the HDFS superuser; one ARG may hold spaces)
#       stop-datanode N [N...] | start-datanode N | restart-datanode N   (N from 0)
#       restart-namenode | stop-namenode [N] | start-namenode [N] | failover | active
#       safemode enter|leave|get | quota PATH BYTES|clear | name-quota PATH COUNT|clear
#       blocks PATH (per block, the DataNodes holding it: "0,2 1,2"; the block being written included)
#       stat PATH (owner group mode replication length mtime-ms type) | ls DIR | exists PATH
#       mkdir PATH [OWNER [MODE]] | put LOCAL PATH [OWNER [MODE]] | get PATH LOCAL | chmod PATH MODE | rm PATH
#       touch DIR PREFIX COUNT OWNER [SUFFIX] (COUNT empty files) | fill PATH BYTES OWNER (BYTES zero bytes)
#       entries DIR COUNT (COUNT empty directories DIR/e0000000..., fast, not audited)
#       proxy-users GATEWAY USER,USER... (the NameNode's hadoop.proxyuser.GATEWAY.hosts/users rules, set
#       to loopback and those users, replacing the previous rules)
#   scripts/cluster/hdfs-cluster.sh stop DIR
#       stops the cluster (and its KDC) by pid; nothing is left running.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CACHE="${HDFSFTPD_CACHE:-$HOME/.cache/hdfsftpd}"
START_TIMEOUT=${HDFS_CLUSTER_START_TIMEOUT:-300}
# Java 17 opens what Hadoop reaches into (Hadoop's own list); one option per word, as libhdfs splits them.
JAVA17_OPTS="-XX:+IgnoreUnrecognizedVMOptions"
for package in java.io java.lang java.lang.reflect java.math java.net java.text java.util java.util.concurrent \
    java.util.zip sun.security.util sun.security.x509; do
    JAVA17_OPTS="$JAVA17_OPTS --add-opens=java.base/$package=ALL-UNNAMED"
done

die() {
    echo "hdfs-cluster: error: $*" >&2
    exit 1
}

say() {
    echo "hdfs-cluster: $*" >&2
}

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

alive() {
    [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

# Compiles the cluster program once per version of its source, into the cache.
cluster_classes() {
    local hash classes
    hash=$(cat "$here/hdfs-cluster/HdfsCluster.java" "$here/hdfs-cluster/log4j.properties" "$here/hdfs-cluster/pom.xml" \
        | sha256sum | cut -c1-12)
    classes="$CACHE/hdfs-cluster-classes-$hash"
    if [ ! -e "$classes/.complete" ]; then
        rm -rf "$classes"
        mkdir -p "$classes"
        javac -nowarn -d "$classes" -cp "$1/*" "$here/hdfs-cluster/HdfsCluster.java" >&2 \
            || die "javac HdfsCluster.java failed"
        cp "$here/hdfs-cluster/log4j.properties" "$classes/"
        touch "$classes/.complete"
    fi
    echo "$classes"
}

# One command to the cluster's control port; prints the answer, fails on an error answer.
ctl() {
    local dir=$1
    shift
    [ -s "$dir/control.port" ] || die "no cluster running in $dir"
    alive "$dir/cluster.pid" || die "the cluster of $dir is not running (see $dir/cluster.log)"
    local reply
    exec 3<>"/dev/tcp/127.0.0.1/$(cat "$dir/control.port")" || die "cannot reach the cluster of $dir"
    # Words go tab-separated: paths may hold spaces.
    (IFS=$'\t'; echo "$*") >&3
    IFS= read -r -t "${HDFS_CLUSTER_CTL_TIMEOUT:-300}" reply <&3 || reply="error no answer to '$*'"
    exec 3<&-
    case "$reply" in
        "ok "*) echo "${reply#ok }" ;;
        *) echo "hdfs-cluster: $*: ${reply#error }" >&2; return 1 ;;
    esac
}

start() {
    local dir=$1
    shift
    local ha="" secure="" datanodes=3 owner="" audit="" settings=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --ha) ha=--ha ;;
            --secure) secure=1 ;;
            --datanodes) datanodes=$2; shift ;;
            --owner) [ $# -ge 2 ] || die "--owner takes a process id"; owner=$2; shift ;;
            --audit) audit=--audit ;;
            --conf) [ $# -ge 2 ] || die "--conf takes KEY=VALUE"; settings+=(--conf "$2"); shift ;;
            *) die "unknown start option $1" ;;
        esac
        shift
    done
    if [ -n "$owner" ]; then
        [[ "$owner" =~ ^[1-9][0-9]*$ ]] || die "--owner takes a process id, not '$owner'"
        kill -0 "$owner" 2>/dev/null || die "--owner $owner: no such process"
    fi
    alive "$dir/cluster.pid" && die "a cluster is already running in $dir (pid $(cat "$dir/cluster.pid"))"
    rm -rf "$dir/data" "$dir/conf" "$dir/control.port" "$dir/cluster.env"

    local client_jars cluster_jars classes
    client_jars=$("$here/provision-hadoop.sh" client | tail -n 1)
    cluster_jars=$("$here/provision-hadoop.sh" cluster | tail -n 1)
    classes=$(cluster_classes "$cluster_jars")

    local java_opts="$JAVA17_OPTS -Xmx768m -XX:+UseSerialGC"
    local secure_args=() secure_env="" owner_args=()
    if [ -n "$secure" ]; then
        start_kdc "$dir"
        secure_args=(--secure "$dir/kdc/hdfs.keytab" "hdfs/localhost@$REALM" "HTTP/localhost@$REALM" "$dir/kdc/krb5.conf")
        java_opts="$java_opts -Djava.security.krb5.conf=$dir/kdc/krb5.conf"
        secure_env="KRB5_CONFIG=$dir/kdc/krb5.conf
HDFSFTPD_KRB5_KEYTAB=$dir/kdc/ftp.keytab
HDFSFTPD_KRB5_SERVICE=ftp/localhost@$REALM
HDFS_CLUSTER_REALM=$REALM"
    fi
    # The JVM watches the owner and, when it goes, stops the KDC too (by the pid it is given).
    if [ -n "$owner" ]; then
        owner_args=(--owner "$owner")
        [ -n "$secure" ] && owner_args+=(--kdc "$(cat "$dir/kdc.pid")")
    fi
    say "starting HDFS in $dir (log: $dir/cluster.log)${owner:+; it stops when process $owner ends}"
    # shellcheck disable=SC2086  # the options are words
    java $java_opts -cp "$classes:$cluster_jars/*" HdfsCluster "$dir" --datanodes "$datanodes" $ha $audit \
        "${secure_args[@]}" "${owner_args[@]}" "${settings[@]}" </dev/null >"$dir/cluster.log" 2>&1 &
    echo $! >"$dir/cluster.pid"
    local waited=0
    until [ -s "$dir/control.port" ]; do
        if ! alive "$dir/cluster.pid"; then
            tail -n 30 "$dir/cluster.log" >&2
            stop_kdc "$dir"
            die "the cluster exited during start-up (log: $dir/cluster.log)"
        fi
        if [ "$waited" -ge "$((START_TIMEOUT * 5))" ]; then
            stop "$dir"
            die "the cluster did not start within ${START_TIMEOUT}s (log: $dir/cluster.log)"
        fi
        sleep 0.2
        waited=$((waited + 1))
    done
    local uri
    uri=$(ctl "$dir" ping)
    cat >"$dir/cluster.env" <<EOF
HDFS_URI=$uri
HADOOP_CONF_DIR=$dir/conf
HADOOP_CLASSPATH=$client_jars/*
HDFSFTPD_JVM_OPTS="-Xrs -Xmx512m $JAVA17_OPTS${secure:+ -Djava.security.krb5.conf=$dir/kdc/krb5.conf}"
HDFS_CLUSTER_CLASSPATH=$dir/conf:$cluster_jars/*
HDFS_CLUSTER_JAVA_OPTS="$JAVA17_OPTS${secure:+ -Djava.security.krb5.conf=$dir/kdc/krb5.conf}"
${secure_env}
EOF
    say "HDFS ready at $uri; environment in $dir/cluster.env"
}

REALM=HDFSFTPD.TEST

# A throwaway MIT KDC (tests/kdc.py, the realm the Kerberos tests use) under DIR/kdc, with the cluster's
# key (hdfs/localhost and HTTP/localhost, one keytab) and the gateway's (ftp/localhost). The KDC outlives
# the Python that starts it; its pid goes to DIR/kdc.pid.
start_kdc() {
    local dir=$1
    alive "$dir/kdc.pid" && die "a KDC is already running in $dir"
    rm -rf "$dir/kdc"
    realm_py "$dir/kdc" start >"$dir/kdc.pid" || die "the KDC did not start (see $dir/kdc)"
}

# realm_py KDC_DIR start | add-user NAME PASSWORD
realm_py() {
    PYTHONPATH="$repo/tests" python3 - "$REALM" "$@" <<'PY'
import sys
from kdc import Realm
name, directory, verb, *rest = sys.argv[1:]
realm = Realm(directory, name)
if verb == "start":
    realm.start()
    realm.add_service("hdfs/localhost", realm.dir / "hdfs.keytab")
    realm.add_service("HTTP/localhost", realm.dir / "hdfs.keytab")
    realm.add_service("ftp/localhost", realm.dir / "ftp.keytab")
    print(realm.proc.pid)
else:
    realm.add_user(*rest)
PY
}

stop_kdc() {
    local dir=$1
    if alive "$dir/kdc.pid"; then
        kill "$(cat "$dir/kdc.pid")" 2>/dev/null || true
        wait_exit "$(cat "$dir/kdc.pid")" 20
    fi
    rm -f "$dir/kdc.pid"
}

wait_exit() {
    local pid=$1 seconds=$2 i
    for ((i = 0; i < seconds * 5; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
}

stop() {
    local dir=$1
    if alive "$dir/cluster.pid"; then
        local pid
        pid=$(cat "$dir/cluster.pid")
        HDFS_CLUSTER_CTL_TIMEOUT=60 ctl "$dir" shutdown >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
        wait_exit "$pid" 60
    fi
    rm -f "$dir/cluster.pid" "$dir/control.port"
    stop_kdc "$dir"
}

add_user() {
    local dir=$1 name=$2 password=$3
    if [ -e "$dir/kdc/krb5.conf" ]; then
        realm_py "$dir/kdc" add-user "$name" "$password" || die "adding the principal $name failed"
    fi
    ctl "$dir" home "$name" >/dev/null
}

[ $# -ge 2 ] || usage
verb=$1
dir=$2
shift 2
[ "$verb" = start ] && mkdir -p "$dir"
[ -d "$dir" ] || die "no directory $dir"
dir=$(cd "$dir" && pwd)
case "$verb" in
    start) start "$dir" "$@" ;;
    stop) stop "$dir" ;;
    add-user) [ $# -eq 2 ] || usage; add_user "$dir" "$1" "$2" ;;
    ctl) [ $# -ge 1 ] || usage; ctl "$dir" "$@" ;;
    *) usage ;;
esac
