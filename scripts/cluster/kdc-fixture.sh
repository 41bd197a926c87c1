#!/bin/sh
# Runs a throwaway MIT Kerberos realm on 127.0.0.1 in the foreground (Ctrl-C stops it), for trying
# hdfsftpd --auth krb5 by hand. Nothing is written to /etc. See tests/kdc.py.
#   scripts/cluster/kdc-fixture.sh [DIR] [--realm NAME] [--user NAME:PASSWORD]...
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$(mktemp -d /tmp/hdfsftpd-kdc.XXXXXX)}
[ $# -gt 0 ] && shift
exec python3 "$here/../../tests/kdc.py" "$dir" "$@"
