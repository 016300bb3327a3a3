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

# The whole system on a fresh database and broker of its own (lib.sh).
check_pms_start contract "${PMS_CONTRACT_PORT:-18480}"
api="$check_api"
token="$(curl -sf "$api/auth/login" -H 'content-type: application/json' \
    -d '{"email":"admin@pms.local","password":"pms-admin-password"}' |
    python3 -c 'import sys, json; print(json.load(sys.stdin)["accessToken"])')"
[ -n "$token" ] || die "cannot log in to the API under test"

log "schemathesis: every check on every operation of $api/openapi.json"
cd "$ROOT" # schemathesis.toml
"$venv/bin/st" run "$api/openapi.json" --checks all \
    -H "Authorization: Bearer $token" \
    --max-examples "${PMS_CONTRACT_EXAMPLES:-40}" --seed "${PMS_CONTRACT_SEED:-20261126}" \
    --report-dir "$state/contract-report"
