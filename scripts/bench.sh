#!/usr/bin/env bash
# The benchmark (not a test). Seeds PATIENTS realistic patients in bulk (`pms seed`), starts
# the release build of `pms up`, and measures at fixed concurrency (reads on the service
# port also at four times it), through the gateway (with an access token, as a client; the
# gateway calls the services of its process directly, and once more over loopback HTTP as
# separate containers would) and on the patients service's own port, with wrk (-t2, the
# requests written beforehand by pms-bench, picked by scripts/bench.lua): read by id, exact
# family-name search, mixed name search (exact, 3-letter prefix, typo, "given family"), and
# create; then the name searches again on a second database whose family names are few and
# common (a fifth García or Nguyễn); then the same SQL directly with pgbench as the ceiling.
# With PMS_BENCH_MILLION=1 it grows the first database to 1 000 000 patients and measures
# reads and searches again; with PMS_BENCH_AUDIT_ROWS=N it then adds N audit rows spread over
# the past year (e.g. 50000000) and measures reads and a patient's audit trail with them.
# Prints Markdown tables for docs/benchmarks.md, and where the CPU went in each measurement
# (pms, PostgreSQL, the broker: scripts/cpu.py).
#
#   scripts/bench.sh [PATIENTS] [CONCURRENCY] [SECONDS]     (defaults: 100000 16 20)
#
# Uses its own private PostgreSQL cluster (.pms/bench-pg, default durability settings) and
# fresh databases each run; the gateway listens on 127.0.0.1:18080 (patients :18081, auth
# :18082), its per-client rate limits lifted for the run.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

patients="${1:-100000}" concurrency="${2:-16}" seconds="${3:-20}"
port="${PMS_BENCH_PORT:-18080}"
gateway="http://127.0.0.1:$port" service="http://127.0.0.1:$((port + 1))"

# Creates publish their events as in production, to the run's own broker.
bench_setup
pms="$CARGO_TARGET_DIR/release/pms"

fresh_db() { # fresh_db NAME
    psql -h "$pg_dir" -U pms -d postgres -qc "DROP DATABASE IF EXISTS $1" >/dev/null
    psql -h "$pg_dir" -U pms -d postgres -qc "CREATE DATABASE $1" >/dev/null
}
seed() { # seed DB COUNT NAMES: prints pms seed's summary line; then vacuums and analyzes, as
    # a database that has been running would be (autovacuum would otherwise run during the
    # first measurements, with the planner's statistics still those of an empty table)
    PMS_DATABASE_URL="$(pg_private_url "$pg_dir" "$1")" PMS_LOG=warn "$pms" seed "$2" --names "$3" --rng-seed "$RANDOM" --no-events
    psql -h "$pg_dir" -U pms -d "$1" -qc "VACUUM ANALYZE" >/dev/null
}
start_server() { # start_server DB
    bench_pms_start "$1" "$port" "$work/pms.log"
}
stop_server() {
    kill "$server"; wait "$server" 2>/dev/null || true; server=""
}
rss_mb() { # rss_mb FIELD (VmRSS now, VmHWM peak) of the server
    awk -v f="$1:" '$1 == f { printf "%.0f", $2 / 1024 }' "/proc/$server/status"
}
ids_of() { # ids_of DB: 100 000 random patient ids into $work/ids.txt
    psql -h "$pg_dir" -U pms -d "$1" -Atqc \
        "\\copy (SELECT id FROM patients.patients ORDER BY random() LIMIT 100000) TO '$work/ids.txt'"
}
login() { # an access token of the bench user
    bench_login "$gateway"
}
label_of() {
    case "$1" in
        read) echo "read by id" ;;
        exact) echo "exact family-name search, 20 rows" ;;
        mixed) echo "mixed name search, 20 rows" ;;
        audit) echo "audit trail of a patient, 50 rows" ;;
        create) echo "create" ;;
    esac
}
measure() { # measure BASE LABEL NAMES KIND...: wrk -t2 -c$concurrency for $seconds s each
    local base="$1" label="$2" names="$3" kind method count token result
    shift 3
    token="$(login)"
    for kind in "$@"; do
        method=get count=100000
        # Creates use each body once: enough for 12 000/s.
        [ "$kind" = create ] && method=post count=$((seconds * 12000))
        "$CARGO_TARGET_DIR/release/pms-bench" "$kind" --names "$names" --count "$count" \
            --ids-file "$work/ids.txt" >"$work/requests.txt"
        cpu_snapshot "$work/cpu-before.json"
        result="$(wrk -t2 -c"$concurrency" -d"${seconds}s" -H "Authorization: Bearer $token" \
            -s "$ROOT/scripts/bench.lua" "$base" -- "$work/requests.txt" "$method" 2 | awk '/^RESULT /')"
        [ -n "$result" ] || die "wrk gave no result for $kind on $base"
        cpu_snapshot "$work/cpu-after.json"
        echo "- $label ($names), $(label_of "$kind"): $(cpu_report "$work/cpu-before.json" "$work/cpu-after.json") (the rest: wrk)" >>"$work/cpu.md"
        # RESULT requests requests/s p50 p99 errors
        printf '%s\n' "$result" | awk -v t="$label ($names)" -v op="$(label_of "$kind")" \
            '{ printf "| %s | %s | %d | %d | %.2f | %.2f | %d |\n", t, op, $2, $3, $4, $5, $6 }' |
            tee -a "$work/http.md"
    done
}

log "seeding $patients patients (family names spread wide)"
fresh_db pms_bench
seed pms_bench "$patients" wide | tee "$work/seed.txt"
log "seeding $patients patients (few common family names)"
fresh_db pms_bench_common
seed pms_bench_common "$patients" common >/dev/null

log "HTTP at concurrency $concurrency, ${seconds}s per measurement"
echo "| target (names) | operation | requests | requests/s | p50 ms | p99 ms | errors |" >"$work/http.md"
echo "|---|---|---|---|---|---|---|" >>"$work/http.md"
start_server pms_bench
sleep 2
idle_rss="$(rss_mb VmRSS)"
ids_of pms_bench
measure "$gateway" gateway wide read exact mixed
measure "$service" service wide read exact mixed
# Reads on the port once more with four times as many in flight (64 by default): issue 12
# states the port's read goal without a concurrency (the gateway's at 16), and its baseline
# measured the port at 16 and 64. Each read waits for its batch's commit, so more in flight
# makes larger batches.
many="$((concurrency * 4))"
concurrency="$many" measure "$service" "service, $many in flight" wide read
measure "$gateway" gateway wide create
measure "$service" service wide create
peak_rss="$(rss_mb VmHWM)"
stop_server
# The gateway's hop as separate processes (containers) pay it: over loopback HTTP.
PMS_GATEWAY_IN_PROCESS=off start_server pms_bench
measure "$gateway" "gateway over HTTP" wide read exact
stop_server
start_server pms_bench_common
measure "$gateway" gateway common exact mixed
measure "$service" service common exact mixed
stop_server

if [ "${PMS_BENCH_MILLION:-0}" = 1 ]; then
    have="$(psql -h "$pg_dir" -U pms -d pms_bench -Atc "SELECT count(*) FROM patients.patients")"
    if [ "$have" -lt 1000000 ]; then
        log "growing to 1 000 000 patients"
        seed pms_bench "$((1000000 - have))" wide | tee "$work/seed-million.txt"
    fi
    start_server pms_bench
    ids_of pms_bench
    measure "$gateway" "gateway, 1M" wide read exact mixed
    measure "$service" "service, 1M" wide read exact mixed
    stop_server
fi

db=(-h "$pg_dir" -U pms -d pms_bench)
psql "${db[@]}" -qc "DROP TABLE IF EXISTS public.bench_ids; CREATE TABLE public.bench_ids (n serial PRIMARY KEY, id uuid NOT NULL)" >/dev/null
psql "${db[@]}" -qc "\\copy public.bench_ids (id) FROM '$work/ids.txt'" >/dev/null

audit_rows="${PMS_BENCH_AUDIT_ROWS:-0}"
if [ "$audit_rows" -gt 0 ]; then
    log "adding $audit_rows audit rows over the past year (5 000 000 per statement)"
    psql "${db[@]}" -qAtc "SELECT patients.ensure_audit_partitions(now() - interval '13 months')" >/dev/null
    step=5000000 done_rows=0 started=$SECONDS
    while [ "$done_rows" -lt "$audit_rows" ]; do
        chunk=$(( audit_rows - done_rows < step ? audit_rows - done_rows : step ))
        # Oldest first, evenly over 365 days, patients from the sample of ids, 300 users.
        psql "${db[@]}" -qc "
            WITH ids AS (SELECT array_agg(id ORDER BY n) AS a, count(*) AS c FROM public.bench_ids)
            INSERT INTO patients.audit_events (occurred_at, action, patient_id, actor_id, actor_roles, request_id,
                                               outcome, client_address, user_agent)
            SELECT now() - interval '365 days' * (1 - (g::float8 / $audit_rows)), 'read', ids.a[1 + g % ids.c],
                   'user-' || g % 300, '{clinician}', 'bench-' || g, 'ok', '10.0.0.1', 'pms-bench'
            FROM ids, generate_series($done_rows + 1, $done_rows + $chunk) g" >/dev/null
        done_rows=$(( done_rows + chunk ))
        log "  $done_rows audit rows ($(( SECONDS - started )) s)"
    done
    psql "${db[@]}" -qc "VACUUM ANALYZE patients.audit_events" >/dev/null
    total="$(psql "${db[@]}" -Atc "SELECT count(*) FROM patients.audit_events")"
    start_server pms_bench
    measure "$gateway" "gateway, $total audit rows" wide read audit
    measure "$service" "service, $total audit rows" wide read audit
    stop_server
fi

log "PostgreSQL ceiling: the same statements with pgbench, $concurrency clients"
n="$(psql "${db[@]}" -Atc "SELECT count(*) FROM public.bench_ids")"
psql "${db[@]}" -qc "VACUUM ANALYZE" >/dev/null

cat >"$work/read.sql" <<SQL
\set n random(1, $n)
SELECT p.* FROM patients.patients p WHERE p.id = (SELECT id FROM public.bench_ids WHERE n = :n);
SQL
cat >"$work/create.sql" <<'SQL'
SELECT nextval('patients.mrn_seq') AS seq \gset
WITH names AS (INSERT INTO patients.name_dictionary (name, keys)
        VALUES ('muller', translate('{d=muller,e=muller,p=m,p=mu,p=mul,p=mull,p=mulle,p=muller}', '=', ':')::text[]),
               ('anna', translate('{d=anna,e=anna,p=a,p=an,p=ann,p=anna}', '=', ':')::text[])
        ON CONFLICT (name) DO NOTHING),
     patient AS (
        INSERT INTO patients.patients (id, mrn, given_name, family_name, birth_date, sex, email, email_key, phone,
            address, active, version, registered_at, updated_at, family_sort, given_sort, name_keys)
        VALUES (gen_random_uuid(), 'b' || :seq, 'Anna', 'Müller', '1984-03-17', 'female', NULL, NULL, '+4930123456',
            NULL, true, 1, now(), now(), 'muller', 'anna',
            translate('{d=anna,d=ann,d=ana,e=anna,p=a,p=an,p=ann,p=anna,d=muller,d=uller,d=mller,d=muler,d=mulle,d=mullr,e=muller,p=m,p=mu,p=mul,p=mull,p=mulle,p=muller}', '=', ':')::text[])
        RETURNING id),
     version AS (
        INSERT INTO patients.patient_versions (patient_id, version, recorded_at, snapshot)
        SELECT id, 1, now(), '{"givenName":"Anna","familyName":"Müller","birthDate":"1984-03-17"}' FROM patient)
INSERT INTO patients.audit_events (action, patient_id, outcome) SELECT 'create', id, 'ok' FROM patient;
SQL
# The statements the service runs for a one-word name search (docs/adr/0001): the rank tiers
# in order, stopping once 21 rows are found. `schmidt` is answered by the first tier,
# `schm` by the third (after two empty ones), the typo `shcmidt` by the fifth (after four:
# its names come from the name dictionary, then the ordered index).
# pgbench reads `:word` as a variable, so keys are written `p=word` and translated.
cols="id, mrn, given_name, family_name, birth_date, sex, email, phone, address, active, registered_at, updated_at, version"
tier() { # tier WORD N CONDITION
    printf 'SELECT %s, %s::smallint AS rank, family_sort AS k1, given_sort AS k2 FROM patients.patients WHERE active AND %s ORDER BY family_sort, given_sort, id LIMIT 21;\n' "$cols" "$2" "$3"
}
given_prefix() {
    printf 'SELECT %s, 3::smallint AS rank, given_sort AS k1, family_sort AS k2 FROM patients.patients WHERE active AND %s ORDER BY given_sort, family_sort, id LIMIT 21;\n' "$cols" "$1"
}
word_tiers() { # word_tiers WORD SUCCESSOR KEYS LAST-TIER
    local w="$1" e="$2" keys="$3" last="$4"
    tier "$w" 0 "family_sort = '$w'"
    [ "$last" -ge 1 ] && tier "$w" 1 "given_sort = '$w' AND family_sort <> '$w'"
    [ "$last" -ge 2 ] && tier "$w" 2 "family_sort > '$w' AND family_sort < '$e' AND given_sort <> '$w'"
    [ "$last" -ge 3 ] && given_prefix "given_sort > '$w' AND given_sort < '$e' AND NOT (family_sort >= '$w' AND family_sort < '$e')"
    [ "$last" -ge 4 ] && tier "$w" 4 "family_sort = ANY(ARRAY(SELECT name FROM patients.name_dictionary WHERE keys && translate('{$keys}', '=', ':')::text[] ORDER BY name)) AND NOT (family_sort >= '$w' AND family_sort < '$e') AND NOT (given_sort >= '$w' AND given_sort < '$e')"
    return 0
}
word_tiers schmidt schmidu '' 0 >"$work/search_exact.sql"
word_tiers schm schn '' 2 >"$work/search_prefix.sql"
word_tiers shcmidt shcmidu 'p=shcmidt,d=shcmidt,d=hcmidt,d=scmidt,d=shmidt,d=shcidt,d=shcmdt,d=shcmit,d=shcmid' 4 >"$work/search_typo.sql"

pgbench_run() {
    local label="$1"; shift
    local out
    out="$(pgbench "${db[@]}" -n -M prepared -c "$concurrency" -j 2 -T "$seconds" -r "$@" 2>&1)" \
        || { printf '%s\n' "$out" >&2; die "pgbench failed"; }
    local tps lat
    tps="$(printf '%s\n' "$out" | awk '/^tps = /{printf "%.0f", $3}')"
    lat="$(printf '%s\n' "$out" | awk '/^latency average = /{print $4}')"
    printf '| %s | %s | %s |\n' "$label" "$tps" "$lat"
}
{
    echo "| statement (pgbench) | transactions/s | mean latency ms |"
    echo "|---|---|---|"
    pgbench_run "read one patient by id" -f "$work/read.sql"
    pgbench_run "name search as the service runs it (exact, prefix, typo mix), 20 rows" \
        -f "$work/search_exact.sql" -f "$work/search_prefix.sql" -f "$work/search_typo.sql"
    # Last: it inserts rows, which would change what the searches above find.
    pgbench_run "create, one at a time: sequence, then patient + names + version + audit in one statement" -f "$work/create.sql"
} >"$work/pg.md"

echo
echo "### HTTP ($patients patients, $concurrency in flight, ${seconds} s each)"
echo
cat "$work/http.md"
echo
echo "Where the CPU went in each measurement (scripts/cpu.py; 1.00 = one core busy):"
echo
cat "$work/cpu.md"
echo
echo "### PostgreSQL alone"
echo
cat "$work/pg.md"
echo
echo "- bulk load: $(cat "$work/seed.txt")$( [ -f "$work/seed-million.txt" ] && echo "; to 1 000 000: $(cat "$work/seed-million.txt")")"
echo "- memory of pms up: ${idle_rss} MB RSS idle, ${peak_rss} MB peak under load"
echo "- machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -m); PostgreSQL $(psql --version | awk '{print $3}'); $(date -u +%Y-%m-%d)"
