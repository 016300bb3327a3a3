#!/usr/bin/env bash
# The event benchmark (not a test): how far behind a registration its consequences run.
# Starts a private PostgreSQL cluster (.pms/bench-pg), a fresh Tansu broker (its release
# build) and the release build of `pms up` (gateway :18080), then:
#   1. registers patients through the gateway at a steady ~RATE/s for SECONDS (wrk with
#      scripts/bench-rate.lua) and reports, from analytics' own table, the time from each
#      registration (its timestamp, taken just before its commit) to analytics applying it:
#      p50/p99/max, and where the CPU went meanwhile (scripts/cpu.py: pms, the broker,
#      PostgreSQL, each with its busiest thread);
#   2. registers as fast as 16 connections can for SECONDS (creates now write version, audit
#      and outbox rows) and samples the outbox backlog (rows not yet published to the broker,
#      and not yet sent to billing) every second, then how long it takes to drain;
#   3. before pms starts, a broker's own ceiling: records/s a second, fresh Tansu takes from
#      the relay's publisher with no database involved (pms-bench broker), and the same at
#      RATE with three consumer groups reading meanwhile: how far behind they get.
# Prints Markdown for docs/benchmarks.md.
#
#   scripts/bench-events.sh [RATE] [SECONDS]     (defaults: 500 30)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rate="${1:-500}" seconds="${2:-30}"
port="${PMS_BENCH_PORT:-18080}"
gateway="http://127.0.0.1:$port"

bench_setup

# The ceiling: what a broker alone takes from the relay's publisher (no database). On a broker
# of its own: a Tansu that has served the probe leaves pms's producers timing out (seen
# 2026-12-02), which would spoil the measurement below.
ceiling_dir="$(pms_state_dir)/bench-ceiling-broker"
rm -rf "$ceiling_dir"
ceiling_port="$(free_port)"
broker_start "$ceiling_dir" "$ceiling_port" release
ceiling="$("$CARGO_TARGET_DIR/release/pms-bench" broker --brokers "127.0.0.1:$ceiling_port" --count 10000 --batch 500 | awk '/^RESULT /')"
# The same broker with the three consumer groups pms has on patients.v1 reading meanwhile, at
# the steady rate below, in batches of about what the relay picks up at that rate.
log "the broker alone with three consumer groups, $rate records/s for ${seconds}s"
"$CARGO_TARGET_DIR/release/pms-bench" broker --brokers "127.0.0.1:$ceiling_port" --count $((rate * seconds)) \
    --batch $(( rate / 20 > 0 ? rate / 20 : 1 )) --groups 3 --rate "$rate" >"$work/groups.txt"
grouped="$(awk '/^RESULT / { printf "%s ", $0 } /^GROUPS / { print }' "$work/groups.txt")"
broker_stop "$ceiling_dir"

psql -h "$pg_dir" -U pms -d postgres -qc "DROP DATABASE IF EXISTS pms_bench_events" >/dev/null
psql -h "$pg_dir" -U pms -d postgres -qc "CREATE DATABASE pms_bench_events" >/dev/null
sql() { psql -h "$pg_dir" -U pms -d pms_bench_events -Atqc "$1"; }

bench_pms_start pms_bench_events "$port" "$work/pms.log"
token="$(bench_login "$gateway")"

# Warm up: the first registrations create the topic and the consumer group settles.
"$CARGO_TARGET_DIR/release/pms-bench" create --count 200 >"$work/warm.txt"
wrk -t1 -c2 -d3s -H "Authorization: Bearer $token" -s "$ROOT/scripts/bench-rate.lua" "$gateway" \
    -- "$work/warm.txt" 1 100 >/dev/null
for _ in $(seq 100); do [ "$(sql "SELECT count(*) FROM analytics.processed_events")" -ge 1 ] && break; sleep 0.1; done
since="$(sql "SELECT clock_timestamp()")"

log "steady registrations at about $rate/s for ${seconds}s"
connections=$(( rate / 25 + 4 ))   # room for requests in flight; the script paces the rate
"$CARGO_TARGET_DIR/release/pms-bench" create --count $((rate * seconds * 2)) >"$work/steady.txt"
cpu_snapshot "$work/cpu-before.json"
steady="$(wrk -t2 -c"$connections" -d"${seconds}s" -H "Authorization: Bearer $token" \
    -s "$ROOT/scripts/bench-rate.lua" "$gateway" -- "$work/steady.txt" 2 "$rate" | awk '/^RESULT /')"
cpu_snapshot "$work/cpu-after.json"
registered="$(sql "SELECT count(*) FROM patients.patients WHERE registered_at >= '$since'")"
for _ in $(seq 300); do
    applied="$(sql "SELECT count(*) FROM analytics.processed_events WHERE occurred_at >= '$since'")"
    [ "$applied" -ge "$registered" ] && break
    sleep 0.1
done
latency="$(sql "SELECT round(1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY e))::int || ' ' ||
                       round(1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY e))::int || ' ' ||
                       round(1000 * max(e))::int || ' ' || count(*)
                FROM (SELECT extract(epoch FROM processed_at - occurred_at) AS e
                      FROM analytics.processed_events WHERE occurred_at >= '$since') t")"

# The same delay in two parts, from the outbox rows (kept PMS_OUTBOX_KEEP_MS after publishing):
# commit to the broker's acknowledgement (the relay), and acknowledgement to analytics applying
# it (the broker and the consumer).
split="$(sql "SELECT round(1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY r))::int || ' ' ||
                     round(1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY r))::int || ' ' ||
                     round(1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY c))::int || ' ' ||
                     round(1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY c))::int || ' ' || count(*)
              FROM (SELECT extract(epoch FROM o.published_at - o.created_at) AS r,
                           extract(epoch FROM p.processed_at - o.published_at) AS c
                    FROM patients.outbox o JOIN analytics.processed_events p USING (event_id)
                    WHERE o.sink = 'kafka' AND p.occurred_at >= '$since') t")"

log "registrations as fast as 16 connections go, for ${seconds}s; outbox backlog sampled each second"
"$CARGO_TARGET_DIR/release/pms-bench" create --count $((seconds * 12000)) >"$work/flat.txt"
backlog() { sql "SELECT count(*) FILTER (WHERE sink = 'kafka') || ' ' || count(*) FILTER (WHERE sink = 'billing')
                 FROM patients.outbox WHERE published_at IS NULL"; }
( for _ in $(seq "$seconds"); do sleep 1; backlog; done ) >"$work/backlog.txt" &
sampler=$!
flat="$(wrk -t2 -c16 -d"${seconds}s" -H "Authorization: Bearer $token" -s "$ROOT/scripts/bench.lua" "$gateway" \
    -- "$work/flat.txt" post 2 | awk '/^RESULT /')"
wait "$sampler" || true
ended="$(date +%s.%N)"
drained=""
for _ in $(seq 600); do
    if [ "$(backlog)" = "0 0" ]; then drained="$(awk -v a="$ended" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"; break; fi
    sleep 0.1
done

echo
tansu_version="$("$(ensure_tansu release)" --version | awk '{print $2}')"
echo "### Events ($(date -u +%Y-%m-%d), $(nproc) cores, release build, Tansu $tansu_version release build)"
echo
printf '%s\n' "$steady" | awk -v r="$rate" '{ printf "- steady registrations through the gateway (asked ~%d/s): %d at %d/s, p50 %.2f ms, p99 %.2f ms, %d errors\n", r, $2, $3, $4, $5, $6 }'
printf '%s\n' "$latency" | awk -v m="$registered" '{ printf "- registration to analytics applying it: p50 %d ms, p99 %d ms, max %d ms (%d events%s)\n", $1, $2, $3, $4, ($4 < m ? sprintf("; **only %d of the %d registrations applied 30 s after the load**: figures of those", $4, m) : ", all") }'
printf '%s\n' "$split" | awk '{ printf "  - of which commit to the broker acknowledging it (the relay): p50 %d ms, p99 %d ms; acknowledged to applied (broker and consumer): p50 %d ms, p99 %d ms (%d events)\n", $1, $2, $3, $4, $5 }'
echo "  - $(cpu_report "$work/cpu-before.json" "$work/cpu-after.json") (the rest: wrk)"
printf '%s\n' "$flat" | awk '{ printf "- creates at full speed (16 connections, with outbox rows): %d at %d/s, p50 %.2f ms, p99 %.2f ms, %d errors\n", $2, $3, $4, $5, $6 }'
echo "- outbox backlog each second under that load (kafka billing): $(tr '\n' ',' <"$work/backlog.txt" | sed 's/,$//; s/,/; /g')"
if [ -n "$drained" ]; then echo "- backlog drained $drained s after the load stopped"; else echo "- backlog **not drained** within 60 s after the load stopped"; fi
printf '%s\n' "$ceiling" | awk '{ printf "- the broker alone (pms-bench broker: the relay'"'"'s publisher, batches of %d, no database): %d records/s, a batch p50 %.1f ms, p99 %.1f ms\n", $6, $3, $4, $5 }'
printf '%s\n' "$grouped" | awk '{ printf "- the broker alone with %d consumer groups reading (pms-bench broker --groups: the services'"'"' consumer, handling nothing): %d records at %d/s in batches of %d, a batch p50 %.1f ms, p99 %.1f ms; handed to the publisher to a group having it: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", $8, $2, $3, $6, $4, $5, $10, $11, $12 }'
panics="$(grep -c panicked "$broker_dir/broker.log" || true)"
[ "$panics" = 0 ] || echo "- **the broker panicked $panics times** (see $broker_dir/broker.log)"
