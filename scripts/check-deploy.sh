#!/usr/bin/env bash
# Checks the deployment files offline (part of the README's test command):
# - deploy/k8s/base/services.yaml and deploy/aws/pms.yaml are up to date with the service list;
# - compose.yaml with a real Docker Compose binary, and that it runs every service;
# - the Dockerfile with hadolint, and that it builds with the same command as up.sh;
# - both Kubernetes overlays rendered with kustomize and validated against the API schemas of
#   the oldest and newest Kubernetes pms supports (--strict: unknown fields fail);
# - the CloudFormation template with cfn-lint, then deployed to local emulators and read back
#   (scripts/deploy-aws-local.sh).
# Needs the pms binary (PMS_BIN, default target/debug/pms; built if missing).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KUBERNETES_VERSIONS=(1.29 1.37)

pms="${PMS_BIN:-$CARGO_TARGET_DIR/debug/pms}"
[ -x "$pms" ] || cargo build --locked -q -p pms --manifest-path "$ROOT/Cargo.toml"
tools="$(ensure_deploy_tools)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$ROOT"

"$pms" services >"$work/services.json"
log "generated files match the service list"
"$tools/bin/python" deploy/generate.py --check <"$work/services.json"

log "compose.yaml (a real Docker Compose binary)"
compose="$("$tools/bin/python" -c 'import compose, os; print(os.path.dirname(compose.__file__))')/docker-compose"
# The secrets compose requires, for the check only.
PMS_DB_PASSWORD=check PMS_APP_DB_PASSWORD=check PMS_SERVICE_SECRET=check PMS_ADMIN_PASSWORD=check \
    PMS_AUTH_KEY_ENCRYPTION_KEY=check \
    "$compose" -f compose.yaml config -q
PMS_DB_PASSWORD=check PMS_APP_DB_PASSWORD=check PMS_SERVICE_SECRET=check PMS_ADMIN_PASSWORD=check \
    PMS_AUTH_KEY_ENCRYPTION_KEY=check \
    "$compose" -f compose.yaml config --format json >"$work/compose.json"

log "Dockerfile (hadolint)"
"$tools/bin/hadolint" Dockerfile
grep -q "scripts/lib.sh && build_release" Dockerfile ||
    die "the Dockerfile must build with build_release (scripts/lib.sh), the command up.sh uses"

rendered=()
for overlay in deploy/k8s/overlays/*/; do
    name="$(basename "$overlay")"
    "$tools/bin/kubectl" kustomize "$overlay" >"$work/$name.yaml"
    rendered+=("$work/$name.yaml")
    for version in "${KUBERNETES_VERSIONS[@]}"; do
        log "Kubernetes overlay $name against $version (strict)"
        "$tools/bin/kubernetes-validate" -k "$version" --strict --quiet "$work/$name.yaml"
    done
done
"$tools/bin/python" deploy/check_coverage.py "$work/services.json" "$work/compose.json" "${rendered[@]}"

log "CloudFormation (cfn-lint)"
"$tools/bin/cfn-lint" deploy/aws/pms.yaml

PMS_BIN="$pms" "$ROOT/scripts/deploy-aws-local.sh"
