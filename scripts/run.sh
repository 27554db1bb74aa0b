#!/usr/bin/env bash
# What `make run` starts: the HTTP service on the embedded store (./data),
# with a demo API key that is printed and kept across runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/rostro}
data=${ROSTRO_DATA_DIR:-data}
bind=${ROSTRO_BIND:-127.0.0.1:8080}
mkdir -p "$data"
if [[ -z "${ROSTRO_API_KEYS:-}" ]]; then
  keyfile="$data/demo-api-key"
  if [[ ! -s "$keyfile" ]]; then
    (umask 077; echo "demo-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$keyfile")
  fi
  export ROSTRO_API_KEYS="$(cat "$keyfile"):demo-company"
fi
key=${ROSTRO_API_KEYS%%:*}
cat <<MSG
== Rostro on http://$bind  (store: $data, Ctrl-C stops it and flushes the store)
   demo API key: $key   (company: ${ROSTRO_API_KEYS#*:})
   try:  export KEY=$key
         curl -s -H "Authorization: Bearer \$KEY" http://$bind/api/v1/passwordless/client
   the README has a whole session (enrol a photo, verify with another).
   kiosk page (camera in the browser): http://$bind/kiosk?key=$key
   metrics: http://$bind/metrics
MSG
exec "$bin" serve --bind "$bind" --data-dir "$data"
