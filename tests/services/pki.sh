#!/usr/bin/env bash
# pki.sh [DIR] -- a throw-away test CA and a server certificate for localhost, for the
# TLS test servers (xrootd's XrdHttp on 8443, nginx WebDAV on 8444). Idempotent: keeps
# what is there while it is valid for more than a day and chains to the CA.
#
# DIR (default /tmp/batchkit-pki) then holds:
#   ca.pem, ca.key        the test CA (CN=batchkit test CA), 365 days
#   ca/                   OpenSSL hashed CA dir: X509_CERT_DIR for gfal2/davix, XRootD
#   host.pem, host.key    server cert, CN=localhost, SAN DNS:localhost, IP:127.0.0.1
# Clients trust it with:
#   gfal2/davix: export X509_CERT_DIR=DIR/ca      curl: --cacert DIR/ca.pem
#   httpx/webdav4/requests: verify="DIR/ca.pem"
# host.key is root's, mode 600 (xrootd.sh gives xrootd its own copy: it insists on 0600).
# Takes < 1 s (openssl from the base system).
set -euo pipefail
BK_NAME=pki
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
D=${1:-$BK_PKI_DIR}
command -v openssl >/dev/null || ensure_pkgs openssl

valid() {  # (the CA outlives the host cert: 365 vs 360 days)
  [ -s "$D/host.pem" ] && [ -s "$D/ca.pem" ] && [ -s "$D/host.key" ] \
    && openssl x509 -checkend 86400 -noout -in "$D/host.pem" >/dev/null 2>&1 \
    && openssl verify -CAfile "$D/ca.pem" "$D/host.pem" >/dev/null 2>&1
}

mkdir -p "$D/ca"
chmod 755 "$D" "$D/ca"
if valid; then
  ts "test CA and host cert already present in $D"
else
  W=$(mktemp -d "$D/.new.XXXXXX")
  openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=batchkit test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$W/ca.key" -out "$W/ca.pem" 2>"$W/err" || { cat "$W/err" >&2; die "CA creation failed"; }
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$W/host.key" -out "$W/host.csr" 2>"$W/err" || { cat "$W/err" >&2; die "CSR failed"; }
  printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=CA:FALSE" \
    "keyUsage=digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >"$W/host.ext"
  openssl x509 -req -in "$W/host.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -CAcreateserial \
    -days 360 -extfile "$W/host.ext" -out "$W/host.pem" 2>"$W/err" || { cat "$W/err" >&2; die "signing failed"; }
  chmod 600 "$W/ca.key" "$W/host.key"
  mv -f "$W/ca.key" "$W/ca.pem" "$W/host.key" "$W/host.pem" "$D/"
  rm -rf "$W"
  rm -f "$D"/ca/*
  ts "created test CA + localhost cert in $D (servers already running with an older cert must be restarted)"
fi
# hashed CA dir (only rewritten when it does not hold exactly ca.pem)
if ! cmp -s "$D/ca.pem" "$D/ca/batchkit-test-ca.pem" || [ -z "$(find "$D/ca" -name '*.0' -print -quit)" ]; then
  rm -f "$D"/ca/*
  cp "$D/ca.pem" "$D/ca/batchkit-test-ca.pem"
  openssl rehash "$D/ca" 2>/dev/null || c_rehash "$D/ca" >/dev/null
fi
chmod 644 "$D/ca.pem" "$D/host.pem" "$D"/ca/*
chmod 600 "$D/host.key"
