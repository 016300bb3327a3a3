#!/usr/bin/env bash
# The web app's checks: its types (tsc), then the front desk's day end to end in a real
# headless Chromium (Debian's, driven by playwright-core) against the whole system: the debug
# build of `pms up` on a fresh database and broker, serving the app's fresh build at /.
# axe-core scans every screen. Installs what is missing (Chromium, Node.js, the app's npm
# packages). PMS_E2E_SCREENSHOTS=docs/images refreshes the user guide's pictures.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_build_tools
ensure_debian_packages chromium fonts-dejavu-core
web_root="$(ensure_web)"
log "web app: type check"
(cd "$ROOT/web" && npx --no-install tsc --noEmit -p .)

# Access tokens live 20 s here, so a session's end can be seen in a test.
check_pms_start e2e "${PMS_E2E_PORT:-18580}" PMS_WEB_ROOT="$web_root" PMS_AUTH_ACCESS_TTL_SECONDS=20
log "web app: the front desk's day in Chromium ($check_api)"
screenshots="${PMS_E2E_SCREENSHOTS:-}"
[ -n "$screenshots" ] && screenshots="$(cd "$ROOT" && mkdir -p "$screenshots" && cd "$screenshots" && pwd)"
cd "$ROOT/web"
PMS_E2E_URL="$check_api" PMS_E2E_SCREENSHOTS="$screenshots" node --test --test-concurrency=1 tests/
