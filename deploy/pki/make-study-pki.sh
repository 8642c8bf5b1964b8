#!/usr/bin/env bash
# Makes the certificates of a study's mutual TLS with the openssl command
# line: a study CA, a certificate for the coordinator, and one for each
# site named on the command line.
#
# Usage: deploy/pki/make-study-pki.sh [--force] [--days N] [--coordinator NAME] OUT_DIR SITE...
#   OUT_DIR            folder to write into; created when missing
#   SITE               DNS name by which the coordinator reaches a site's
#                      worker, for example worker-a or worker.hospital-a.example.
#                      It becomes the certificate's CN and subjectAltName.
#   --force            replace the certificates and keys of the named sites
#                      (and of the coordinator) when they exist; without it
#                      the script stops before writing anything
#   --days N           validity of the site and coordinator certificates in
#                      days (default 397); the CA gets 10 years
#   --coordinator NAME CN and subjectAltName of the coordinator certificate
#                      (default coordinator), as the workers' allowed_clients
#                      names it, and as a dial-out worker's [dial_out]
#                      server_name expects it
#
# Output, one folder per party, each with the study CA certificate:
#   OUT_DIR/ca/ca.pem, ca.key         the study CA; keep ca.key offline
#   OUT_DIR/coordinator/cert.pem, key.pem, ca.pem
#   OUT_DIR/SITE/cert.pem, key.pem, ca.pem
#
# An existing CA in OUT_DIR/ca is reused and never replaced, so a second
# run adds sites to the same study, and a run with --force renews their
# certificates. The coordinator's certificate is made when missing, and
# renewed with --force. Remove OUT_DIR/ca to start a new study CA.
#
# Keys are ECDSA P-256 and written with mode 0600. Site and coordinator
# certificates carry both the serverAuth and the clientAuth extended key
# usage. In direct mode the worker is the TLS server, and
# `radstudy-worker health --config` presents the worker's own certificate
# to it as a client. In dial-out mode the worker is the TLS client and the
# coordinator's dial-in listener the TLS server.
# NOTE: the script makes every key in one place, which suits a test or a
# single operator. Where each hospital must keep its key to itself, the
# hospital makes its key and a request (`openssl req -new`), and the study
# CA signs only the request, with the same extensions as below.
set -euo pipefail

force=0
days=397
ca_days=3650
coordinator=coordinator
usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}
while [[ $# -gt 0 ]]; do
  case "$1" in
    --force) force=1; shift ;;
    --days) days="${2:?--days needs a number}"; shift 2 ;;
    --coordinator) coordinator="${2:?--coordinator needs a name}"; shift 2 ;;
    -h|--help) usage ;;
    --) shift; break ;;
    -*) echo "make-study-pki.sh: error: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
if [[ $# -lt 2 ]]; then
  echo "make-study-pki.sh: error: expected OUT_DIR and at least one SITE" >&2
  usage
fi
out="$1"
shift
sites=("$@")

if ! command -v openssl >/dev/null 2>&1; then
  echo "make-study-pki.sh: error: openssl not found on PATH" >&2
  exit 1
fi
if ! [[ "$days" =~ ^[1-9][0-9]*$ ]]; then
  echo "make-study-pki.sh: error: --days must be a positive whole number, not $days" >&2
  exit 1
fi
# A DNS name: letters, digits, '-' and '.', as a subjectAltName needs.
for name in "$coordinator" "${sites[@]}"; do
  if ! [[ "$name" =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]]; then
    echo "make-study-pki.sh: error: invalid name $name; use letters, digits, '-' and '.'" >&2
    exit 1
  fi
  if [[ "$name" == "ca" ]]; then
    echo "make-study-pki.sh: error: the name ca is taken by the CA's folder" >&2
    exit 1
  fi
done

if [[ $force -eq 0 ]]; then
  for site in "${sites[@]}"; do
    for file in "$out/$site/"{cert.pem,key.pem}; do
      if [[ -e "$file" ]]; then
        echo "make-study-pki.sh: error: $file exists; pass --force to renew the certificate of $site" >&2
        exit 1
      fi
    done
  done
fi
if [[ -e "$out/ca/ca.pem" && ! -e "$out/ca/ca.key" ]] || [[ ! -e "$out/ca/ca.pem" && -e "$out/ca/ca.key" ]]; then
  echo "make-study-pki.sh: error: $out/ca has only one of ca.pem and ca.key; restore the other, or remove the folder to start a new study CA" >&2
  exit 1
fi

umask 077
mkdir -p "$out/ca"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

new_key() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
  chmod 600 "$1"
}

# The study CA, made once.
if [[ -e "$out/ca/ca.pem" ]]; then
  echo "using the existing study CA $out/ca/ca.pem"
else
  new_key "$out/ca/ca.key"
  openssl req -new -x509 -key "$out/ca/ca.key" -sha256 -days "$ca_days" \
    -subj "/CN=radstudy study CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" \
    -out "$out/ca/ca.pem"
  chmod 644 "$out/ca/ca.pem"
fi

# Issues a certificate for CN and DNS name $2 into folder $1, with the
# extended key usages $3.
issue() {
  local dir="$1" name="$2" usages="$3"
  mkdir -p "$dir"
  new_key "$dir/key.pem"
  openssl req -new -key "$dir/key.pem" -subj "/CN=$name" -out "$work/request.csr"
  cat >"$work/extensions.cnf" <<EOF
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = $usages
subjectAltName = DNS:$name
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
  openssl x509 -req -in "$work/request.csr" -CA "$out/ca/ca.pem" -CAkey "$out/ca/ca.key" \
    -CAcreateserial -CAserial "$work/ca.srl" -sha256 -days "$days" \
    -extfile "$work/extensions.cnf" -out "$dir/cert.pem" 2>/dev/null
  cp "$out/ca/ca.pem" "$dir/ca.pem"
  chmod 644 "$dir/cert.pem" "$dir/ca.pem"
}

if [[ $force -eq 1 || ! -e "$out/$coordinator/cert.pem" ]]; then
  issue "$out/$coordinator" "$coordinator" "serverAuth,clientAuth"
fi
for site in "${sites[@]}"; do
  issue "$out/$site" "$site" "serverAuth,clientAuth"
done

for party in "$coordinator" "${sites[@]}"; do
  openssl verify -CAfile "$out/ca/ca.pem" "$out/$party/cert.pem" >/dev/null
done
echo "wrote the certificates of ${sites[*]} to $out (coordinator: $out/$coordinator)"
