"""The device cookie (OWASP's device-cookie approach to lockout): a browser
that completed a sign-in for a user carries a signed token naming the device
and the users who signed in on it, so its failures are counted apart from
everyone else's."""

from __future__ import annotations

import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "pc_auth_device"
MAX_AGE_S = 180 * 86400
MAX_USERS = 20


class DeviceCookies:
    def __init__(self, secret_key: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="device-cookie")

    def read(self, value: str | None) -> tuple[str | None, list[str]]:
        """The device id and its users, or (None, []) for an unknown or forged cookie."""
        if not value or len(value) > 4096:
            return None, []
        try:
            data = self._serializer.loads(value, max_age=MAX_AGE_S)
        except BadSignature:
            return None, []
        if not isinstance(data, dict) or not isinstance(data.get("d"), str):
            return None, []
        users = [u for u in data.get("u", []) if isinstance(u, str)]
        return data["d"], users

    def device_for(self, value: str | None, user_id: str) -> str | None:
        """The device id when this browser is trusted for ``user_id``."""
        device, users = self.read(value)
        return device if device and user_id.lower() in users else None

    def remember(self, value: str | None, user_id: str) -> str:
        """The cookie value after ``user_id`` completed a sign-in on this browser."""
        device, users = self.read(value)
        device = device or secrets.token_urlsafe(16)
        users = [u for u in users if u != user_id.lower()] + [user_id.lower()]
        return self._serializer.dumps({"d": device, "u": users[-MAX_USERS:]})
