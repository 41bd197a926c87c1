#!/bin/sh
# Makes a self-signed certificate for tests and development, valid 100 years, for localhost,
# 127.0.0.1 and ::1, in DIR (default test-data/tls):
#   cert.pem      the certificate (PEM)                 --tls-cert
#   key.pem       its private key (PEM PKCS#8)          --tls-key
#   cert.p12      both as PKCS#12                       --tls-pkcs12
#   password.txt  the PKCS#12 password                  --tls-pkcs12-password-file
# Never use it in production: the key is not secret.
set -eu
dir=${1:-test-data/tls}
mkdir -p "$dir"
openssl req -x509 -newkey rsa:2048 -nodes -days 36500 -sha256 \
    -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
printf 'hdfsftpd-test\n' >"$dir/password.txt"
openssl pkcs12 -export -inkey "$dir/key.pem" -in "$dir/cert.pem" -out "$dir/cert.p12" \
    -passout "file:$dir/password.txt"
echo "$dir: cert.pem key.pem cert.p12 password.txt"
