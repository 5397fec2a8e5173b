"""How the service layer's errors are answered: JSON under ``/api/``, a short page elsewhere."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Flask, Response, jsonify, redirect, request, url_for

from services.portal.errors import (
    Forbidden,
    IdempotencyInFlight,
    IdempotencyMismatch,
    NotFound,
    StepUpRequired,
    TooManyRequests,
    ValidationError,
)
from services.portal.web import pages

NOT_FOUND_TEXT = {
    "account": "No such account at this practice.",
    "application": "No such application at this practice.",
    "plan": "This practice does not offer that plan.",
    "transaction": "No such transaction at this practice.",
    "hold": "No such hold at this practice.",
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
        response = _json(403, error="forbidden", message=str(exc), permission=exc.permission)
        if exc.scope:  # RFC 6750 §3.1: the token lacks a scope (not the user a role)
            response.headers["WWW-Authenticate"] = (
                f'Bearer error="insufficient_scope", error_description="{exc}", scope="{exc.scope}"'
            )
        return response
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


def key_reused(exc: IdempotencyMismatch) -> Response:
    """The same ``Idempotency-Key`` with a different request: 422, nothing done."""
    text = "This Idempotency-Key was already used with a different request."
    if is_api():
        return _json(422, error="idempotency_key_reused", message=text)
    return pages.message(
        422, "Already submitted differently", text, link="/", link_text="Back to the dashboard"
    )


def in_flight(exc: IdempotencyInFlight) -> Response:
    """A request with the same key is still being processed: 409, try again shortly."""
    text = "The same request is still being processed; try again in a moment."
    if is_api():
        response = _json(409, error="idempotency_key_in_use", message=text)
    else:
        response = pages.message(
            409, "Already in progress", text, link="/", link_text="Back to the dashboard"
        )
    response.headers["Retry-After"] = "1"
    return response


STEP_UP_CHALLENGE = (
    'Bearer error="insufficient_user_authentication", '
    'error_description="A more recent sign-in is required", max_age={max_age}'
)


def step_up(exc: StepUpRequired) -> Response:
    """RFC 9470: the API answers 401 with the challenge; a page sends the browser to sign in
    again at auth (``prompt=login``, ``max_age``), coming back to the same page."""
    if is_api():
        response = _json(
            401,
            error="insufficient_user_authentication",
            message="A more recent sign-in is required.",
            max_age=exc.max_age,
        )
        response.headers["WWW-Authenticate"] = STEP_UP_CHALLENGE.format(max_age=exc.max_age)
        return response
    from services.portal.web.signin import safe_next

    back = request.path
    amount = request.form.get("amount_cents", "").strip() if request.method == "POST" else ""
    if amount and len(amount) <= 20:
        # The form opens again with the amount the user typed (its GET takes ?amount=); only the
        # amount, so nothing a user wrote about a patient ends up in URLs and access logs.
        back += "?" + urlencode({"amount": amount})
    return redirect(url_for("signin.login", next=safe_next(back), reauth="1", max_age=exc.max_age))


def install(app: Flask) -> None:
    app.register_error_handler(TooManyRequests, too_many)
    app.register_error_handler(NotFound, not_found)
    app.register_error_handler(Forbidden, forbidden)
    app.register_error_handler(ValidationError, invalid)
    app.register_error_handler(IdempotencyMismatch, key_reused)
    app.register_error_handler(IdempotencyInFlight, in_flight)
    app.register_error_handler(StepUpRequired, step_up)
