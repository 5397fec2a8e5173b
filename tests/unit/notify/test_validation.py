"""What Send refuses before storing anything, and the settings it starts from."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.config import ConfigError
from services.notify.errors import InvalidRequest
from services.notify.outbox import request_hash
from services.notify.settings import Settings
from services.notify.validation import check_address, check_idempotency_key, check_locale


@pytest.mark.parametrize(
    "address",
    [
        "ann@example.test",
        "ann.smith+reset@mail.example.co.uk",
        "o'brien@example.test",
        "x@a-b.example",
        "用户@example.test",
    ],
)
def test_plausible_addresses_pass(address: str) -> None:
    assert check_address(address) == address


@pytest.mark.parametrize(
    "address",
    [
        "",
        "ann",
        "ann@",
        "@example.test",
        "ann@localhost",
        "ann smith@example.test",
        "ann@exa mple.test",
        "ann@example.test\r\nBcc: x@y.test",
        "Ann <ann@example.test>",
        "ann@-example.test",
        "ann@example..test",
        ".ann@example.test",
        "an..n@example.test",
        "ann@1.2.3.4",
        "a" * 65 + "@example.test",
        "a@" + "b" * 250 + ".test",
    ],
)
def test_implausible_addresses_are_refused(address: str) -> None:
    with pytest.raises(InvalidRequest):
        check_address(address)


def test_idempotency_key_limits() -> None:
    assert check_idempotency_key("k" * 200) == "k" * 200
    for bad in ("", "   ", "k" * 201, "a\nb"):
        with pytest.raises(InvalidRequest, match="idempotency_key"):
            check_idempotency_key(bad)


def test_locale() -> None:
    assert check_locale("") == "en"
    assert check_locale("es-MX") == "es-MX"
    for bad in ("e", "english-language-x-very-long-tag-abcdefgh", "en_US", "../etc"):
        with pytest.raises(InvalidRequest, match="locale"):
            check_locale(bad)


def test_request_hash_ignores_param_order() -> None:
    assert request_hash("t", "a@b.test", {"x": "1", "y": "2"}, "en") == request_hash(
        "t", "a@b.test", {"y": "2", "x": "1"}, "en"
    )
    assert request_hash("t", "a@b.test", {"x": "1"}, "en") != request_hash("t", "a@b.test", {"x": "2"}, "en")


def test_settings_defaults(tmp_path: Path) -> None:
    settings = Settings.from_env({"PC_VAR_DIR": str(tmp_path)})
    assert settings.grpc_addr == "127.0.0.1:50052"
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'notify.db'}"
    assert settings.mail_dir == tmp_path.resolve() / "mail"
    assert settings.max_attempts == 8 and settings.poll_s == 0.5
    assert settings.smtp_url is None
    assert settings.mail_from == "Provider Center <no-reply@providercenter.example>"
    assert settings.migrate_on_start is True
    assert Settings.from_env({"PC_VAR_DIR": str(tmp_path), "PC_ENV": "production"}).migrate_on_start is False


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"NOTIFY_MAX_ATTEMPTS": "0"}, "NOTIFY_MAX_ATTEMPTS"),
        ({"NOTIFY_POLL_S": "soon"}, "NOTIFY_POLL_S"),
        ({"NOTIFY_POLL_S": "nan"}, "NOTIFY_POLL_S"),
        ({"NOTIFY_BACKOFF_BASE_S": "10", "NOTIFY_BACKOFF_CAP_S": "5"}, "NOTIFY_BACKOFF_CAP_S"),
        ({"NOTIFY_LEASE_S": "5", "NOTIFY_SMTP_TIMEOUT_S": "10"}, "NOTIFY_LEASE_S"),
        ({"NOTIFY_SMTP_URL": "http://x.test"}, "NOTIFY_SMTP_URL"),
        ({"NOTIFY_FROM": "nobody"}, "NOTIFY_FROM"),
    ],
)
def test_settings_refuse_bad_values(tmp_path: Path, env: dict[str, str], reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        Settings.from_env({"PC_VAR_DIR": str(tmp_path), **env})
