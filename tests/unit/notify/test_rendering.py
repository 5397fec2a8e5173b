"""Rendering: every template renders, HTML is escaped, parameters are strict."""

from __future__ import annotations

from pathlib import Path

import jinja2
import jinja2.meta
import pytest

from services.notify.catalog import COMMON_DEFAULTS, TEMPLATES
from services.notify.errors import InvalidRequest
from services.notify.rendering import PARTS, TEMPLATES_DIR, Renderer, make_environment

SAMPLE = {
    "user_ids": "ann.smith — Smile Dental\nann.vet — Happy Paws",
    "name": "Ann Smith",
    "reset_url": "https://auth.example.test/reset?token=abc&x=1",
    "expires_minutes": "30",
    "when": "26 Nov 2026 12:00 UTC",
    "locked_until": "26 Nov 2026 12:15 UTC",
    "unlock_url": "https://auth.example.test/reset?token=def",
    "ip": "203.0.113.7",
    "user_agent": "Firefox on Linux",
    "practice_name": "Smile Dental",
    "invite_url": "https://auth.example.test/invite/xyz",
    "expires_hours": "72",
    "ticket_id": "T-1234",
    "subject": "Card reader",
    "body": "The card reader does not connect.\nPlease call me.",
    "from_name": "Ann Smith",
    "order_id": "O-77",
    "items": "2 × Brochure stand\n50 × Patient leaflet",
}


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def params_for(name: str) -> dict[str, str]:
    return {key: SAMPLE[key] for key in TEMPLATES[name].required}


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_template_renders_with_its_required_params(renderer: Renderer, name: str) -> None:
    email = renderer.render(name, params_for(name))
    assert email.subject and "\n" not in email.subject
    assert email.text.strip() and email.html.strip()
    assert "support@providercenter.example" in email.text  # optional defaults apply
    assert "1-800-555-0199" in email.html
    assert "<html" in email.html and "<html" not in email.text
    for key in TEMPLATES[name].required:
        if key in ("user_ids", "items", "body"):
            first_line = SAMPLE[key].splitlines()[0]
            assert first_line in email.text
        else:
            assert SAMPLE[key] in email.text, f"{key} missing from {name} text"


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_templates_use_only_declared_params(name: str) -> None:
    """A template naming an undeclared param would fail at send time; catch it here."""
    env = make_environment()
    allowed = set(TEMPLATES[name].allowed()) | {"locale"}
    sources = [f"{name}/{part}" for part in PARTS] + ["_layout.html", "_footer.txt", "_button.html"]
    for source_name in sources:
        source = env.loader.get_source(env, source_name)[0]  # type: ignore[union-attr]
        used = jinja2.meta.find_undeclared_variables(env.parse(source))
        # _button.html's url/label come from the {% with %} that includes it.
        used -= {"url", "label"}
        if source_name.startswith("_"):
            used -= set(COMMON_DEFAULTS) | {"locale"}
        assert used <= allowed, f"{source_name} uses undeclared {sorted(used - allowed)}"


def test_every_catalog_template_has_its_files() -> None:
    for name in TEMPLATES:
        for part in PARTS:
            assert (TEMPLATES_DIR / name / part).is_file(), f"{name}/{part}"
    on_disk = {p.name for p in TEMPLATES_DIR.iterdir() if p.is_dir()}
    assert on_disk == set(TEMPLATES)


def test_html_part_is_escaped_and_text_part_is_not(renderer: Renderer) -> None:
    params = params_for("password_changed") | {"name": '<script>alert("x")</script> & Co'}
    email = renderer.render("password_changed", params)
    assert "<script>" not in email.html
    assert "&lt;script&gt;" in email.html and "&amp; Co" in email.html
    assert '<script>alert("x")</script> & Co' in email.text


def test_link_params_are_escaped_inside_href(renderer: Renderer) -> None:
    params = params_for("password_reset") | {"reset_url": 'https://a.test/r?t=1&u="><b>x'}
    email = renderer.render("password_reset", params)
    assert 'href="https://a.test/r?t=1&amp;u=&#34;&gt;&lt;b&gt;x"' in email.html
    assert "<b>x" not in email.html


@pytest.mark.parametrize("url", ["javascript:alert(1)", "/relative/path", "ftp://x.test/", "https://"])
def test_link_params_must_be_absolute_http_urls(renderer: Renderer, url: str) -> None:
    with pytest.raises(InvalidRequest, match="reset_url"):
        renderer.render("password_reset", params_for("password_reset") | {"reset_url": url})


def test_missing_params_are_all_named(renderer: Renderer) -> None:
    with pytest.raises(InvalidRequest) as caught:
        renderer.render("password_reset", {"name": "Ann"})
    message = str(caught.value)
    assert "password_reset" in message
    assert "expires_minutes" in message and "reset_url" in message
    assert "name" not in message.split("needs params:")[1]


def test_blank_required_param_counts_as_missing(renderer: Renderer) -> None:
    with pytest.raises(InvalidRequest, match="name"):
        renderer.render("mfa_changed", {"name": "  ", "when": "today"})


def test_unknown_template_is_refused_with_the_known_ones(renderer: Renderer) -> None:
    with pytest.raises(InvalidRequest, match="unknown template 'nope'.*password_reset"):
        renderer.render("nope", {})


def test_unknown_params_are_ignored(renderer: Renderer) -> None:
    email = renderer.render("mfa_changed", {"name": "Ann", "when": "today", "future_param": "x"})
    assert "future_param" not in email.text


def test_optional_params_override_defaults(renderer: Renderer) -> None:
    params = params_for("mfa_changed") | {
        "support_email": "help@smile.example",
        "support_phone": "555-1234",
        "practice_name": "Smile Dental",
    }
    email = renderer.render("mfa_changed", params)
    assert "help@smile.example" in email.text and "555-1234" in email.html
    assert "Smile Dental" in email.text
    assert "support@providercenter.example" not in email.text


def test_subject_from_params_stays_one_line(renderer: Renderer) -> None:
    params = params_for("support_request") | {"subject": "Help\r\nBcc: victim@example.test"}
    email = renderer.render("support_request", params)
    assert "\n" not in email.subject and "\r" not in email.subject
    assert email.subject == "Support request T-1234: Help Bcc: victim@example.test"


def test_long_subject_is_capped(renderer: Renderer) -> None:
    params = params_for("support_request") | {"subject": "x" * 1000}
    assert len(renderer.render("support_request", params).subject) == 200


def test_oversized_param_is_refused(renderer: Renderer) -> None:
    with pytest.raises(InvalidRequest, match="longer than"):
        renderer.render("mfa_changed", {"name": "A" * 20_001, "when": "today"})


def test_strict_undefined_in_a_template_is_an_error(tmp_path: Path) -> None:
    """StrictUndefined: a template typo fails loudly instead of sending an empty value."""
    (tmp_path / "mfa_changed").mkdir()
    (tmp_path / "mfa_changed" / "subject.txt").write_text("Hi {{ nmae }}")
    (tmp_path / "mfa_changed" / "body.txt").write_text("x")
    (tmp_path / "mfa_changed" / "body.html").write_text("x")
    with pytest.raises(RuntimeError, match="nmae"):
        Renderer(tmp_path).render("mfa_changed", {"name": "Ann", "when": "today"})


def test_locale_falls_back_to_the_default_wording(tmp_path: Path, renderer: Renderer) -> None:
    params = params_for("mfa_changed")
    assert renderer.render("mfa_changed", params, "fr-CA").text == renderer.render("mfa_changed", params).text
    for part in PARTS:
        (tmp_path / "mfa_changed" / "es").mkdir(parents=True, exist_ok=True)
        (tmp_path / "mfa_changed" / part).write_text("English {{ name }}")
        (tmp_path / "mfa_changed" / "es" / part).write_text("Hola {{ name }}")
    assert Renderer(tmp_path).render("mfa_changed", params, "es-MX").text == "Hola Ann Smith"
    assert Renderer(tmp_path).render("mfa_changed", params, "en").text == "English Ann Smith"


def test_user_id_lines_become_a_list(renderer: Renderer) -> None:
    email = renderer.render("user_id_reminder", {"user_ids": "a.one — A & B\n\nb.two — C"})
    assert email.html.count("<li") == 2
    assert "A &amp; B" in email.html
    assert "a.one — A & B" in email.text and "b.two — C" in email.text
