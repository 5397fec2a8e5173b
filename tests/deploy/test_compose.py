"""deploy/compose.yaml: valid against the Compose specification, started in the
right order, each process given exactly the secrets it reads, health checked where
the process really listens."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import DEPLOY, tool

COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
APP_SERVICES = (
    "migrate",
    "notify-server",
    "notify-worker",
    "auth-web",
    "auth-grpc",
    "auth-relay",
    "portal-web",
)

# The secrets each process reads (services/*/settings.py; the migrations only need the databases).
AUTH = {
    "AUTH_DATABASE_URL",
    "AUTH_SECRET_KEY",
    "AUTH_TOTP_KEY",
    "AUTH_CLIENT_SECRET_KEY",
    "PORTAL_CLIENT_SECRET",
}
NEEDS = {
    "migrate": {"AUTH_DATABASE_URL", "NOTIFY_DATABASE_URL", "PORTAL_DATABASE_URL"},
    # notify's settings read (and check) NOTIFY_SMTP_URL in the server too.
    "notify-server": {"NOTIFY_DATABASE_URL", "NOTIFY_SMTP_URL"},
    "notify-worker": {"NOTIFY_DATABASE_URL", "NOTIFY_SMTP_URL"},
    "auth-web": AUTH,
    "auth-grpc": AUTH,
    "auth-relay": AUTH,
    "portal-web": {"PORTAL_DATABASE_URL", "PORTAL_CLIENT_SECRET", "PORTAL_SECRET_KEY"},
}


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    binary = tool("check-jsonschema", "compose.yaml against the Compose specification")
    return subprocess.run(
        [binary, "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_compose_validates_against_the_compose_specification() -> None:
    result = check_jsonschema(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_mistakes(tmp_path: Path) -> None:
    """A negative control: a misspelled key and a wrong condition are rejected."""
    bad = tmp_path / "compose.yaml"
    bad.write_text(
        COMPOSE.read_text().replace(
            "    depends_on:\n      postgres:", "    depends_onn:\n      postgres:", 1
        )
    )
    assert check_jsonschema(bad).returncode != 0
    bad.write_text(COMPOSE.read_text().replace("service_completed_successfully", "service_finished", 1))
    assert check_jsonschema(bad).returncode != 0


def test_the_stack_has_every_part() -> None:
    services = compose()["services"]
    assert set(services) >= {"redis", "postgres", "mailpit", *APP_SERVICES}
    for name in APP_SERVICES:
        assert services[name]["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}, name
        assert services[name]["read_only"] is True, name
        assert {"/tmp", "/var/lib/providercenter"} <= set(services[name]["tmpfs"]), name
        assert services[name]["cap_drop"] == ["ALL"], name
    commands = {name: services[name]["command"] for name in APP_SERVICES}
    assert commands == {
        "migrate": ["db", "upgrade", "auth", "notify", "portal"],
        "notify-server": ["notify", "server"],
        "notify-worker": ["notify", "worker"],
        "auth-web": ["auth", "web"],
        "auth-grpc": ["auth", "grpc"],
        "auth-relay": ["auth", "relay"],
        "portal-web": ["portal", "web"],
    }


def test_start_order_waits_for_migrations_and_healthy_dependencies() -> None:
    services = compose()["services"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in APP_SERVICES[1:]:
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
        for dependency, condition in depends.items():
            if condition["condition"] == "service_healthy":
                assert "test" in services[dependency].get("healthcheck", {}), f"{name} waits on {dependency}"
    assert services["portal-web"]["depends_on"]["auth-web"]["condition"] == "service_healthy"
    assert services["portal-web"]["depends_on"]["auth-grpc"]["condition"] == "service_healthy"
    assert services["auth-relay"]["depends_on"]["notify-server"]["condition"] == "service_healthy"
    assert services["notify-worker"]["depends_on"]["mailpit"]["condition"] == "service_healthy"


def test_health_checks_look_where_the_processes_listen() -> None:
    services = compose()["services"]

    def environment(name: str) -> dict[str, str]:
        return {k: str(v) for k, v in services[name]["environment"].items()}

    def target(name: str) -> str:
        test = services[name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "/app/deploy/healthcheck.py"], name
        return test[3]

    assert environment("auth-web")["AUTH_HTTP_BIND"] == "0.0.0.0:8001"
    assert target("auth-web") == "http://127.0.0.1:8001/readyz"
    assert environment("portal-web")["PORTAL_HTTP_BIND"] == "0.0.0.0:8000"
    assert target("portal-web") == "http://127.0.0.1:8000/readyz"
    assert environment("auth-grpc")["AUTH_GRPC_ADDR"] == "0.0.0.0:50051"
    assert target("auth-grpc") == "grpc://127.0.0.1:50051"
    assert environment("notify-server")["NOTIFY_GRPC_ADDR"] == "0.0.0.0:50052"
    assert target("notify-server") == "grpc://127.0.0.1:50052"
    # The relay and the worker: /healthz on their metrics port (the loop is turning).
    assert environment("auth-relay")["AUTH_RELAY_METRICS_BIND"] == "0.0.0.0:9090"
    assert target("auth-relay") == "http://127.0.0.1:9090/healthz"
    assert environment("notify-worker")["NOTIFY_WORKER_METRICS_BIND"] == "0.0.0.0:9090"
    assert target("notify-worker") == "http://127.0.0.1:9090/healthz"
    # Clients reach the gRPC servers by service name.
    assert environment("portal-web")["AUTH_GRPC_ADDR"] == "auth-grpc:50051"
    assert environment("auth-relay")["NOTIFY_GRPC_ADDR"] == "notify-server:50052"
    # Only loopback on the host: the two web front ends and the mail inbox.
    published = {name: s.get("ports", []) for name, s in services.items()}
    assert published["auth-web"] == ["127.0.0.1:8001:8001", "127.0.0.1:8000:8000"]
    assert published["mailpit"] == ["127.0.0.1:8025:8025"]
    assert all(not ports for name, ports in published.items() if name not in {"auth-web", "mailpit"})


def test_each_process_gets_exactly_the_secrets_it_reads_as_files() -> None:
    spec = compose()
    secrets = spec["secrets"]
    for name, needed in NEEDS.items():
        service = spec["services"][name]
        mounted = {secrets[s]["environment"] for s in service["secrets"]}
        assert mounted == needed, f"{name}: mounted {sorted(mounted)}, reads {sorted(needed)}"
        env = service["environment"]
        for variable in needed:
            assert variable not in env, f"{name}: {variable} in plain environment"
            (secret,) = [s for s in service["secrets"] if secrets[s]["environment"] == variable]
            assert env[f"{variable}_FILE"] == f"/run/secrets/{secret}", name


def test_the_env_example_defines_every_variable_with_obviously_dev_secrets() -> None:
    text = COMPOSE.read_text()
    example = env_example()
    required = {m.group(1) for m in re.finditer(r"\$\{([A-Z0-9_]+)\}", text)}
    required |= {s["environment"] for s in compose()["secrets"].values()}
    assert required <= set(example), f"missing from .env.example: {sorted(required - set(example))}"
    for name, value in example.items():
        if any(word in name for word in ("SECRET", "KEY", "PASSWORD")):
            assert value.startswith("dev-only-"), name
        for reference in re.findall(r"\$\{([A-Z0-9_]+)\}", value):
            assert reference in example, f"{name} refers to undefined {reference}"


@pytest.mark.parametrize("service", ["postgres", "redis", "mailpit"])
def test_third_party_images_are_pinned(service: str) -> None:
    image = compose()["services"][service]["image"]
    assert ":" in image and not image.endswith(":latest"), image
