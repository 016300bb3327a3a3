#!/usr/bin/env bash
# Opt-in browser check (not part of test.sh: it installs Chromium): Swagger UI's Authorize
# button works against a running `pms up`. Installs Debian's chromium and playwright-core
# (npm) when missing. PMS_URL, PMS_EMAIL, PMS_PASSWORD select the server and the user.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v chromium >/dev/null 2>&1 || ensure_debian_packages chromium
command -v npm >/dev/null 2>&1 || ensure_debian_packages nodejs npm
tools="$(pms_state_dir)/browser-tools"
if [ ! -d "$tools/node_modules/playwright-core" ]; then
    mkdir -p "$tools"
    (cd "$tools" && npm install --no-save --silent playwright-core@1.65.1 >/dev/null)
fi
NODE_PATH="$tools/node_modules" SCREENSHOT="$(pms_state_dir)/swagger-authorize.png" \
    node "$ROOT/tests/browser/swagger-authorize.js"
