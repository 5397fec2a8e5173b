"""The portal's domain errors: what the service layer raises and the web layer turns into answers.

Pages show them as short pages, the API as ``{"error": …}`` JSON; the mapping
lives in ``web/answers.py`` so both say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping


class PortalError(Exception):
    """Base of the errors a user can be told about."""


class NotFound(PortalError):
    """No such object *for this practice*: another practice's object looks exactly like none."""


class Forbidden(PortalError):
    """The signed-in role lacks the permission the action needs, or the token the scope.

    An OAuth scope (``payments:post``; permission names never have a colon) is no role's
    to grant: the message says which scope the access token lacks (RFC 6750 §3.1).
    """

    def __init__(self, permission: str) -> None:
        self.scope = permission if ":" in permission else ""
        if permission == "any_role":
            message = "You need a role in a practice to use the portal."
        elif self.scope:
            message = f"The access token does not carry the {self.scope} scope."
        else:
            message = f"Your role does not include the {permission.replace('_', ' ')} permission."
        super().__init__(message)
        self.permission = permission


class TooManyRequests(PortalError):
    """Too many attempts in a short time; try again after ``retry_after_s`` seconds."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            f"Too many look-ups in a short time. Try again in {max(1, retry_after_s // 60)} minutes."
        )
        self.retry_after_s = retry_after_s


class ValidationError(PortalError):
    """Input that breaks a rule; ``fields`` maps each field name to what is wrong with it."""

    def __init__(self, fields: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in fields.items()))
        self.fields = dict(fields)


class IdempotencyMismatch(PortalError):
    """The ``Idempotency-Key`` was used before with a different request (422)."""


class IdempotencyInFlight(PortalError):
    """A request with the same ``Idempotency-Key`` is still being processed (409)."""


class StepUpRequired(PortalError):
    """The action needs a sign-in (with the second factor) no older than ``max_age`` seconds (RFC 9470)."""

    def __init__(self, max_age: int) -> None:
        super().__init__("This refund needs a fresh sign-in with your second factor.")
        self.max_age = max_age
