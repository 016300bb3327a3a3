#!/usr/bin/env bash
# The scheduling benchmark (not a test). Starts a private PostgreSQL cluster (.pms/bench-pg),
# a fresh Tansu broker (its release build) and the release build of `pms up` (gateway :18080) on a database with
# PATIENTS sample patients (seeded with their events, which the services consume before any
# measurement, so notifications knows every patient) and a LocalStack (SES, SNS), adds 50 practitioners who work around
# the clock, then measures through the gateway with wrk (-t2):
#   0. booking to confirmation sent: 500 patients registered through the API (so the
#      notifications service knows their contacts), booked at a steady ~RATE/s for SECONDS;
#      from the database, the time from each booking's commit to its confirmation email's
#      acceptance by SES;
# then, with pms restarted on the log channel (LocalStack's CPU would be the emulator's cost,
# not pms's), CONCURRENCY connections, SECONDS each:
#   1. bookings: each a different patient at a free time (each booking asks the patients
#      service over gRPC, then commits the appointment with its version, audit row and event);
#   2. conflicts: the bookings just made, sent again: every one must answer 409;
#   3. a week's availability of a practitioner with 1 000 booked appointments;
# then 2 and 3 again at a steady PACE requests/s (the latency a clinic sees at that load, not at
# the machine's saturation; scripts/bench-rate.lua);
# and where the CPU went in each of these phases (scripts/cpu.py: pms, the broker, PostgreSQL,
# and PostgreSQL's part of the bookings by the service each connection serves);
# with PMS_BENCH_STATEMENTS=1, also which statements took PostgreSQL's time while the bookings
# and their events were handled (pg_stat_statements); with PMS_BENCH_PERF=1, where pms's own
# CPU went in each phase (`perf record` at ~1 kHz, no call graphs: the top 40 functions of each
# phase in $PMS_BENCH_PERF_DIR/perf-PHASE.txt, /tmp by default); with PMS_BENCH_SHOW_ERRORS=1,
# the first answers of 400 or more of the bookings phase (scripts/bench.lua).
# Prints Markdown for docs/benchmarks.md.
#
#   scripts/bench-appointments.sh [SECONDS] [CONCURRENCY] [PATIENTS] [RATE] [PACE]
#                                                           (defaults: 20 16 20000 20 1000)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

seconds="${1:-20}" concurrency="${2:-16}" patients="${3:-20000}" rate="${4:-20}" pace="${5:-1000}"
port="${PMS_BENCH_PORT:-18080}"
gateway="http://127.0.0.1:$port"

bench_setup
[ "${PMS_BENCH_PERF:-0}" = 1 ] && ensure_debian_packages linux-perf
localstack_dir="$(pms_state_dir)/bench-localstack"
localstack_stop "$localstack_dir"
localstack_port="$(free_port)"
localstack_start "$localstack_dir" "$localstack_port"
export PMS_AWS_ENDPOINT_URL="http://127.0.0.1:$localstack_port"
trap 'localstack_stop "$localstack_dir"; bench_cleanup' EXIT

db=pms_bench_appointments
psql -h "$pg_dir" -U pms -d postgres -qc "DROP DATABASE IF EXISTS $db" >/dev/null
psql -h "$pg_dir" -U pms -d postgres -qc "CREATE DATABASE $db" >/dev/null
sql() { psql -h "$pg_dir" -U pms -d "$db" -Atqc "$1"; }
log "seeding $patients patients, with their registration events"
PMS_DATABASE_URL="$(pg_private_url "$pg_dir" "$db")" PMS_LOG=warn "$CARGO_TARGET_DIR/release/pms" seed "$patients" >/dev/null
# consumed SECONDS KIND KNOWN SOURCE WHAT: waits (up to SECONDS) until the notifications
# service holds a row of its table KNOWN for each row of SOURCE and has no message of KIND left
# to send, as in a clinic whose services have caught up; dies naming WHAT otherwise.
consumed() {
    local seconds="$1" kind="$2" known="$3" source="$4" what="$5"
    for _ in $(seq $(( seconds * 5 ))); do
        [ "$(sql "SELECT count(*) FROM notifications.messages WHERE kind = '$kind' AND status = 'queued'")" = 0 ] &&
            [ "$(sql "SELECT count(*) FROM $known")" = "$(sql "SELECT count(*) FROM $source")" ] &&
            return 0
        sleep 0.2
    done
    tail -n 40 "$work/pms.log" >&2
    die "the notifications service did not $what"
}
# known: every patient known and welcomed (up to 5 minutes).
known() { consumed 300 welcome notifications.contacts patients.patients "learn of every patient"; }
# The seeded patients' events are consumed first with the log channel (their welcome messages
# recorded, not sent: LocalStack would take minutes), so that every booking below is for a
# patient the notifications service knows, as in a clinic; then pms restarts on LocalStack.
log "letting the services learn of the seeded patients (PMS_NOTIFICATIONS_CHANNEL=log)"
PMS_NOTIFICATIONS_CHANNEL=log bench_pms_start "$db" "$port" "$work/pms.log"
known
kill "$server" && wait "$server" 2>/dev/null || true
bench_pms_start "$db" "$port" "$work/pms.log"
token="$(bench_login "$gateway")"
api() { # api METHOD PATH [BODY]: the answer's body; fails on an error status
    curl -fsS -X "$1" "$gateway$2" -H "Authorization: Bearer $token" -H 'content-type: application/json' ${3:+-d "$3"}
}
id_of() { sed -E 's/.*"id":"([^"]+)".*/\1/'; }
always='{"hours":[{"weekday":1,"start":"00:00","end":"24:00"},{"weekday":2,"start":"00:00","end":"24:00"},{"weekday":3,"start":"00:00","end":"24:00"},{"weekday":4,"start":"00:00","end":"24:00"},{"weekday":5,"start":"00:00","end":"24:00"},{"weekday":6,"start":"00:00","end":"24:00"},{"weekday":7,"start":"00:00","end":"24:00"}]}'
practitioner() {
    local id
    id="$(api POST /api/practitioners '{"name":"Dr Bench","specialty":"General practice","timeZone":"UTC"}' | id_of)"
    api PUT "/api/practitioners/$id/working-hours" "$always" >/dev/null
    echo "$id"
}
log "adding 51 practitioners"
for _ in $(seq 50); do practitioner; done >"$work/practitioners.txt"
busy="$(practitioner)"
sql "SELECT id FROM patients.patients ORDER BY random()" >"$work/patients.txt"

# Booking bodies: line j books practitioner j mod 50 at slot j div 50 (30-minute slots from
# tomorrow 00:00 UTC on) for patient j mod (PATIENTS - 1 000); the busy practitioner's 1 000
# appointments are for the last 1 000 patients. No two bookings share a practitioner's or a
# patient's time (checked below), so every booking can succeed once. (Until 2026-12-05 the
# busy practitioner's patients were also among the lines' ones: about one line in a run of
# 21 000 bookings met its patient's other appointment and was answered 409.)
python3 - "$work" "$busy" <<'PY'
import datetime, json, random, sys
work, busy = sys.argv[1], sys.argv[2]
practitioners = open(f"{work}/practitioners.txt").read().split()
patients = open(f"{work}/patients.txt").read().split()
base = datetime.datetime.now(datetime.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) + datetime.timedelta(days=1)
def body(patient, practitioner, slot):
    start = (base + datetime.timedelta(minutes=30 * slot)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps({"patientId": patient, "practitionerId": practitioner, "start": start, "type": "consultation"})
lines, busy_patients = patients[:-1000], patients[-1000:]
taken = set()  # (who, slot): a practitioner's or a patient's half hour
def book(out, patient, practitioner, slot):
    for who in (patient, practitioner):
        if (who, slot) in taken:
            sys.exit(f"the benchmark's bookings overlap: {who} at slot {slot}")
        taken.add((who, slot))
    out.write(body(patient, practitioner, slot) + "\n")
with open(f"{work}/bookings.txt", "w") as out:
    for j in range(len(practitioners) * 1000):
        book(out, lines[j % len(lines)], practitioners[j % len(practitioners)], j // len(practitioners))
# 1 000 appointments for the busy practitioner: 40 a day (of 48 half hours), 25 days.
with open(f"{work}/busy.txt", "w") as out:
    slots = [d * 48 + s for d in range(25) for s in random.sample(range(48), 40)]
    for patient, slot in zip(busy_patients, slots):
        book(out, patient, busy, slot)
# Weeks of availability starting at random half hours of those 25 days.
with open(f"{work}/availability.txt", "w") as out:
    for _ in range(1000):
        start = base + datetime.timedelta(minutes=30 * random.randrange(18 * 48))
        end = start + datetime.timedelta(days=7)
        fmt = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")
        out.write(f"/api/practitioners/{busy}/availability?from={fmt(start)}&to={fmt(end)}&type=consultation\n")
PY
log "registering 500 patients through the API (their welcome messages go out first)"
"$CARGO_TARGET_DIR/release/pms-bench" create --count 500 >"$work/registrations.txt"
registered_since="$(sql "SELECT clock_timestamp()")"
xargs -P 4 -d '\n' -I BODY curl -fsS -o /dev/null -X POST "$gateway/api/patients" \
    -H "Authorization: Bearer $token" -H 'content-type: application/json' -d BODY <"$work/registrations.txt"
known
sql "SELECT c.patient_id FROM notifications.contacts c JOIN patients.patients p ON p.id = c.patient_id
     WHERE p.registered_at >= '$registered_since'" >"$work/known.txt"
python3 - "$work" <<'PY'
import datetime, json, sys
work = sys.argv[1]
practitioners = open(f"{work}/practitioners.txt").read().split()
patients = open(f"{work}/known.txt").read().split()
# 40 days ahead, away from the other phases' times: line i books practitioner i mod 50 at
# slot i div 50, for patient i mod 500.
base = datetime.datetime.now(datetime.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) + datetime.timedelta(days=40)
with open(f"{work}/steady.txt", "w") as out:
    for i in range(50 * 200):
        start = (base + datetime.timedelta(minutes=30 * (i // 50))).strftime("%Y-%m-%dT%H:%M:%SZ")
        out.write(json.dumps({"patientId": patients[i % len(patients)], "practitionerId": practitioners[i % 50],
                              "start": start, "type": "consultation"}) + "\n")
PY
log "steady bookings at about $rate/s for ${seconds}s; confirmations through LocalStack's SES"
connections=$(( rate / 25 + 4 ))   # room for requests in flight; the script paces the rate
steady="$(wrk -t1 -c"$connections" -d"${seconds}s" -H "Authorization: Bearer $token" -s "$ROOT/scripts/bench-rate.lua" \
    "$gateway" -- "$work/steady.txt" 1 "$rate" /api/appointments | awk '/^RESULT /')"
confirmations="SELECT extract(epoch FROM m.sent_at - a.booked_at) AS e FROM notifications.messages m
               JOIN appointments.appointments a ON a.id = m.appointment_id
               WHERE m.kind = 'confirmation' AND m.channel = 'email'"
for _ in $(seq 300); do
    [ "$(sql "SELECT count(*) FROM ($confirmations AND m.status IN ('queued', 'sending')) t")" = 0 ] && break
    sleep 0.2
done
confirmed="$(sql "SELECT round(1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY e))::int || ' ' ||
                         round(1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY e))::int || ' ' ||
                         round(1000 * max(e))::int || ' ' || count(*)
                  FROM ($confirmations AND m.status = 'sent') t")"

# The throughput phases measure pms, not the emulator: LocalStack is a Python process on the
# same two cores, where AWS would answer from elsewhere. pms is restarted with the log channel
# (the dispatcher still claims, renders and records every message; nothing is sent).
log "restarting pms with PMS_NOTIFICATIONS_CHANNEL=log for the throughput phases"
kill "$server" && wait "$server" 2>/dev/null || true
PMS_NOTIFICATIONS_CHANNEL=log bench_pms_start "$db" "$port" "$work/pms.log"
token="$(bench_login "$gateway")"

log "booking the busy practitioner's 1 000 appointments"
xargs -P 4 -d '\n' -I BODY curl -fsS -o /dev/null -X POST "$gateway/api/appointments" \
    -H "Authorization: Bearer $token" -H 'content-type: application/json' -d BODY <"$work/busy.txt"
[ "$(sql "SELECT count(*) FROM appointments.appointments WHERE practitioner_id = '$busy'")" = 1000 ] ||
    die "the busy practitioner does not have 1 000 appointments"
# The restarted consumers rejoin their groups only once the broker lets the stopped
# process's members go; measured without waiting, a booking phase once ran with
# notifications not consuming at all (782/s, none of its messages' work): wait (up to 3
# minutes) until notifications holds every appointment and has sent their confirmations.
log "waiting until notifications has consumed those bookings"
consumed 180 confirmation notifications.appointments appointments.appointments "consume the busy practitioner's bookings"

# published: waits (up to 2 minutes) until every appointment event is on the broker; prints
# the seconds it took and how many events were still waiting then. (The notifications consumer
# then still works through them in the background.)
published() {
    local start=$SECONDS
    for _ in $(seq 600); do
        [ "$(sql "SELECT count(*) FROM appointments.outbox WHERE published_at IS NULL")" = 0 ] && break
        sleep 0.2
    done
    echo "$(( SECONDS - start )) $(sql "SELECT count(*) FROM appointments.outbox WHERE published_at IS NULL")"
}

measured() { # measured NAME CONNECTIONS WRK-SCRIPT ARGS...: wrk's RESULT line (with a fresh
    # token: waits may be long); where the CPU went meanwhile goes to $work/cpu-NAME.txt
    # (scripts/cpu.py)
    local name="$1" connections="$2" script="$3"; shift 3
    token="$(bench_login "$gateway")"
    cpu_snapshot "$work/cpu-$name-before.json"
    if [ "${PMS_BENCH_PERF:-0}" = 1 ]; then
        perf record -q -F 997 -p "$server" -o "$work/perf-$name.data" -- sleep "$seconds" >/dev/null 2>&1 &
        perf=$!
    fi
    wrk -t2 -c"$connections" -d"${seconds}s" -H "Authorization: Bearer $token" -s "$ROOT/scripts/$script" \
        "$gateway" -- "$@" | tee "$work/wrk-$name.txt" | awk '/^RESULT /'
    cpu_snapshot "$work/cpu-$name-after.json"
    cpu_report "$work/cpu-$name-before.json" "$work/cpu-$name-after.json" >"$work/cpu-$name.txt"
    if [ "${PMS_BENCH_PERF:-0}" = 1 ]; then
        wait "$perf" || true
        { perf report -i "$work/perf-$name.data" --no-children --sort dso,sym --stdio 2>/dev/null || true; } |
            awk '/^ *[0-9]/ && ++n <= 40' >"${PMS_BENCH_PERF_DIR:-/tmp}/perf-$name.txt"
    fi
}
run() { # run NAME FILE get|post [PATH]: as fast as CONCURRENCY connections go (scripts/bench.lua)
    local name="$1"; shift
    measured "$name" "$concurrency" bench.lua "$@"
}
paced() { # paced NAME FILE [PATH|get]: at a steady PACE requests/s (scripts/bench-rate.lua)
    local name="$1" file="$2"; shift 2
    measured "$name" $(( pace / 25 + 4 )) bench-rate.lua "$file" 2 "$pace" "$@"
}
log "bookings for ${seconds}s"
before="$(sql "SELECT count(*) FROM appointments.appointments")"
since="$(sql "SELECT clock_timestamp()")"
bench_statements reset
booked="$(run bookings "$work/bookings.txt" post 2 /api/appointments)"
cpu_backends "$work/cpu-bookings-before.json" "$work/cpu-bookings-after.json" >"$work/cpu-bookings-pg.txt"
made=$(( $(sql "SELECT count(*) FROM appointments.appointments") - before ))
log "waiting until the bookings' events are published"
caught_up="$(published)"
statements="$(bench_statements report)"
log "the same bookings again (conflicts) for ${seconds}s"
# The bookings just made (whichever lines each wrk thread got to), cycled.
sql "SELECT json_build_object('patientId', patient_id, 'practitionerId', practitioner_id, 'type', 'consultation',
                              'start', to_char(starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))
     FROM appointments.appointments WHERE booked_at >= '$since'" >"$work/taken.txt"
for _ in $(seq 20); do cat "$work/taken.txt"; done >"$work/conflicts.txt"
conflicts="$(run conflicts "$work/conflicts.txt" post 2 /api/appointments)"
[ "$(( $(sql "SELECT count(*) FROM appointments.appointments") - before ))" = "$made" ] ||
    die "a conflicting booking was accepted"
log "a week's availability with 1 000 booked appointments for ${seconds}s"
availability="$(run availability "$work/availability.txt" get)"
log "the same two at a steady $pace requests/s, ${seconds}s each"
paced_conflicts="$(paced paced-conflicts "$work/conflicts.txt" /api/appointments)"
paced_availability="$(paced paced-availability "$work/availability.txt" get)"
[ "$(( $(sql "SELECT count(*) FROM appointments.appointments") - before ))" = "$made" ] ||
    die "a conflicting booking was accepted"
token="$(bench_login "$gateway")"
slots="$(curl -fsS -H "Authorization: Bearer $token" "$gateway$(head -n1 "$work/availability.txt")" | grep -o '"start"' | wc -l)"

echo
echo "### Scheduling ($(date -u +%Y-%m-%d), $(nproc) cores, release build, $patients patients, wrk -t2 -c$concurrency, ${seconds} s each)"
echo
echo "| operation | requests | requests/s | p50 ms | p99 ms | answers other than 2xx |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "$booked" | awk '{ printf "| book (each a free time; gRPC patient check, audit, outbox) | %d | %d | %.2f | %.2f | %d |\n", $2, $3, $4, $5, $6 }'
printf '%s\n' "$conflicts" | awk '{ printf "| book a taken time (every answer 409) | %d | %d | %.2f | %.2f | %d |\n", $2, $3, $4, $5, $6 }'
printf '%s\n' "$availability" | awk -v s="$slots" '{ printf "| a week of availability, 1 000 booked (%d free times in the first answer) | %d | %d | %.2f | %.2f | %d |\n", s, $2, $3, $4, $5, $6 }'
printf '%s\n' "$paced_conflicts" | awk -v p="$pace" '{ printf "| book a taken time, paced at %d/s | %d | %d | %.2f | %.2f | %d |\n", p, $2, $3, $4, $5, $6 }'
printf '%s\n' "$paced_availability" | awk -v p="$pace" '{ printf "| a week of availability, paced at %d/s | %d | %d | %.2f | %.2f | %d |\n", p, $2, $3, $4, $5, $6 }'
printf '%s\n' "$booked" | awk '$6 > 0 { printf "\nBookings not answered 2xx: %d (connect/read/write/status/timeout as wrk counts them: %s).\n", $6, $7 }'
# With PMS_BENCH_SHOW_ERRORS=1 (scripts/bench.lua), what those answers were.
grep '^ANSWER ' "$work/wrk-bookings.txt" | cut -c1-400 | sed 's/^ANSWER /- /' || true
echo
for phase in bookings conflicts availability paced-conflicts paced-availability; do
    echo "- $phase: $(cat "$work/cpu-$phase.txt") (the rest: wrk)"
done
echo
echo "PostgreSQL's CPU in the bookings phase, by the service each connection serves:"
echo
cat "$work/cpu-bookings-pg.txt"
echo
printf '%s\n' "$steady" | awk -v r="$rate" '{ printf "Steady bookings (asked ~%d/s): %d at %d/s, p50 %.2f ms, p99 %.2f ms, %d errors. ", r, $2, $3, $4, $5, $6 }'
printf '%s\n' "$confirmed" | awk '{ printf "Booking committed to confirmation email accepted by SES (LocalStack on the same machine): p50 %d ms, p99 %d ms, max %d ms (%d emails).\n", $1, $2, $3, $4 }'
echo
read -r waited pending <<<"$caught_up"
echo "Bookings made in the first run: $made; none accepted in the second. $waited s after the first
run, $pending of their events were still waiting in the outbox; by the end notifications had
consumed $(sql "SELECT count(*) FROM notifications.appointments") of the $(sql "SELECT count(*) FROM appointments.appointments") appointments' events."
if [ -n "$statements" ]; then
    echo
    echo "Where PostgreSQL's time went from the start of the bookings until their events were published"
    echo "(pg_stat_statements, PMS_BENCH_STATEMENTS=1; wall time in the statement, so it includes waiting"
    echo "for a core):"
    echo
    printf '%s\n' "$statements"
fi
