"""The email kinds notify can send and the parameters each one takes.

This is the contract callers code against: a template name, its required
parameters (a missing one is INVALID_ARGUMENT) and the optional ones with
their defaults. The wording lives in ``templates/<name>/``; a unit test checks
that every template uses only the parameters declared here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Every template may use these; callers usually leave them out.
COMMON_DEFAULTS: Mapping[str, str] = {
    "practice_name": "",
    "support_email": "support@providercenter.example",
    "support_phone": "1-800-555-0199",
}

# A parameter value longer than this is a caller bug (or abuse), not an email.
MAX_PARAM_CHARS = 20_000


@dataclass(frozen=True)
class TemplateSpec:
    """One email kind: what it needs and what it may be given.

    ``url_params`` must be absolute http(s) URLs: they become links, and a
    ``javascript:`` link in an email must be impossible whatever the caller sends.
    """

    name: str
    required: tuple[str, ...]
    optional: Mapping[str, str] = field(default_factory=dict)
    url_params: tuple[str, ...] = ()

    def defaults(self) -> dict[str, str]:
        return {**COMMON_DEFAULTS, **self.optional}

    def allowed(self) -> frozenset[str]:
        return frozenset(self.required) | frozenset(self.defaults())


def _spec(name: str, /, *required: str, urls: tuple[str, ...] = (), **optional: str) -> TemplateSpec:
    return TemplateSpec(name=name, required=required, optional=optional, url_params=urls)


TEMPLATES: Mapping[str, TemplateSpec] = {
    spec.name: spec
    for spec in (
        # user_ids: one line per account, "USERID — Practice Name"; name greets the owner if given.
        _spec("user_id_reminder", "user_ids", name=""),
        _spec("password_reset", "name", "reset_url", "expires_minutes", urls=("reset_url",)),
        _spec("password_changed", "name", "when"),
        _spec("account_locked", "name", "locked_until", "unlock_url", urls=("unlock_url",)),
        _spec("mfa_changed", "name", "when"),
        _spec("new_device_signin", "name", "when", "ip", "user_agent"),
        _spec("invitation", "name", "practice_name", "invite_url", "expires_hours", urls=("invite_url",)),
        # Sent to the support team; from_email lets them reply to the requester.
        _spec("support_request", "ticket_id", "subject", "body", "from_name", from_email=""),
        _spec("support_confirmation", "name", "ticket_id", "subject"),
        # items: one line per item, e.g. "2 × Brochure stand".
        _spec("supplies_order", "practice_name", "order_id", "items"),
        _spec("supplies_confirmation", "name", "order_id", "items"),
    )
}


def spec_for(template: str) -> TemplateSpec | None:
    return TEMPLATES.get(template)
