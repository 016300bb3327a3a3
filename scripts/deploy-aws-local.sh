#!/usr/bin/env bash
# Deploys deploy/aws/pms.yaml to local AWS emulators and reads every resource back
# (deploy/aws/test_stack.py): moto's server for the network, ECS, load balancer, RDS, IAM and
# logs; LocalStack for the secrets. Starts its own moto server (and LocalStack, unless
# PMS_TEST_LOCALSTACK names one) on free ports and stops them at exit. Needs the pms binary
# (PMS_BIN, default target/debug/pms) for the service list.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pms="${PMS_BIN:-$CARGO_TARGET_DIR/debug/pms}"
[ -x "$pms" ] || cargo build --locked -q -p pms --manifest-path "$ROOT/Cargo.toml"
ensure_debian_packages curl
moto="$(ensure_moto)"
venv="$(dirname "$(dirname "$moto")")"

work="$(mktemp -d)"
moto_pid=""
localstack_dir=""
cleanup() {
    [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null
    [ -n "$localstack_dir" ] && localstack_stop "$localstack_dir"
    rm -rf "$work"
}
trap cleanup EXIT

moto_port="$(free_port)"
"$moto" -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$moto_port/moto-api/" >/dev/null 2>&1 && break; sleep 0.1; done

if [ -z "${PMS_TEST_LOCALSTACK:-}" ]; then
    localstack_dir="$(pms_state_dir)/deploy-localstack"
    localstack_port="$(free_port)"
    localstack_stop "$localstack_dir"
    localstack_start "$localstack_dir" "$localstack_port"
    PMS_TEST_LOCALSTACK="http://127.0.0.1:$localstack_port"
fi

"$pms" services >"$work/services.json"
cd "$ROOT"
PMS_MOTO_URL="http://127.0.0.1:$moto_port" PMS_LOCALSTACK_URL="$PMS_TEST_LOCALSTACK" \
    PMS_SERVICES_JSON="$work/services.json" "$venv/bin/python" -m unittest -v deploy/aws/test_stack.py
