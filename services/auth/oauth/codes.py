"""Authorization codes: single use, 60 seconds, stored only as a hash.

A code presented a second time revokes every token its first use issued
(RFC 6749 §4.1.2), so a stolen-and-replayed code is worth nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from authlib.oauth2.rfc6749 import AuthorizationCodeMixin

from services.auth.store.models import AuthorizationCode


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


@dataclass
class StoredCode(AuthorizationCodeMixin):
    row: AuthorizationCode

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope

    def get_nonce(self) -> str | None:
        return self.row.nonce

    def get_auth_time(self) -> int:
        return self.row.auth_time

    def get_acr(self) -> str | None:
        return self.row.acr

    def get_amr(self) -> list[str]:
        return list(self.row.amr)

    # Authlib's PKCE extension reads these two as attributes.
    @property
    def code_challenge(self) -> str | None:
        return self.row.code_challenge

    @property
    def code_challenge_method(self) -> str | None:
        return self.row.code_challenge_method

    def get_code_challenge(self) -> str | None:
        return self.row.code_challenge

    def get_code_challenge_method(self) -> str | None:
        return self.row.code_challenge_method
