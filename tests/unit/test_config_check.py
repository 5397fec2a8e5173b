"""providerctl config check: masks secrets, and names every unsafe production setting."""

from __future__ import annotations

import secrets

from services.config_check import _mask, problems

SAFE = {
    "PC_ENV": "production",
    "AUTH_ISSUER": "https://auth.example.com",
    "PORTAL_URL": "https://portal.example.com",
    "AUTH_DATABASE_URL": "postgresql+psycopg://auth:pw@db/auth",
    "PORTAL_DATABASE_URL": "postgresql+psycopg://portal:pw@db/portal",
    "NOTIFY_DATABASE_URL": "postgresql+psycopg://notify:pw@db/notify",
    "REDIS_URL": "rediss://redis:6380/0",
    "NOTIFY_SMTP_URL": "smtp://mail:587?starttls=true",
    **{name: secrets.token_urlsafe(32) for name in (
        "AUTH_SECRET_KEY", "AUTH_TOTP_KEY", "AUTH_CLIENT_SECRET_KEY", "PORTAL_CLIENT_SECRET", "PORTAL_SECRET_KEY"
    )},
}


def test_a_safe_production_configuration_has_no_problems() -> None:
    assert problems(SAFE, look_for_demo_users=False) == []


def test_each_unsafe_setting_is_named() -> None:
    unsafe = {
        **SAFE,
        "AUTH_ISSUER": "http://auth.example.com",
        "PORTAL_DATABASE_URL": "sqlite:///var/portal.db",
        "NOTIFY_SMTP_URL": "",
        "AUTH_TOTP_KEY": "dev-only-totp-key-0000000000000000000000",
        "AUTH_ARGON2_MEMORY_KIB": "8192",
    }
    unsafe.pop("REDIS_URL")
    found = "\n".join(problems(unsafe, look_for_demo_users=False))
    assert "AUTH_ISSUER" in found and "not https" in found
    assert "PORTAL_DATABASE_URL is SQLite" in found
    assert "embedded Redis" in found
    assert "file" in found  # the file mail transport
    assert "AUTH_TOTP_KEY is a development" in found
    assert "below the OWASP minimum" in found


def test_secrets_and_url_passwords_are_masked() -> None:
    assert "hunter2" not in _mask("AUTH_SECRET_KEY", "hunter2")
    masked = _mask("AUTH_DATABASE_URL", "postgresql+psycopg://auth:hunter2@db/auth")
    assert "hunter2" not in masked and "db/auth" in masked


def test_bad_web_numbers_and_metrics_binds_are_named() -> None:
    found = "\n".join(
        problems({**SAFE, "WEB_THREADS": "many", "AUTH_RELAY_METRICS_BIND": "9090"}, look_for_demo_users=False)
    )
    assert "WEB_THREADS" in found and "AUTH_RELAY_METRICS_BIND" in found
    assert problems({**SAFE, "AUTH_RELAY_METRICS_BIND": "0.0.0.0:9090"}, look_for_demo_users=False) == []


def test_the_check_shows_what_unset_web_settings_mean(capsys, tmp_path, monkeypatch) -> None:
    from services import config_check
    from services.common.webserver import default_workers
    from services.config_check import check

    # No database here (looking for the demo users would start an embedded Redis, too).
    monkeypatch.setattr(config_check, "_demo_users", lambda _env: [])
    check({"PC_ENV": "development", "PC_VAR_DIR": str(tmp_path)})
    shown = capsys.readouterr().out
    assert f"(default: {default_workers()}, 2 × CPUs + 1)" in shown
    assert "NOTIFY_WORKER_METRICS_BIND" in shown
