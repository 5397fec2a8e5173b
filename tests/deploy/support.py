"""Helpers for the deploy tests: finding tools, rendering the Kubernetes overlays,
walking the rendered objects and evaluating NetworkPolicies.

No container engine runs on these machines; these tests prove what can be proven
without one. A tool that is missing makes a test skip only outside CI (CI=true
fails instead, since .ci/run installs everything the tests need).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
OVERLAYS = ("dev", "production")
IN_CI = os.environ.get("CI") == "true"


def tool(name: str, why: str) -> str:
    """The path of ``name`` (the virtual environment's first, then PATH); skip or fail without it."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed, so {why} cannot be checked"
    if IN_CI:
        pytest.fail(message + " (CI must install it: see .ci/run)")
    pytest.skip(message + " here (CI installs it)")


@functools.cache
def render(overlay: str) -> tuple[dict[str, Any], ...]:
    """``kubectl kustomize deploy/k8s/overlays/<overlay>``, parsed."""
    kubectl = tool("kubectl", "the Kubernetes manifests (kubectl kustomize)")
    result = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"kubectl kustomize {overlay} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def by_kind(docs: tuple[dict[str, Any], ...], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


@dataclass(frozen=True)
class Workload:
    kind: str
    name: str
    labels: Mapping[str, str]
    pod: Mapping[str, Any]


def workloads(docs: tuple[dict[str, Any], ...]) -> Iterator[Workload]:
    """Every pod template: Deployments, Jobs and CronJobs."""
    for doc in docs:
        spec = doc.get("spec", {})
        if doc["kind"] in {"Deployment", "Job"}:
            template = spec["template"]
        elif doc["kind"] == "CronJob":
            template = spec["jobTemplate"]["spec"]["template"]
        else:
            continue
        yield Workload(doc["kind"], doc["metadata"]["name"], template["metadata"]["labels"], template["spec"])


def config_maps(docs: tuple[dict[str, Any], ...]) -> dict[str, dict[str, str]]:
    return {name: doc.get("data", {}) for name, doc in by_kind(docs, "ConfigMap").items()}


def container_env(docs: tuple[dict[str, Any], ...], container: Mapping[str, Any]) -> dict[str, str]:
    """The environment a container gets: envFrom ConfigMaps, then env (which wins)."""
    maps = config_maps(docs)
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(maps[source["configMapRef"]["name"]])
    for item in container.get("env", []):
        env[item["name"]] = item["value"]
    return env


# ---- NetworkPolicy evaluation (the subset of the API the manifests use) ----


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    if selector is None:
        return False
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        present = expr["key"] in labels
        op = expr["operator"]
        if op == "In" and not (present and labels[expr["key"]] in expr["values"]):
            return False
        if op == "NotIn" and present and labels[expr["key"]] in expr["values"]:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def _port_matches(rule: Mapping[str, Any], port: int) -> bool:
    ports = rule.get("ports")
    return not ports or any(p.get("port") == port and p.get("protocol", "TCP") == "TCP" for p in ports)


def _peer_matches(
    peers: list[Mapping[str, Any]] | None, labels: Mapping[str, str] | None, external: bool
) -> bool:
    """``peers`` (a rule's from/to) admits the pod with ``labels`` in this namespace, or an outside address."""
    if not peers:
        return True
    for peer in peers:
        if external:
            if "ipBlock" in peer:
                return True
        elif (
            labels is not None
            and "podSelector" in peer
            and "namespaceSelector" not in peer
            and selects(peer["podSelector"], labels)
        ):
            return True
    return False


def allowed(
    policies: list[Mapping[str, Any]],
    source: Mapping[str, str],
    port: int,
    dest: Mapping[str, str] | None,
) -> bool:
    """Can a pod labelled ``source`` open a TCP connection to ``port`` on the pod labelled
    ``dest`` (``None``: an address outside the cluster, as managed data stores are)?"""

    def direction(kind: str, subject: Mapping[str, str], peer: Mapping[str, str] | None) -> bool:
        field, peers_field = ("egress", "to") if kind == "Egress" else ("ingress", "from")
        applicable = [
            p
            for p in policies
            if kind in p["spec"].get("policyTypes", []) and selects(p["spec"]["podSelector"], subject)
        ]
        if not applicable:
            return True
        return any(
            _port_matches(rule, port) and _peer_matches(rule.get(peers_field), peer, external=peer is None)
            for p in applicable
            for rule in p["spec"].get(field, [])
        )

    if not direction("Egress", source, dest):
        return False
    return dest is None or direction("Ingress", dest, source)
