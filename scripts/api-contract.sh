#!/usr/bin/env bash
# The API contract, checked against a running ground by independent tools: openapi-spec-validator on the document
# it serves, then a bounded schemathesis run with every check, once with a tenant's token and once with the
# operator's. Installs the Python tools (pinned) into target/pytools on first use.
#
# Usage: scripts/api-contract.sh PATH-TO-ODC [EXAMPLES]
set -euo pipefail
odc="$1"
examples="${2:-30}"
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/target/pytools"
if [ ! -x "$tools/bin/schemathesis" ] || [ ! -x "$tools/bin/openapi-spec-validator" ]; then
    python3 -m venv "$tools"
    "$tools/bin/pip" install --quiet --disable-pip-version-check \
        "schemathesis==4.32.5" "openapi-spec-validator==0.9.0"
fi
work="$(mktemp -d)"
ground=""
cleanup() {
    if [ -n "$ground" ]; then kill "$ground" 2>/dev/null || true; wait "$ground" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
printf 'listen = "127.0.0.1:%s"\n' "$port" > "$work/ground.toml"
(cd "$work" && exec "$odc" ground --config ground.toml > "$work/ground.log" 2>&1) &
ground=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 300); do
    if curl -sf "$base/openapi.json" -o "$work/openapi.json"; then break; fi
    if ! kill -0 "$ground" 2>/dev/null; then cat "$work/ground.log"; echo "the ground did not start" >&2; exit 1; fi
    sleep 0.2
done
"$tools/bin/openapi-spec-validator" "$work/openapi.json"
operator="$(cat "$work/operator.token")"
curl -sf -X POST "$base/v1/ops/tenants" -H "Authorization: Bearer $operator" -H 'Content-Type: application/json' \
    -d '{"name":"contract","quota":{"accelerator_s":1000,"energy_wh":100,"uplink_bytes":100000000,"downlink_bytes":100000000,"period":86400000}}' \
    -o "$work/tenant.json"
tenant="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$work/tenant.json")"
# Run from the scratch directory: schemathesis keeps a cache where it runs.
cd "$work"
for token in "$tenant" "$operator"; do
    "$tools/bin/schemathesis" --config-file "$root/scripts/schemathesis.toml" run "$base/openapi.json" \
        --checks all --header "Authorization: Bearer $token" --max-examples "$examples" \
        --generation-deterministic --no-color
done
