"""Helpers the form pages share: run a service call, and on bad input show the form again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, render_template, request

from services.common.web import check_csrf
from services.portal.errors import ValidationError

T = TypeVar("T")


def submitted(call: Callable[[], T], template: str, status: int = 400, **context: Any) -> T | Response:
    """CSRF-check the posted form, then ``call()``; on :class:`ValidationError` re-render the form
    with the values typed and a message per field (``errors``)."""
    check_csrf()
    try:
        return call()
    except ValidationError as exc:
        body = render_template(template, values=request.form, errors=exc.fields, **context)
        return Response(body, status=status, mimetype="text/html")


def query_or_errors(call: Callable[[], T]) -> tuple[T | None, dict[str, str]]:
    """For list pages: the result, or nothing and the query's field errors."""
    try:
        return call(), {}
    except ValidationError as exc:
        return None, exc.fields
