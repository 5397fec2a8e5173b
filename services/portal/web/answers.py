"""How the service layer's errors are answered: JSON under ``/api/``, a short page elsewhere."""

from __future__ import annotations

from flask import Flask, Response, jsonify, request

from services.portal.errors import Forbidden, NotFound, TooManyRequests, ValidationError
from services.portal.web import pages

NOT_FOUND_TEXT = {
    "account": "No such account at this practice.",
    "application": "No such application at this practice.",
    "plan": "This practice does not offer that plan.",
}


def is_api() -> bool:
    return request.path.startswith("/api/")


def _json(status: int, **body: object) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def not_found(exc: NotFound) -> Response:
    what = str(exc.args[0]) if exc.args else ""
    text = NOT_FOUND_TEXT.get(what, "Nothing here.")
    if is_api():
        return _json(404, error="not_found", message=text)
    return pages.message(404, "Not found", text, link="/", link_text="Back to the dashboard")


def forbidden(exc: Forbidden) -> Response:
    if is_api():
        return _json(403, error="forbidden", message=str(exc), permission=exc.permission)
    return pages.message(
        403,
        "Not allowed",
        f"{exc} Ask your practice's account administrator if you need it.",
        link="/",
        link_text="Back to the dashboard",
    )


def invalid(exc: ValidationError) -> Response:
    if is_api():
        return _json(400, error="validation_error", message="Some fields are not valid.", fields=exc.fields)
    listed = "; ".join(f"{name.replace('_', ' ')} {message}" for name, message in exc.fields.items())
    return pages.message(
        400, "Please check what was entered", listed, link="/", link_text="Back to the dashboard"
    )


def too_many(exc: TooManyRequests) -> Response:
    """RFC 6585 §4: 429 with ``Retry-After``."""
    if is_api():
        response = _json(429, error="too_many_requests", message=str(exc))
    else:
        response = pages.message(
            429, "Please wait a little", str(exc), link="/", link_text="Back to the dashboard"
        )
    response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


def install(app: Flask) -> None:
    app.register_error_handler(TooManyRequests, too_many)
    app.register_error_handler(NotFound, not_found)
    app.register_error_handler(Forbidden, forbidden)
    app.register_error_handler(ValidationError, invalid)
