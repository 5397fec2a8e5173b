"""The :class:`Actor` of a request, built only from auth's answer about the token.

The practice and roles come from :class:`TokenInfo` — never from the request's
path, query, body or headers; the request gives only its address and id.
"""

from __future__ import annotations

from flask import g

from services.common.token_client import TokenInfo
from services.common.web import client_ip
from services.portal.permissions import Actor
from services.portal.web.context import portal


def actor_from(info: TokenInfo, *, channel: str, name: str = "") -> Actor:
    return Actor(
        sub=info.sub,
        practice_id=info.practice_id,
        roles=tuple(info.roles),
        name=info.name or name,
        ip=client_ip(portal().settings.trusted_proxies),
        request_id=getattr(g, "request_id", ""),
        channel=channel,
        auth_time=info.auth_time,
        scopes=tuple(info.scope.split()),
    )


def page_actor() -> Actor:
    """The signed-in user of a page request (``signin.require_sign_in`` put ``g.user`` there)."""
    actor = getattr(g, "actor", None)
    if actor is None:
        actor = actor_from(g.user, channel="web", name=str(g.signed_in.get("name", "")))
        g.actor = actor
    return actor
