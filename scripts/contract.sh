#!/usr/bin/env bash
# Checks the running API against its own OpenAPI document: starts pms (debug build) on a
# fresh database of the test cluster, logs in, and runs schemathesis (pinned) with every check
# on every operation. Exits non-zero on any finding. Rules JSON Schema cannot express are
# allowed per operation in schemathesis.toml, each with its reason.
#
# Environment: PMS_CONTRACT_EXAMPLES (examples per operation, default 40), PMS_CONTRACT_SEED.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SCHEMATHESIS_VERSION=4.32.5
ensure_build_tools
ensure_postgres
ensure_debian_packages python3 python3-venv curl

state="$(pms_state_dir)"
venv="$state/contract-venv"
if [ ! -x "$venv/bin/st" ] || ! "$venv/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    log "installing schemathesis $SCHEMATHESIS_VERSION"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi

pg_dir="$state/test-pg"
pg_private_start "$pg_dir" -c fsync=off -c synchronous_commit=off -c full_page_writes=off
pg_private_runtime_role "$pg_dir"
psql -h "$pg_dir" -U pms -d postgres -qc "DROP DATABASE IF EXISTS pms_contract WITH (FORCE)" >/dev/null 2>&1
psql -h "$pg_dir" -U pms -d postgres -qc "CREATE DATABASE pms_contract" >/dev/null

# The whole system, broker included (a fresh one: events of earlier runs do not matter).
broker_dir="$state/contract-broker"
rm -rf "$broker_dir"
broker_port="$(free_port)"
broker_start "$broker_dir" "$broker_port"

cd "$ROOT"
cargo build --locked -q -p pms
port="${PMS_CONTRACT_PORT:-18480}"
api="http://127.0.0.1:$port"
log="$(mktemp)"
PMS_DATABASE_URL="postgres://pms_app@localhost/pms_contract?host=$pg_dir" \
PMS_MIGRATION_DATABASE_URL="$(pg_private_url "$pg_dir" pms_contract)" \
PMS_LAPTOP_CLUSTER="$pg_dir" \
PMS_GATEWAY_ADMIN_BIND=off PMS_LOG=warn PMS_NOTIFICATIONS_CHANNEL=log PMS_KAFKA_BROKERS="127.0.0.1:$broker_port" \
PMS_GATEWAY_RATE_PER_SECOND=100000 PMS_GATEWAY_RATE_BURST=100000 \
PMS_GATEWAY_ADDRESS_RATE_PER_SECOND=100000 PMS_GATEWAY_ADDRESS_RATE_BURST=100000 \
    env $(pms_ports_env "$port") "$CARGO_TARGET_DIR/debug/pms" up >"$log" 2>&1 &
pms_pid=$!
trap 'kill "$pms_pid" 2>/dev/null; wait "$pms_pid" 2>/dev/null; broker_stop "$broker_dir"; rm -f "$log"' EXIT
for _ in $(seq 1 120); do
    curl -sf "$api/health/ready" >/dev/null 2>&1 && break
    kill -0 "$pms_pid" 2>/dev/null || { cat "$log" >&2; die "pms did not start"; }
    sleep 0.5
done
token="$(curl -sf "$api/auth/login" -H 'content-type: application/json' \
    -d '{"email":"admin@pms.local","password":"pms-admin-password"}' |
    python3 -c 'import sys, json; print(json.load(sys.stdin)["accessToken"])')"
[ -n "$token" ] || die "cannot log in to the API under test"

log "schemathesis: every check on every operation of $api/openapi.json"
"$venv/bin/st" run "$api/openapi.json" --checks all \
    -H "Authorization: Bearer $token" \
    --max-examples "${PMS_CONTRACT_EXAMPLES:-40}" --seed "${PMS_CONTRACT_SEED:-20261126}" \
    --report-dir "$state/contract-report"
