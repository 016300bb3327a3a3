#!/usr/bin/env bash
# Runs the whole test suite: unit tests, integration tests against a private PostgreSQL
# cluster (under .pms/test-pg, started here) and real Kafka-protocol brokers (Tansu processes
# the tests start) over real sockets, and the contract check of the
# running API against its OpenAPI document (scripts/contract.sh), and the deployment files
# (scripts/check-deploy.sh). Installs what is missing.
# Set PMS_TEST_DATABASE_URL to use another server on which the tests may create databases,
# PMS_TEST_S3_URL another S3 API (else a moto server is started here), PMS_TEST_LOCALSTACK
# another LocalStack (else one is started here).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_build_tools
if [ -z "${PMS_TEST_DATABASE_URL:-}" ]; then
    ensure_postgres
    pg_dir="$(pms_state_dir)/test-pg"
    # Durability is not under test here: skip fsync to keep the suite fast.
    pg_private_start "$pg_dir" -c fsync=off -c synchronous_commit=off -c full_page_writes=off
    # Each test creates a database; drop the ones earlier runs left behind.
    psql -h "$pg_dir" -U pms -d postgres -Atqc \
        "SELECT datname FROM pg_database WHERE datname LIKE 'pms_test_%'" |
        while read -r db; do psql -h "$pg_dir" -U pms -d postgres -qc "DROP DATABASE \"$db\"" >/dev/null; done
    export PMS_TEST_DATABASE_URL="$(pg_private_url "$pg_dir" postgres)"
    # Services under test run as a role that owns nothing, as in production.
    pg_private_runtime_role "$pg_dir"
    export PMS_TEST_RUNTIME_USER=pms_app
fi

# The Kafka-protocol broker: tests start their own broker processes (they stop and restart
# them) from this binary.
export PMS_TEST_TANSU="${PMS_TEST_TANSU:-$(ensure_tansu)}"

# Email and SMS for the notifications tests: a LocalStack of the run's own (SES and SNS).
localstack_dir=""
if [ -z "${PMS_TEST_LOCALSTACK:-}" ]; then
    localstack_dir="$(pms_state_dir)/test-localstack"
    localstack_port="$(free_port)"
    localstack_stop "$localstack_dir"
    localstack_start "$localstack_dir" "$localstack_port"
    export PMS_TEST_LOCALSTACK="http://127.0.0.1:$localstack_port"
fi

# Object storage for the audit archive's tests: a moto server (a real S3 API over HTTP).
moto_pid=""
if [ -z "${PMS_TEST_S3_URL:-}" ]; then
    ensure_debian_packages curl
    moto="$(ensure_moto)"
    moto_port="$(free_port)"
    "$moto" -H 127.0.0.1 -p "$moto_port" >"$(pms_state_dir)/moto.log" 2>&1 &
    moto_pid=$!
    export PMS_TEST_S3_URL="http://127.0.0.1:$moto_port"
    for _ in $(seq 100); do curl -fs "$PMS_TEST_S3_URL/moto-api/" >/dev/null 2>&1 && break; sleep 0.1; done
fi

cd "$ROOT"
# Unit and integration tests (targets without tests set `test = false`, libraries
# `doctest = false`, so nothing links for nothing); then one summary line.
log="$(mktemp)"
trap 'rm -f "$log"; [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null; [ -n "$localstack_dir" ] && localstack_stop "$localstack_dir"; true' EXIT
set +e
cargo test --workspace --locked "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# The API against its own OpenAPI document (schemathesis, every check), and the deployment
# files (offline checks, and the AWS template deployed to emulators), unless a filtered run.
if [ "$status" = 0 ] && [ $# = 0 ]; then
    "$ROOT/scripts/contract.sh" || status=$?
fi
if [ "$status" = 0 ] && [ $# = 0 ]; then
    "$ROOT/scripts/web-test.sh" || status=$?
fi
if [ "$status" = 0 ] && [ $# = 0 ]; then
    "$ROOT/scripts/check-deploy.sh" || status=$?
fi
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
