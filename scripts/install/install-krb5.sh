#!/bin/sh
# Installs MIT Kerberos (KDC, admin tools, client tools, headers) on Debian/Ubuntu, only where missing.
# Idempotent and non-interactive. Writes nothing of its own to /etc (the packages install their defaults,
# which the fixture never reads: it points KRB5_CONFIG and KRB5_KDC_PROFILE at its own files).
set -eu

need=""
for pkg in krb5-kdc krb5-admin-server krb5-user libkrb5-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need="$need $pkg"
done
[ -z "$need" ] && exit 0
echo "install-krb5: installing$need" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq </dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $need </dev/null >/dev/null
