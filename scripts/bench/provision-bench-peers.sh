#!/usr/bin/env bash
# Provisions pure-ftpd and ProFTPD for `make bench` without installing them: their Debian packages
# conflict with vsftpd's (all provide "ftp-server"), so they are fetched with `apt-get download` and
# unpacked with `dpkg-deb -x` into a cache outside the repository. The shared libraries ProFTPD links
# that Debian 12 does not have by default are installed as ordinary packages (they conflict with
# nothing). Idempotent; runs unattended (CI=true, no stdin). Prints the unpacked root on its last
# line; versions.txt there names the packages' versions.
set -euo pipefail

CACHE="${HDFSFTPD_CACHE:-$HOME/.cache/hdfsftpd}"
ROOT="$CACHE/bench-peers/root"
PACKAGES=(pure-ftpd proftpd-core proftpd-mod-crypto)
LIBRARIES=(libhiredis0.14 libmemcached11 libmemcachedutil2 libpcre2-posix3)

say() {
    echo "provision-bench-peers: $*" >&2
}

export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi

missing_libraries=()
for library in "${LIBRARIES[@]}"; do
    dpkg-query -W -f '${Status}' "$library" 2>/dev/null | grep -q "install ok installed" || missing_libraries+=("$library")
done
if [ "${#missing_libraries[@]}" -gt 0 ]; then
    say "installing ${missing_libraries[*]}"
    $SUDO apt-get update -q </dev/null >&2
    $SUDO apt-get install -y -q --no-install-recommends "${missing_libraries[@]}" </dev/null >&2
fi

if [ ! -x "$ROOT/usr/sbin/pure-ftpd" ] || [ ! -x "$ROOT/usr/sbin/proftpd" ] || [ ! -f "$ROOT/usr/lib/proftpd/mod_tls.so" ] \
    || [ ! -s "$ROOT/versions.txt" ]; then
    say "fetching ${PACKAGES[*]} from Debian"
    download=$(mktemp -d)
    trap 'rm -rf "$download"' EXIT
    chmod 0777 "$download"  # apt's download user writes here
    (cd "$download" && apt-get download -q "${PACKAGES[@]}" </dev/null >&2) \
        || { $SUDO apt-get update -q </dev/null >&2 && (cd "$download" && apt-get download -q "${PACKAGES[@]}" </dev/null >&2); }
    rm -rf "$ROOT.part"
    mkdir -p "$ROOT.part"
    for deb in "$download"/*.deb; do
        dpkg-deb -x "$deb" "$ROOT.part"
        dpkg-deb --show --showformat '${Package} ${Version}\n' "$deb" >>"$ROOT.part/versions.txt"
    done
    rm -rf "$ROOT"
    mv "$ROOT.part" "$ROOT"
fi
echo "$ROOT"
