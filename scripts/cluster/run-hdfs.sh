#!/usr/bin/env bash
# `make run-hdfs`: a real HDFS on this machine (scripts/cluster/hdfs-cluster.sh) and hdfsftpd in front of it, with
# one user, demo/demo, whose files land in /user/demo owned by demo. Ctrl-C stops both.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${HDFS_DEMO_DIR:-$here/../../target/demo-hdfs}
port=${DEMO_PORT:-2121}
bin=${HDFSFTPD_BIN:-$here/../../target/release/hdfsftpd}

"$here/hdfs-cluster.sh" start "$dir"
trap '"$here/hdfs-cluster.sh" stop "$dir"' EXIT
"$here/hdfs-cluster.sh" add-user "$dir" demo demo
echo "demo:$(openssl passwd -6 demo)::rw" >"$dir/users"
set -a
# shellcheck disable=SC1091
. "$dir/cluster.env"
set +a
echo "hdfsftpd on ftp://127.0.0.1:$port/ in front of $HDFS_URI  user: demo  password: demo  (Ctrl-C stops both)"
echo "look at HDFS directly: $here/hdfs-cluster.sh ctl $dir ls /user/demo"
"$bin" --bind 127.0.0.1 --ftp-port "$port" --users-file "$dir/users" --storage hdfs --hdfs-uri "$HDFS_URI" \
    --hadoop-conf-dir "$HADOOP_CONF_DIR" --hadoop-classpath "$HADOOP_CLASSPATH" --jvm-opts "$HDFSFTPD_JVM_OPTS" \
    --pasv-ports 50000-50100
