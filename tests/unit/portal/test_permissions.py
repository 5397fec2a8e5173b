"""The one permission table, and that nothing but the token's roles grants anything."""

from __future__ import annotations

import pytest

from services.portal.errors import Forbidden
from services.portal.permissions import ROLE_PERMISSIONS, Actor, Permission, permissions_for, require

P = Permission
EXPECTED = {
    "admin": set(Permission),
    "manager": set(Permission) - {P.USER_ACTIVITY},
    "front_desk": {P.PURCHASE, P.AUTHORIZATION_ONLY, P.ACCOUNT_LOOKUP, P.PREQUALIFICATION, P.APPLY, P.ORDER_SUPPLIES},
    "read_only": {P.ACCOUNT_LOOKUP, P.DAILY_FUNDING_REPORT},
}


def test_the_table_is_what_the_docstring_says() -> None:
    assert {role: set(perms) for role, perms in ROLE_PERMISSIONS.items()} == EXPECTED
    assert [p.value for p in Permission] == [
        "purchase", "refund", "authorization_only", "account_lookup", "prequalification", "apply",
        "daily_funding_report", "order_supplies", "manage_promotions", "user_activity",
    ]


@pytest.mark.parametrize("role", sorted(EXPECTED))
@pytest.mark.parametrize("permission", list(Permission))
def test_require_follows_the_table(role: str, permission: Permission) -> None:
    actor = Actor(sub="s", practice_id="p-1", roles=(role,))
    if permission in EXPECTED[role]:
        require(actor, permission)
    else:
        with pytest.raises(Forbidden) as caught:
            require(actor, permission)
        assert caught.value.permission == permission.value
        assert permission.value.replace("_", " ") in str(caught.value)


def test_roles_add_up_and_unknown_roles_grant_nothing() -> None:
    assert permissions_for(("front_desk", "read_only")) == EXPECTED["front_desk"] | EXPECTED["read_only"]
    assert permissions_for(("superuser", "ADMIN")) == frozenset()


def test_without_a_practice_even_admin_may_do_nothing() -> None:
    actor = Actor(sub="s", practice_id="", roles=("admin",))
    assert not actor.is_staff
    with pytest.raises(Forbidden):
        require(actor, P.ACCOUNT_LOOKUP)
