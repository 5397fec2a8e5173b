"""Who a token is for: a user in an auth session, or a service client."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Principal:
    """The user behind a grant, with the sign-in facts tokens carry.

    ``grant_id`` names the token family: every token issued from one
    authorization code (and its refreshes) shares it, so the family can be
    revoked together when a code or refresh token is replayed.
    """

    user_pk: str
    user_id: str
    practice_id: str
    practice_name: str
    name: str
    email: str
    roles: list[str]
    sid: str
    auth_time: int
    amr: list[str] = field(default_factory=list)
    acr: str = ""
    grant_id: str = ""

    def get_user_id(self) -> str:
        return self.user_pk
