"""Signing keys: an ES256 key made on first start and kept in the database;
rotation by CLI; JWKS publishes the current key and retired keys whose tokens
may still be alive."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from authlib.jose import ECKey, JsonWebKey
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.auth.store.models import SigningKey
from services.common.db import transaction, utcnow

ALGORITHM = "ES256"


@dataclass(frozen=True)
class LoadedKey:
    kid: str
    private: ECKey
    public_jwk: dict
    retired: bool


class KeyStore:
    """Keys from the database, cached in the process and reloaded when stale or
    when a token names a ``kid`` this process has not seen (after a rotation
    made by another process)."""

    RELOAD_S = 30.0
    MISS_RELOAD_S = 1.0

    def __init__(self, sessions: sessionmaker[Session], keep_retired_s: int) -> None:
        self._sessions = sessions
        self._keep_retired_s = keep_retired_s
        self._lock = threading.Lock()
        self._keys: dict[str, LoadedKey] = {}
        self._current: LoadedKey | None = None
        self._loaded_at = 0.0

    def ensure_key(self) -> None:
        """Make the first signing key if there is none."""
        with transaction(self._sessions) as db:
            if db.scalar(select(SigningKey).where(SigningKey.retired_at.is_(None)).limit(1)) is None:
                db.add(_new_key_row())
        self.reload()

    def rotate(self) -> str:
        """A new current key; the old one keeps verifying until its tokens expire."""
        with transaction(self._sessions) as db:
            for row in db.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None))):
                row.retired_at = utcnow()
            row = _new_key_row()
            db.add(row)
            kid = row.kid
        self.reload()
        return kid

    def reload(self) -> None:
        cutoff = utcnow() - timedelta(seconds=self._keep_retired_s)
        with self._sessions() as db:
            rows = list(
                db.scalars(
                    select(SigningKey)
                    .where((SigningKey.retired_at.is_(None)) | (SigningKey.retired_at > cutoff))
                    .order_by(SigningKey.created_at)
                )
            )
        keys: dict[str, LoadedKey] = {}
        current = None
        for row in rows:
            private = JsonWebKey.import_key(row.private_pem, {"kty": "EC"})
            public = private.as_dict(is_private=False)
            public.update({"kid": row.kid, "alg": row.alg, "use": "sig"})
            loaded = LoadedKey(row.kid, private, public, row.retired_at is not None)
            keys[row.kid] = loaded
            if row.retired_at is None:
                current = loaded
        with self._lock:
            self._keys = keys
            self._current = current
            self._loaded_at = time.monotonic()

    def _fresh(self) -> None:
        if time.monotonic() - self._loaded_at > self.RELOAD_S:
            self.reload()

    def current(self) -> LoadedKey:
        self._fresh()
        if self._current is None:
            self.reload()
        if self._current is None:
            raise RuntimeError("no signing key: run the auth service once, or providerctl auth keys rotate")
        return self._current

    def get(self, kid: str) -> LoadedKey | None:
        self._fresh()
        key = self._keys.get(kid)
        if key is None and time.monotonic() - self._loaded_at > self.MISS_RELOAD_S:
            # Perhaps another process rotated; look again, but at most once a second so
            # tokens with made-up kids cannot turn into a database query each.
            self.reload()
            key = self._keys.get(kid)
        return key

    def jwks(self) -> dict:
        self._fresh()
        return {"keys": [key.public_jwk for key in self._keys.values()]}


def _new_key_row() -> SigningKey:
    key = JsonWebKey.generate_key("EC", "P-256", is_private=True)
    pem = key.as_pem(is_private=True).decode()
    return SigningKey(
        kid=secrets.token_urlsafe(12), alg=ALGORITHM, private_pem=pem, created_at=utcnow(), retired_at=None
    )
