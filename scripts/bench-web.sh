#!/usr/bin/env bash
# The web app's speed in a real Chromium (a benchmark, not a test). Seeds PATIENTS sample
# patients (default 100 000) into a database of the benchmark cluster (.pms/bench-pg), starts
# the release build of `pms up` serving the app's build, and measures with web/bench/search.mjs:
# the first screen's load (cold and cached), search results after the last keystroke for
# typical front-desk queries (with typos and without accents), and the shipped assets' size.
# Prints Markdown for docs/benchmarks.md.
#
#   scripts/bench-web.sh [PATIENTS]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

patients="${1:-100000}"
port="${PMS_BENCH_PORT:-18080}"
bench_setup
ensure_debian_packages chromium fonts-dejavu-core
web_root="$(ensure_web)"
db=pms_bench_web
psql -h "$pg_dir" -U pms -d postgres -qc "DROP DATABASE IF EXISTS $db" >/dev/null
psql -h "$pg_dir" -U pms -d postgres -qc "CREATE DATABASE $db" >/dev/null
log "seeding $patients patients"
PMS_DATABASE_URL="$(pg_private_url "$pg_dir" "$db")" PMS_LOG=warn "$CARGO_TARGET_DIR/release/pms" seed "$patients" --no-events >/dev/null
psql -h "$pg_dir" -U pms -d "$db" -qc "VACUUM ANALYZE" >/dev/null
PMS_WEB_ROOT="$web_root" bench_pms_start "$db" "$port" "$work/pms.log"

echo "### Web app ($(date -u +%Y-%m-%d), $(nproc) cores, $patients patients, release build, Chromium $(chromium --version 2>/dev/null | awk '{print $2}'))"
echo
cd "$ROOT/web"
PMS_E2E_URL="http://127.0.0.1:$port" PMS_E2E_ADMIN_EMAIL=bench@pms.local PMS_E2E_ADMIN_PASSWORD=bench-password-123 \
PMS_BENCH_QUERIES="garcia|jhon smith|muller|nguyen|mari lopez|sofia|kowalski|yilmaz|jose garcia|tanaka|ahmed|brwon|schmidt|patel|oliveira|rossi|martin|kim|ana|li wei" \
    node bench/search.mjs
gzipped=$(cat "$web_root"/assets/*.gz | wc -c)
plain=$(find "$web_root/assets" -type f ! -name '*.gz' -exec cat {} + | wc -c)
echo "| shipped assets (script and stylesheet) | $((plain / 1024)) KB, $((gzipped / 1024)) KB gzip |"
