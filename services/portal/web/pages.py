"""The portal's stock answers: temporarily unavailable, maintenance, and friendly messages.

The 503 pages use the shared self-contained error page, so they render even
when what failed is something a normal page needs.
"""

from __future__ import annotations

from flask import Response, render_template

from services.common.maintenance import RETRY_AFTER_S
from services.common.web import error_page

UNAVAILABLE_RETRY_AFTER_S = 60


def unavailable() -> Response:
    """Redis, auth or the token check is out of reach: a clear 503, never a 500."""
    response = error_page(
        503,
        "Temporarily unavailable",
        "The portal is temporarily unavailable, try again in a few minutes.",
    )
    response.headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER_S)
    return response


def maintenance(message: str) -> Response:
    response = error_page(
        503,
        "Down for maintenance",
        message or "Provider Center is down for maintenance. Please try again a little later.",
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


def message(status: int, title: str, text: str, *, link: str | None = None, link_text: str = "") -> Response:
    """A short page in the portal's own layout: a heading, a sentence and one way on."""
    body = render_template(
        "message.html", status=status, title=title, text=text, link=link, link_text=link_text
    )
    return Response(body, status=status, mimetype="text/html")
