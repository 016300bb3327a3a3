#!/usr/bin/env python3
"""Every service of the one list is deployed everywhere, on its ports.

    python3 deploy/check_coverage.py SERVICES_JSON COMPOSE_JSON K8S_YAML...

SERVICES_JSON is `pms services`; COMPOSE_JSON is `docker-compose config --format json` of
compose.yaml (anchors and merges resolved); each K8S_YAML is a rendered overlay
(`kubectl kustomize`). The CloudFormation template is checked by deploy/aws/test_stack.py.
"""

import json
import sys

import yaml


def main():
    services = json.load(open(sys.argv[1]))
    compose = json.load(open(sys.argv[2]))
    problems = []

    for s in services:
        name = s["name"]
        c = compose["services"].get(name)
        if c is None:
            problems.append(f"compose.yaml: no service {name}")
            continue
        if c.get("command") != [name]:
            problems.append(f"compose.yaml: {name} does not run `pms {name}`")
        env = c.get("environment", {})
        if env.get(s["bindVar"]) != f"0.0.0.0:{s['port']}":
            problems.append(f"compose.yaml: {name} does not listen on 0.0.0.0:{s['port']} ({s['bindVar']})")
        if s["grpcBindVar"] and env.get(s["grpcBindVar"]) != f"0.0.0.0:{s['grpcPort']}":
            problems.append(f"compose.yaml: {name} does not serve gRPC on {s['grpcPort']}")
        if env.get("PMS_MIGRATE") != "off" or "migrate" not in c.get("depends_on", {}):
            problems.append(f"compose.yaml: {name} must start after the migrate container, without migrating")
    if compose["services"].get("migrate", {}).get("command") != ["migrate"]:
        problems.append("compose.yaml: no migrate container running `pms migrate`")

    for path in sys.argv[3:]:
        docs = [d for d in yaml.safe_load_all(open(path)) if d]
        by_kind = {}
        for d in docs:
            by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
        for s in services:
            name = s["name"]
            for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
                if name not in by_kind.get(kind, {}):
                    problems.append(f"{path}: no {kind} {name}")
            deployment = by_kind.get("Deployment", {}).get(name)
            if deployment is None:
                continue
            pod = deployment["spec"]["template"]["spec"]
            container = next(c for c in pod["containers"] if c["name"] == name)
            if container.get("args") != [name]:
                problems.append(f"{path}: Deployment {name} does not run `pms {name}`")
            ports = sorted(p["containerPort"] for p in container["ports"] if p["name"] in ("http", "grpc"))
            wanted = sorted(p for p in (s["port"], s["grpcPort"]) if p)
            if ports != wanted:
                problems.append(f"{path}: Deployment {name} exposes {ports}, not {wanted}")
            # The gateway's /health/ready asks every service: as readiness, one service down
            # would take the whole API out of rotation.
            readiness = container.get("readinessProbe", {}).get("httpGet", {}).get("path")
            wanted_readiness = "/health/live" if name == "gateway" else "/health/ready"
            if readiness != wanted_readiness:
                problems.append(f"{path}: Deployment {name}: readiness on {readiness}, not {wanted_readiness}")
            migrations = [c for c in pod.get("initContainers", []) if c.get("args") == ["migrate", name]]
            if bool(s["schema"]) != bool(migrations):
                problems.append(f"{path}: Deployment {name}: a migration init container iff it has a schema")

    if problems:
        sys.exit("deployment files do not cover the service list:\n  " + "\n  ".join(problems))
    print(f"deployment files cover all {len(services)} services")


if __name__ == "__main__":
    main()
