#!/bin/bash
# FTPS throughput on loopback with curl: plain FTP, TLS control with clear data (PROT C) and TLS data
# (PROT P, implicit FTPS), download and upload, from and to tmpfs. A benchmark, not a test.
#   scripts/bench-tls.sh [SIZE_MIB] [RUNS]      (default 1024 MiB, 3 runs; best and median MB/s)
# Needs target/release/hdfsftpd, curl and openssl.
set -euo pipefail
size_mib=${1:-1024}
runs=${2:-3}
repo=$(cd "$(dirname "$0")/.." && pwd)
binary=$repo/target/release/hdfsftpd
[ -x "$binary" ] || { echo "build first: cargo build --release" >&2; exit 1; }
base=/dev/shm
[ -d "$base" ] || base=${TMPDIR:-/tmp}
work=$(mktemp -d "$base/hdfsftpd-bench.XXXXXX")
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

sh "$repo/scripts/make-test-cert.sh" "$work/tls" >/dev/null
mkdir -p "$work/root/home"
echo "bench:$(openssl passwd -6 bench):/home:rw" >"$work/users"
head -c "$((size_mib << 20))" /dev/urandom >"$work/root/home/payload.bin"
cp "$work/root/home/payload.bin" "$work/upload.bin"
port=$(free_port)
ftps_port=$(free_port)
"$binary" --bind 127.0.0.1 --ftp-port "$port" --ftps-port "$ftps_port" --local-root "$work/root" \
    --users-file "$work/users" --tls-cert "$work/tls/cert.pem" --tls-key "$work/tls/key.pem" \
    --log-level warn 2>"$work/server.log" &
server_pid=$!
sleep 0.5

# Prints "best median" MB/s of $runs curl runs. $1: up or down; $2: the URL's directory; the rest: curl options.
measure() {
    local direction=$1 url=$2
    shift 2
    local speeds=()
    for _ in $(seq "$runs"); do
        if [ "$direction" = down ]; then
            speeds+=("$(curl -sS -u bench:bench "$@" -o /dev/null -w '%{speed_download}' "${url}payload.bin")")
        else
            speeds+=("$(curl -sS -u bench:bench "$@" -T "$work/upload.bin" -w '%{speed_upload}' "${url}upload.bin")")
        fi
    done
    printf '%s\n' "${speeds[@]}" | sort -n |
        awk '{ v[NR] = $1 / 1e6 } END { printf "best %6.0f  median %6.0f", v[NR], v[int((NR + 1) / 2)] }'
}

echo "hdfsftpd on loopback, ${size_mib} MiB, ${runs} runs each, MB/s (curl $(curl --version | awk 'NR == 1 { print $2 }'))"
for mode in plain prot-c prot-p; do
    case $mode in
        plain) url=ftp://127.0.0.1:$port/ options=() ;;
        prot-c) url=ftp://127.0.0.1:$port/ options=(-k --ftp-ssl-control) ;;
        prot-p) url=ftps://127.0.0.1:$ftps_port/ options=(-k) ;;
    esac
    down=$(measure down "$url" "${options[@]}")
    up=$(measure up "$url" "${options[@]}")
    printf '%-7s download %s   upload %s\n' "$mode" "$down" "$up"
done
