"""Who may do what: the one table of named permissions and the roles that bundle them.

The roles come from auth's token (``roles``); the practice too (``practice_id``).
Nothing in a request's path, query, body or headers can add either. Every
service-layer action starts with :func:`require`, so a page and the API refuse
the same things.

| permission            | admin | manager | front_desk | read_only |
|-----------------------|:-----:|:-------:|:----------:|:---------:|
| purchase              |   ✓   |    ✓    |     ✓      |           |
| refund                |   ✓   |    ✓    |            |           |
| authorization_only    |   ✓   |    ✓    |     ✓      |           |
| account_lookup        |   ✓   |    ✓    |     ✓      |     ✓     |
| prequalification      |   ✓   |    ✓    |     ✓      |           |
| apply                 |   ✓   |    ✓    |     ✓      |           |
| daily_funding_report  |   ✓   |    ✓    |            |     ✓     |
| order_supplies        |   ✓   |    ✓    |     ✓      |           |
| manage_promotions     |   ✓   |    ✓    |            |           |
| user_activity         |   ✓   |         |            |           |

``account_lookup`` covers every read of patient data: account and application
lists and details (with available credit) and the look-up by number or identity.
The plan catalogue and the payment estimator hold no patient data; any staff
role may use them (``any_role``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from services.portal.errors import Forbidden


class Permission(StrEnum):
    PURCHASE = "purchase"
    REFUND = "refund"
    AUTHORIZATION_ONLY = "authorization_only"
    ACCOUNT_LOOKUP = "account_lookup"
    PREQUALIFICATION = "prequalification"
    APPLY = "apply"
    DAILY_FUNDING_REPORT = "daily_funding_report"
    ORDER_SUPPLIES = "order_supplies"
    MANAGE_PROMOTIONS = "manage_promotions"
    USER_ACTIVITY = "user_activity"


P = Permission
ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "admin": frozenset(Permission),
    "manager": frozenset(
        {
            P.PURCHASE,
            P.REFUND,
            P.AUTHORIZATION_ONLY,
            P.ACCOUNT_LOOKUP,
            P.PREQUALIFICATION,
            P.APPLY,
            P.DAILY_FUNDING_REPORT,
            P.ORDER_SUPPLIES,
            P.MANAGE_PROMOTIONS,
        }
    ),
    "front_desk": frozenset(
        {P.PURCHASE, P.AUTHORIZATION_ONLY, P.ACCOUNT_LOOKUP, P.PREQUALIFICATION, P.APPLY, P.ORDER_SUPPLIES}
    ),
    "read_only": frozenset({P.ACCOUNT_LOOKUP, P.DAILY_FUNDING_REPORT}),
}

ROLE_LABELS = {
    "admin": "Account administrator",
    "manager": "Manager",
    "front_desk": "Front desk",
    "read_only": "Read only",
}


def permissions_for(roles: tuple[str, ...]) -> frozenset[Permission]:
    """The union of the roles' permissions; unknown role names grant nothing."""
    granted: set[Permission] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS.get(role, frozenset())
    return frozenset(granted)


@dataclass(frozen=True)
class Actor:
    """Who is acting, as the validated token says, plus where the request came from.

    Built only by the web layer from a :class:`~services.common.token_client.TokenInfo`.
    """

    sub: str
    practice_id: str
    roles: tuple[str, ...]
    name: str = ""
    ip: str = ""
    request_id: str = ""
    channel: str = "web"  # "web" (pages) or "api"
    auth_time: int = 0  # when the user last signed in at auth (proves a fresh second factor; issue 7)
    scopes: tuple[str, ...] = ()  # the token's scopes (a service client's, e.g. payments:post)
    permissions: frozenset[Permission] = field(default=frozenset(), compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "permissions", permissions_for(self.roles))

    def can(self, permission: Permission) -> bool:
        return bool(self.practice_id) and permission in self.permissions

    @property
    def is_staff(self) -> bool:
        """Signed in for a practice with at least one known role."""
        return bool(self.practice_id) and bool(self.permissions)


def require(actor: Actor, permission: Permission) -> None:
    """Raise :class:`Forbidden` unless the actor's roles grant ``permission`` for a practice."""
    if not actor.can(permission):
        raise Forbidden(permission.value)


def require_staff(actor: Actor) -> None:
    """For what any practice role may do (the plan catalogue, the estimator)."""
    if not actor.is_staff:
        raise Forbidden("any_role")
