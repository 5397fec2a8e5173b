"""Turning a template name and parameters into the subject, text and HTML of an email.

Rendering happens when a message is accepted, not when it is delivered: the
stored message is exactly what will be sent, a template edit never changes a
message already in the outbox, and a template error surfaces to the caller as
INVALID_ARGUMENT instead of a dead message hours later.

Jinja2 with ``StrictUndefined`` (a missing value is an error, never an empty
string) and autoescaping for ``.html`` files only (the text part must not show
``&amp;``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import jinja2

from services.notify.catalog import MAX_PARAM_CHARS, TEMPLATES, TemplateSpec, spec_for
from services.notify.errors import InvalidRequest

TEMPLATES_DIR = Path(__file__).parent / "templates"
DEFAULT_LOCALE = "en"
MAX_SUBJECT_CHARS = 200
PARTS = ("subject.txt", "body.txt", "body.html")

_NUL = re.compile(r"\x00")


@dataclass(frozen=True)
class RenderedEmail:
    """What is stored in the outbox and later handed to a transport."""

    subject: str
    text: str
    html: str
    locale: str


def make_environment(directory: Path = TEMPLATES_DIR) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def check_params(spec: TemplateSpec, params: Mapping[str, str]) -> dict[str, str]:
    """The context for ``spec``: defaults overlaid with the caller's values.

    Missing or blank required parameters are reported together, so a caller
    fixes them in one go. Unknown parameters are ignored rather than refused:
    a newer caller may send a parameter before notify's templates use it.
    """
    missing = sorted(name for name in spec.required if not (params.get(name) or "").strip())
    if missing:
        raise InvalidRequest(f"template {spec.name!r} needs params: {', '.join(missing)} (missing or empty)")
    context = spec.defaults()
    for name in spec.allowed():
        if name not in params:
            continue
        value = params[name]
        if len(value) > MAX_PARAM_CHARS:
            raise InvalidRequest(f"param {name!r} is longer than {MAX_PARAM_CHARS} characters")
        if _NUL.search(value):
            raise InvalidRequest(f"param {name!r} contains a NUL character")
        context[name] = value
    for name in spec.url_params:
        url = context.get(name, "")
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.netloc or any(c.isspace() for c in url):
            raise InvalidRequest(f"param {name!r} must be an absolute http(s) URL")
    return context


def one_line(subject: str) -> str:
    """A header-safe subject: whitespace (including newlines from params) collapsed, length capped."""
    flat = " ".join(subject.split())
    if len(flat) > MAX_SUBJECT_CHARS:
        flat = flat[: MAX_SUBJECT_CHARS - 1].rstrip() + "…"
    return flat


class Renderer:
    """Renders the templates under one directory; safe to share between threads."""

    def __init__(self, directory: Path = TEMPLATES_DIR) -> None:
        self._env = make_environment(directory)

    def _select(self, template: str, part: str, locale: str) -> jinja2.Template:
        # Most specific first: "es-MX", then "es", then the default wording.
        language = locale.split("-")[0].lower()
        names = [f"{template}/{locale}/{part}", f"{template}/{language}/{part}", f"{template}/{part}"]
        return self._env.select_template(names)

    def render(self, template: str, params: Mapping[str, str], locale: str = DEFAULT_LOCALE) -> RenderedEmail:
        """Render all three parts, or raise ``InvalidRequest`` naming what is wrong."""
        spec = spec_for(template)
        if spec is None:
            known = ", ".join(sorted(TEMPLATES))
            raise InvalidRequest(f"unknown template {template[:64]!r}; known templates: {known}")
        context = check_params(spec, params)
        context["locale"] = locale
        try:
            subject, text, html = (self._select(template, part, locale).render(context) for part in PARTS)
        except jinja2.UndefinedError as exc:
            # A template uses a name its spec does not declare: our bug, caught by the unit tests.
            raise RuntimeError(f"template {template!r} is inconsistent with its spec: {exc}") from exc
        return RenderedEmail(subject=one_line(subject), text=text, html=html, locale=locale)
