"""The Kubernetes manifests, rendered by kustomize for each overlay, checked offline:
against the Kubernetes API schemas, against the services' real ports and health
endpoints, and for what ops rely on (security context, resources, secrets as
files, who may talk to whom)."""

from __future__ import annotations

import copy
from pathlib import PurePosixPath

import kubernetes_validate
import pytest
from flask import Flask

from services.common import metrics, web
from services.common.supervisor import addresses
from tests.deploy.support import OVERLAYS, allowed, by_kind, container_env, render, workloads

# The oldest Kubernetes with GA gRPC probes, and the newest the validator knows.
K8S_VERSIONS = ("1.27.0", kubernetes_validate.latest_version())

# The long-running processes, with the command that starts each one.
PROCESSES = {
    "auth-web": ["auth", "web"],
    "auth-grpc": ["auth", "grpc"],
    "auth-relay": ["auth", "relay"],
    "notify-server": ["notify", "server"],
    "notify-worker": ["notify", "worker"],
    "portal-web": ["portal", "web"],
}


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


# The processes without a web server serve /metrics and /healthz where these name.
METRICS_BINDS = {
    "auth-grpc": "AUTH_GRPC_METRICS_BIND",
    "auth-relay": "AUTH_RELAY_METRICS_BIND",
    "notify-server": "NOTIFY_GRPC_METRICS_BIND",
    "notify-worker": "NOTIFY_WORKER_METRICS_BIND",
}


def real_ports() -> dict[str, int]:
    """The ports the services listen on by default, from the code (DESIGN.md's addresses)."""
    addr = addresses({})
    return {
        "portal-web": _port(addr["portal_bind"]),
        "auth-web": _port(addr["auth_bind"]),
        "auth-grpc": _port(addr["auth_grpc"]),
        "notify-server": _port(addr["notify_grpc"]),
    }


def real_health_paths() -> tuple[str, str]:
    """The liveness and readiness paths every HTTP service gets from services.common.web."""
    app = Flask(__name__)
    web.install(app, service="probe-test", readiness_checks={}, tls=False)
    rules = {rule.endpoint: rule.rule for rule in app.url_map.iter_rules()}
    return rules["healthz"], rules["readyz"]


def test_the_real_services_use_the_ports_and_paths_the_manifests_are_checked_against() -> None:
    assert real_ports() == {"portal-web": 8000, "auth-web": 8001, "auth-grpc": 50051, "notify-server": 50052}
    assert real_health_paths() == ("/healthz", "/readyz")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_manifest_validates_against_the_kubernetes_schemas(overlay: str) -> None:
    docs = render(overlay)
    assert len(docs) > 30
    failures = []
    for version in K8S_VERSIONS:
        for doc in docs:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                failures.append(f"{version} {doc['kind']}/{doc['metadata']['name']}: {exc.message}")
    assert not failures, "\n".join(failures)


def test_the_schema_validation_catches_mistakes() -> None:
    """A negative control: the validator really rejects a misspelled field and a wrong type."""
    deployment = copy.deepcopy(by_kind(render("production"), "Deployment")["auth-grpc"])
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"] = {"grpc": {"port": "grpc"}}  # gRPC probes take a number only
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[0], strict=True)
    container.pop("readinessProbe")
    container["livenesProbe"] = {"grpc": {"port": 50051}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[0], strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_process_runs_its_command(overlay: str) -> None:
    deployments = by_kind(render(overlay), "Deployment")
    for name, command in PROCESSES.items():
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert container["args"] == command, name
        assert "command" not in container, f"{name}: the image's entrypoint (providerctl) must stay"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_use_the_services_real_paths_and_ports(overlay: str) -> None:
    docs = render(overlay)
    deployments = by_kind(docs, "Deployment")
    services = by_kind(docs, "Service")
    ports = real_ports()
    healthz, readyz = real_health_paths()
    for name in ("auth-web", "portal-web"):
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        named = {p["name"]: p["containerPort"] for p in container["ports"]}

        def probe_port(probe: dict, named: dict = named) -> int:
            port = probe["httpGet"]["port"]
            return named[port] if isinstance(port, str) else port

        assert container["livenessProbe"]["httpGet"]["path"] == healthz, name
        assert container["startupProbe"]["httpGet"]["path"] == healthz, name
        assert container["readinessProbe"]["httpGet"]["path"] == readyz, name
        for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert probe_port(container[kind]) == ports[name], f"{name} {kind}"
        # The process binds where the probes look.
        env = container_env(docs, container)
        bind = env["AUTH_HTTP_BIND" if name == "auth-web" else "PORTAL_HTTP_BIND"]
        assert bind == f"0.0.0.0:{ports[name]}", name
        (service_port,) = services[name]["spec"]["ports"]
        assert named[service_port["targetPort"]] == ports[name] and service_port["port"] == ports[name]
    for name, variable in (("auth-grpc", "AUTH_GRPC_ADDR"), ("notify-server", "NOTIFY_GRPC_ADDR")):
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert container[kind]["grpc"]["port"] == ports[name], f"{name} {kind}"
        assert container["ports"][0]["containerPort"] == ports[name]
        assert container_env(docs, container)[variable] == f"0.0.0.0:{ports[name]}", name
        (service_port,) = services[name]["spec"]["ports"]
        assert service_port["port"] == ports[name]
    # The processes without a web server of their own serve /metrics and /healthz on the
    # metrics port their *_METRICS_BIND names; the relay's and the worker's liveness is there.
    for name, variable in METRICS_BINDS.items():
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        named = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert container_env(docs, container)[variable] == f"0.0.0.0:{metrics.METRICS_PORT}", name
        assert named["metrics"] == metrics.METRICS_PORT, name
        if name in ("auth-relay", "notify-worker"):
            for kind in ("livenessProbe", "startupProbe"):
                probe = container[kind]["httpGet"]
                assert probe["path"] == metrics.HEALTH_PATH and named[probe["port"]] == metrics.METRICS_PORT
    # Prometheus finds every process's /metrics where it is served.
    for name in PROCESSES:
        annotations = deployments[name]["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
        expected = ports[name] if name in ("auth-web", "portal-web") else metrics.METRICS_PORT
        assert annotations["prometheus.io/port"] == str(expected), name
    # Clients find the gRPC servers through their Services.
    config = by_kind(docs, "ConfigMap")
    (shared,) = [c["data"] for n, c in config.items() if n.startswith("providercenter-config")]
    assert shared["AUTH_GRPC_ADDR"] == f"auth-grpc:{ports['auth-grpc']}"
    assert shared["NOTIFY_GRPC_ADDR"] == f"notify-server:{ports['notify-server']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_as_non_root_on_a_read_only_filesystem_with_limits(overlay: str) -> None:
    docs = render(overlay)
    for workload in workloads(docs):
        if workload.labels.get("app.kubernetes.io/part-of") != "providercenter":
            continue  # the dev overlay's Redis, PostgreSQL and mailpit are checked below
        pod = workload.pod
        assert pod["securityContext"]["runAsNonRoot"] is True, workload.name
        assert pod["automountServiceAccountToken"] is False, workload.name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, workload.name
            assert context["allowPrivilegeEscalation"] is False, workload.name
            assert context["capabilities"]["drop"] == ["ALL"], workload.name
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind]), f"{workload.name} {kind}"
            env = container_env(docs, container)
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            volumes = {v["name"]: v for v in pod["volumes"]}
            for path in ("/tmp", env["PC_VAR_DIR"]):
                assert "emptyDir" in volumes[mounts[path]], (
                    f"{workload.name}: {path} must be a writable emptyDir"
                )
    for workload in workloads(docs):
        for container in workload.pod["containers"]:
            assert workload.pod["securityContext"].get("runAsNonRoot") is True, workload.name
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, workload.name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_mounted_files_read_through_the_file_variables(overlay: str) -> None:
    docs = render(overlay)
    secrets = by_kind(docs, "Secret")
    for workload in workloads(docs):
        if workload.labels.get("app.kubernetes.io/part-of") != "providercenter":
            continue
        volumes = {v["name"]: v for v in workload.pod["volumes"]}
        for container in workload.pod["containers"]:
            env = container_env(docs, container)
            plain = {
                k for k in env if any(s in k for s in ("SECRET", "KEY", "DATABASE_URL", "REDIS_URL", "SMTP"))
            }
            plain = {k for k in plain if not k.endswith("_FILE") and k != "REDIS_KEY_PREFIX"}
            assert not plain, f"{workload.name}: secret values in plain environment: {plain}"
            secret_mounts = {
                m["mountPath"]: volumes[m["name"]]["secret"]["secretName"]
                for m in container["volumeMounts"]
                if "secret" in volumes[m["name"]]
            }
            for variable, path in env.items():
                if not variable.endswith("_FILE"):
                    continue
                directory, key = str(PurePosixPath(path).parent), PurePosixPath(path).name
                assert directory in secret_mounts, (
                    f"{workload.name}: {variable}={path} is not on a mounted Secret"
                )
                assert key == variable.removesuffix("_FILE"), f"{workload.name}: {variable} names key {key}"
                if overlay == "dev":  # production's Secrets are made outside the repository
                    assert key in secrets[secret_mounts[directory]]["data"], f"{workload.name}: no {key}"


def test_production_reads_every_secret_the_services_need_from_files() -> None:
    docs = render("production")
    deployments = by_kind(docs, "Deployment")
    needed = {
        "auth-web": {
            "AUTH_SECRET_KEY",
            "AUTH_TOTP_KEY",
            "AUTH_CLIENT_SECRET_KEY",
            "PORTAL_CLIENT_SECRET",
            "AUTH_DATABASE_URL",
            "REDIS_URL",
        },
        "portal-web": {"PORTAL_CLIENT_SECRET", "PORTAL_SECRET_KEY", "PORTAL_DATABASE_URL", "REDIS_URL"},
        "notify-worker": {"NOTIFY_DATABASE_URL", "NOTIFY_SMTP_URL"},
    }
    for name, variables in needed.items():
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        env = container_env(docs, container)
        assert {v + "_FILE" for v in variables} <= set(env), name
    (config,) = [
        c["data"] for n, c in by_kind(docs, "ConfigMap").items() if n.startswith("providercenter-config")
    ]
    assert config["PC_ENV"] == "production"
    assert config["AUTH_ISSUER"].startswith("https://") and config["PORTAL_URL"].startswith("https://")
    assert config["AUTH_TRUSTED_PROXIES"] == "1" and config["PORTAL_TRUSTED_PROXIES"] == "1"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scaling_disruption_budgets_jobs_and_schedules(overlay: str) -> None:
    docs = render(overlay)
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    assert set(hpas) == {"auth-web", "portal-web"}
    for name, hpa in hpas.items():
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert "replicas" not in by_kind(docs, "Deployment")[name]["spec"], f"{name}: the HPA owns replicas"
    pdbs = by_kind(docs, "PodDisruptionBudget")
    assert {"auth-web", "auth-grpc", "notify-server", "portal-web"} <= set(pdbs)
    (job,) = by_kind(docs, "Job").values()
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "db",
        "upgrade",
        "auth",
        "notify",
        "portal",
    ]
    crons = {
        name: c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
        for name, c in by_kind(docs, "CronJob").items()
    }
    assert sorted(crons.values()) == sorted(
        [["auth", "suspend-inactive", "--days", "90"], ["portal", "settle"], ["portal", "accrue-interest"]]
    )
    for cron in by_kind(docs, "CronJob").values():
        assert cron["spec"]["concurrencyPolicy"] == "Forbid"


def _labels(docs: tuple, name: str) -> dict[str, str]:
    (workload,) = [w for w in workloads(docs) if w.name == name]
    return dict(workload.labels)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_only_portal_reaches_auth_grpc_and_only_auth_reaches_notify(overlay: str) -> None:
    docs = render(overlay)
    policies = list(by_kind(docs, "NetworkPolicy").values())
    sources = {w.name: dict(w.labels) for w in workloads(docs)}
    auth_grpc, notify = _labels(docs, "auth-grpc"), _labels(docs, "notify-server")
    reach_auth_grpc = {n for n, labels in sources.items() if allowed(policies, labels, 50051, auth_grpc)}
    assert reach_auth_grpc == {"portal-web"}
    reach_notify = {n for n, labels in sources.items() if allowed(policies, labels, 50052, notify)}
    assert reach_notify == {"auth-relay"}  # auth sends mail only through its outbox relay
    # Nothing else is open between our pods: e.g. portal cannot call notify, notify cannot call auth.
    assert not allowed(policies, _labels(docs, "portal-web"), 50052, notify)
    assert not allowed(policies, _labels(docs, "notify-worker"), 50051, auth_grpc)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_only_the_three_services_reach_postgres_and_redis(overlay: str) -> None:
    docs = render(overlay)
    policies = list(by_kind(docs, "NetworkPolicy").values())
    ours = {w.name: dict(w.labels) for w in workloads(docs) if w.labels.get("app.kubernetes.io/part-of")}
    others = {
        w.name: dict(w.labels) for w in workloads(docs) if not w.labels.get("app.kubernetes.io/part-of")
    }
    # Any other pod in the namespace, e.g. a debugging shell someone started:
    others["stranger"] = {"app.kubernetes.io/name": "stranger"}
    if overlay == "dev":
        postgres, redis = _labels(docs, "postgres"), _labels(docs, "redis")
    else:
        postgres = redis = None  # managed services outside the cluster
    pg_clients = {n for n, labels in {**ours, **others}.items() if allowed(policies, labels, 5432, postgres)}
    redis_clients = {n for n, labels in {**ours, **others}.items() if allowed(policies, labels, 6379, redis)}
    component = {n: labels["app.kubernetes.io/component"] for n, labels in ours.items()}
    assert pg_clients == set(ours), (
        "every process of auth, notify and portal (and migrations) reaches PostgreSQL"
    )
    assert {component[n] for n in pg_clients} == {"auth", "notify", "portal", "migrate"}
    assert {component[n] for n in redis_clients} == {"auth", "portal"}, "notify does not use Redis"
    assert not (pg_clients | redis_clients) & set(others)


def test_the_policy_evaluator_sees_what_the_policies_change() -> None:
    """A negative control: without the policies (or without default-deny) anything reaches auth's gRPC."""
    docs = render("production")
    policies = list(by_kind(docs, "NetworkPolicy").values())
    stranger, auth_grpc = {"app.kubernetes.io/name": "stranger"}, _labels(docs, "auth-grpc")
    assert allowed([], stranger, 50051, auth_grpc)
    assert not allowed(policies, stranger, 50051, auth_grpc)
    only_grpc_rule = [p for p in policies if p["metadata"]["name"] == "auth-grpc-from-portal"]
    assert allowed(only_grpc_rule, _labels(docs, "portal-web"), 50051, auth_grpc)
    assert not allowed(only_grpc_rule, stranger, 50051, auth_grpc)
    assert allowed(only_grpc_rule, stranger, 5432, None), "egress is open when no policy selects the source"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_prometheus_scrapes_the_metrics_ports(overlay: str) -> None:
    """Nothing in the namespace reaches 9090; the monitoring namespace does, on exactly that port."""
    docs = render(overlay)
    policies = list(by_kind(docs, "NetworkPolicy").values())
    sources = {w.name: dict(w.labels) for w in workloads(docs)}
    sources["stranger"] = {"app.kubernetes.io/name": "stranger"}
    for target in METRICS_BINDS:
        labels = _labels(docs, target)
        assert not {n for n, src in sources.items() if allowed(policies, src, metrics.METRICS_PORT, labels)}
    scrape = [
        p
        for p in policies
        for rule in p["spec"].get("ingress", [])
        for peer in rule.get("from", [])
        if peer.get("namespaceSelector", {}).get("matchLabels") == {"kubernetes.io/metadata.name": "monitoring"}
    ]
    assert len(scrape) == 1
    (rule,) = scrape[0]["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": metrics.METRICS_PORT}]
    from tests.deploy.support import selects

    selected = {n for n in METRICS_BINDS if selects(scrape[0]["spec"]["podSelector"], _labels(docs, n))}
    assert selected == set(METRICS_BINDS)
