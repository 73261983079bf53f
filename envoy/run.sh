#!/usr/bin/env bash
# `make run`: compile the bundled example, start two example backends and
# Envoy with the Pylon filter, print curl lines, and stay up until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=build/example
PY=.venv/bin/python
ENVOY=.venv/bin/envoy

# App and account secrets are sealed in the plan; Envoy reads the key from its
# environment (host_env_keys). A key is made once, readable by its owner
# only, unless PYLON_SEAL_KEY is already set.
if [ -z "${PYLON_SEAL_KEY:-}" ]; then
  mkdir -p build
  [ -f build/seal.key ] || target/release/pylon keygen --out build/seal.key >/dev/null
  PYLON_SEAL_KEY="$(cat build/seal.key)"
fi
export PYLON_SEAL_KEY

# The example is served live (README "Publishing"): a fresh copy of its
# definitions in build/shop, whose release store (build/shop/.pylon) records
# what is published; Envoy reads the live files in $OUT, and a later
# `pylon publish build/shop ... --live build/example` takes effect without a
# restart. Each publish is checked by Envoy itself (--envoy) first.
DEFS=build/shop
rm -rf "$DEFS" && mkdir -p build && cp -r examples/shop "$DEFS"

# HTTPS (README "HTTPS"): a private CA and a certificate for the shop's
# domains, localhost and 127.0.0.1, made once into build/example-tls (keys
# readable by their owner only, never committed), given to the group as its
# certificate; Envoy serves it on 127.0.0.1:8443.
TLS=build/example-tls
if [ ! -f "$TLS/shop.pem" ]; then
  mkdir -p "$TLS" && chmod 700 "$TLS"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
    -subj "/CN=Pylon example CA" -keyout "$TLS/ca.key" -out "$TLS/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=shop.example.com" \
    -keyout "$TLS/shop.key" -out "$TLS/shop.csr" 2>/dev/null
  printf 'subjectAltName=DNS:shop.example.com,DNS:*.shop.example.com,DNS:localhost,IP:127.0.0.1\n' > "$TLS/shop.ext"
  openssl x509 -req -in "$TLS/shop.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" -set_serial 1 \
    -days 365 -extfile "$TLS/shop.ext" -out "$TLS/shop.pem" 2>/dev/null
fi
sed -i 's|^    default: true.*|&\n    certificates: [{cert: ../example-tls/shop.pem, key: ../example-tls/shop.key}]|' "$DEFS/gateway.yaml"
for env in RELEASE TEST; do
  target/release/pylon publish "$DEFS" --env "$env" --note "make run" --live "$OUT" \
    --wasm target/wasm32-wasip1/release/pylon_filter.wasm --envoy "$ENVOY" >/dev/null
done

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

# RELEASE and TEST environments point at different backends (see examples/shop).
"$PY" examples/echo_backend.py --port 8081 --name release-backend & pids+=($!)
"$PY" examples/echo_backend.py --port 8082 --name test-backend & pids+=($!)
"$ENVOY" -c "$OUT/envoy.yaml" --concurrency 2 --log-level warn --log-path "$OUT/envoy.log" & pids+=($!)

for _ in $(seq 1 100); do
  curl -sf http://127.0.0.1:9901/ready >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf http://127.0.0.1:9901/ready >/dev/null || { echo "Envoy did not become ready; see $OUT/envoy.log"; exit 1; }

cat <<'TXT'

Pylon is up on http://127.0.0.1:8080 and https://localhost:8443 (Envoy admin on 127.0.0.1:9901). Try:

  curl -i http://127.0.0.1:8080/items/42                      # RELEASE backend, path /v1/items/42
  curl -i --cacert build/example-tls/ca.pem https://localhost:8443/items/42   # the same over HTTPS (HTTP/2 with --http2)
  curl -i -H 'X-Stage: TEST' http://127.0.0.1:8080/items/42   # TEST backend, path /v2/items/42
  curl -i http://127.0.0.1:8080/static/css/site.css           # prefix API, backend path /assets/css/site.css
  curl -i http://127.0.0.1:8080/health                        # mock backend answered by the gateway
  curl -i -H 'X-Apig-Mode: debug' http://127.0.0.1:8080/items/7   # adds X-Apig-Latency headers
  curl -i http://127.0.0.1:8080/nope                          # NOT_FOUND gateway response (APIG.0101)
  curl -i -X POST http://127.0.0.1:8080/orders                # custom BACKEND_UNAVAILABLE response (503)
  curl -i -H 'X-Stage: TEST' http://127.0.0.1:8080/static/x   # not published to TEST: 404
  curl -i 'http://127.0.0.1:8080/search/books?q=rust'          # mapped: backend /v1/search?page=1&keyword=rust&source=pylon
  curl -i http://127.0.0.1:8080/search/books                   # REQUEST_PARAMETERS_FAILURE: 'q' is required (400)
  curl -i 'http://127.0.0.1:8080/search/featured?q=x'          # policy backend (a mock) takes category=featured
  curl -i -X OPTIONS -H 'Origin: http://example.com' http://127.0.0.1:8080/search/books   # CORS preflight

Publish a change live (no restart): edit build/shop/apis.yaml, then
  target/release/pylon publish build/shop --env RELEASE --note "my change" --live build/example
  target/release/pylon history --defs build/shop

Ctrl-C stops everything.
TXT
wait "${pids[2]}"
