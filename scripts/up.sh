#!/usr/bin/env bash
# Brings pms up with its public API on http://127.0.0.1:8080 (PMS_BIND to change).
#
# Installs what is missing (a C toolchain, PostgreSQL, the Tansu broker, LocalStack), starts a
# private PostgreSQL cluster under .pms/ unless PMS_DATABASE_URL names a database, a
# Kafka-protocol broker unless PMS_KAFKA_BROKERS names one, LocalStack (SES and SNS for the
# notifications) unless PMS_AWS_ENDPOINT_URL names an endpoint, builds the release binary and
# the web app (Node.js from Debian if missing), and runs
# `pms up` in the foreground (Ctrl-C stops it; the database keeps running for the next time).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_build_tools
if [ -z "${PMS_DATABASE_URL:-}" ]; then
    ensure_postgres
    pg_dir="$(pms_state_dir)/pg"
    pg_private_start "$pg_dir"
    pg_private_createdb "$pg_dir" pms
    pg_private_runtime_role "$pg_dir"
    # The services run as pms_app (owns nothing; audit rows: insert and read only); migrations
    # run as pms, the owner.
    export PMS_DATABASE_URL="postgres://pms_app@localhost/pms?host=$pg_dir"
    export PMS_MIGRATION_DATABASE_URL="$(pg_private_url "$pg_dir" pms)"
    # pms up creates the laptop admin (documented password) only on this private cluster.
    export PMS_LAPTOP_CLUSTER="$pg_dir"
    log "PostgreSQL: psql -h $pg_dir -U pms pms"
fi

# The Kafka-protocol broker on 127.0.0.1:9092, its data under .pms/broker, unless
# PMS_KAFKA_BROKERS names another (it keeps running for the next time, like the database).
if [ -z "${PMS_KAFKA_BROKERS:-}" ]; then
    broker_start "$(pms_state_dir)/broker" 9092
    log "Kafka broker: 127.0.0.1:9092 (Tansu, data in $(pms_state_dir)/broker)"
    # One partition per topic on a one-node laptop broker: each partition costs Tansu CPU at
    # every consumer fetch (docs/benchmarks.md, 2026-12-02). Topics made earlier keep theirs.
    export PMS_KAFKA_PARTITIONS="${PMS_KAFKA_PARTITIONS:-1}"
fi

# LocalStack on 127.0.0.1:4566 for the messages to patients (emails at /_aws/ses, SMS at
# /_aws/sns/sms-messages). If it cannot start, pms records messages without sending them.
if [ -z "${PMS_AWS_ENDPOINT_URL:-}" ] && [ "${PMS_NOTIFICATIONS_CHANNEL:-aws}" = aws ]; then
    if (localstack_start "$(pms_state_dir)/localstack" 4566); then
        export PMS_AWS_ENDPOINT_URL="http://127.0.0.1:4566"
        log "LocalStack: http://127.0.0.1:4566 (sent emails: /_aws/ses, SMS: /_aws/sns/sms-messages)"
    else
        export PMS_NOTIFICATIONS_CHANNEL=log
        log "LocalStack did not start: messages to patients are recorded in the delivery log, not sent"
    fi
fi

log "building pms (the first build takes a few minutes)"
build_release
# The front desk's web app, served by the gateway at /.
export PMS_WEB_ROOT="${PMS_WEB_ROOT:-$(ensure_web)}"

export PMS_LOG_FORMAT="${PMS_LOG_FORMAT:-text}"
log "starting: web app on http://${PMS_BIND:-127.0.0.1:8080}/, API and Swagger UI at /docs"
exec "$CARGO_TARGET_DIR/release/pms" up
