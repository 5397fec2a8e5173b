"""The signed device cookie: trusted only for the users who signed in on it, never when forged or expired."""

from __future__ import annotations

import time

from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from services.auth.devices import MAX_AGE_S, DeviceCookies

KEY = "device-cookie-test-key"


def test_a_remembered_browser_is_trusted_for_its_users_only() -> None:
    cookies = DeviceCookies(KEY)
    value = cookies.remember(None, "U.Alice")
    device = cookies.device_for(value, "u.alice")
    assert device is not None
    assert cookies.device_for(value, "u.bob") is None
    both = cookies.remember(value, "u.bob")
    assert cookies.device_for(both, "u.bob") == device == cookies.device_for(both, "u.alice")


def test_unknown_and_forged_cookies_are_unknown_devices() -> None:
    cookies = DeviceCookies(KEY)
    value = cookies.remember(None, "u.alice")
    assert cookies.device_for(None, "u.alice") is None
    assert cookies.device_for("", "u.alice") is None
    assert cookies.device_for("garbage", "u.alice") is None
    assert cookies.device_for(value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1], "u.alice") is None
    assert cookies.device_for(DeviceCookies("another key").remember(None, "u.alice"), "u.alice") is None
    # Same key, but signed for another purpose (salt): not a device cookie.
    other = URLSafeTimedSerializer(KEY, salt="something-else").dumps({"d": "dev", "u": ["u.alice"]})
    assert cookies.device_for(other, "u.alice") is None
    assert cookies.device_for("x" * 5000, "u.alice") is None


class _SignedLongAgo(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - MAX_AGE_S - 60


def test_expired_cookies_are_unknown_devices() -> None:
    cookies = DeviceCookies(KEY)
    old = URLSafeTimedSerializer(KEY, salt="device-cookie", signer=_SignedLongAgo).dumps(
        {"d": "dev-1", "u": ["u.alice"]}
    )
    assert cookies.device_for(old, "u.alice") is None
    fresh = URLSafeTimedSerializer(KEY, salt="device-cookie").dumps({"d": "dev-1", "u": ["u.alice"]})
    assert cookies.device_for(fresh, "u.alice") == "dev-1"


def test_a_cookie_names_at_most_20_users() -> None:
    cookies = DeviceCookies(KEY)
    value = None
    for n in range(25):
        value = cookies.remember(value, f"u.{n}")
    assert cookies.device_for(value, "u.24") is not None
    assert cookies.device_for(value, "u.0") is None
