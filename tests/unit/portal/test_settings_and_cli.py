"""Portal settings from the environment, and the command that serves the pages."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

from services.common.config import ConfigError
from services.common.webserver import default_workers
from services.portal import cli
from services.portal.settings import Settings


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"PC_VAR_DIR": str(tmp_path), "REDIS_URL": "redis://127.0.0.1:1/0", **extra}


def test_defaults_match_the_design_card(tmp_path: Path) -> None:
    settings = Settings.from_env(env(tmp_path))
    assert settings.url == "http://127.0.0.1:8000"
    assert settings.http_bind == "127.0.0.1:8000"
    assert settings.client_id == "portal"
    assert settings.auth_issuer == "http://127.0.0.1:8001"
    assert settings.auth_grpc_addr == "127.0.0.1:50051"
    assert settings.notify_grpc_addr == "127.0.0.1:50052"
    assert (settings.session_idle_s, settings.session_max_s) == (900, 43200)
    assert settings.web_workers == default_workers()  # 2 × CPUs + 1 (issue 9)
    assert settings.trusted_proxies == 0
    assert settings.redis_key_prefix == "pc:"
    assert settings.database_url == f"sqlite:///{tmp_path / 'portal.db'}"
    assert settings.session_cookie_name == "pc_portal_session"
    assert not settings.tls
    assert settings.redirect_uri == "http://127.0.0.1:8000/auth/callback"
    assert settings.post_logout_redirect_uri == "http://127.0.0.1:8000/signed-out"
    assert settings.discovery_url == "http://127.0.0.1:8001/.well-known/openid-configuration"


def test_dev_secrets_are_generated_once_and_shared(tmp_path: Path) -> None:
    first = Settings.from_env(env(tmp_path))
    second = Settings.from_env(env(tmp_path))
    assert first.client_secret and first.client_secret == second.client_secret
    assert first.secret_key and first.secret_key != first.client_secret


def test_production_refuses_missing_secrets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PORTAL_CLIENT_SECRET"):
        Settings.from_env(env(tmp_path, PC_ENV="production"))


def test_overrides_and_tls(tmp_path: Path) -> None:
    settings = Settings.from_env(
        env(
            tmp_path,
            PORTAL_URL="https://portal.example/",
            AUTH_ISSUER="https://auth.example",
            PORTAL_SESSION_IDLE_S="600",
            PORTAL_WEB_WORKERS="4",
            REDIS_KEY_PREFIX="x:",
        )
    )
    assert settings.url == "https://portal.example"
    assert settings.tls and settings.session_cookie_name == "__Host-pc_portal_session"
    assert settings.session_idle_s == 600 and settings.web_workers == 4
    assert settings.redis_key_prefix == "x:"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORTAL_URL", "portal.example"),
        ("AUTH_ISSUER", "http://auth.example/?x=1"),
        ("PORTAL_SESSION_IDLE_S", "soon"),
        ("PORTAL_WEB_WORKERS", "0"),
        ("PORTAL_SESSION_IDLE_S", "50000"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match="PORTAL_|AUTH_"):
        Settings.from_env(env(tmp_path, **{name: value}))


def test_web_command_runs_gunicorn_without_an_access_log(tmp_path: Path) -> None:
    settings = Settings.from_env(env(tmp_path, PORTAL_HTTP_BIND="0.0.0.0:8080", PORTAL_WEB_WORKERS="3"))
    argv = cli.gunicorn_argv(settings)
    assert argv[:3] == [sys.executable, "-m", "gunicorn"]
    assert argv[argv.index("--bind") + 1] == "0.0.0.0:8080"
    assert argv[argv.index("--workers") + 1] == "3"
    assert argv[-1] == "services.portal.web.wsgi:app"
    assert not any("access" in arg for arg in argv)


def test_register_adds_the_web_and_audit_verify_commands() -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser)
    args = parser.parse_args(["web"])
    assert args.func is cli._web
    verify = parser.parse_args(["audit", "verify", "--anchor", "12:" + "a" * 64])
    assert verify.func is cli._audit_verify and verify.anchor == (12, "a" * 64)
    with pytest.raises(SystemExit):
        parser.parse_args(["audit", "verify", "--anchor", "twelve"])
    settle = parser.parse_args(["settle", "--date", "2027-01-15"])  # issue 7
    assert settle.func is cli._settle and settle.date.isoformat() == "2027-01-15"
    assert parser.parse_args(["accrue-interest"]).date is None
    with pytest.raises(SystemExit):
        parser.parse_args(["payments", "post", "--account", "4111"])  # amount and key required
