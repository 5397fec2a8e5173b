"""What every service needs: the database, the audit log, the clock; ids and paging."""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, sessionmaker

from services.common.db import transaction
from services.portal.audit import AuditLog
from services.portal.errors import Forbidden
from services.portal.permissions import Actor, Permission, require
from services.portal.throttle import NoThrottle, Throttle
from services.portal.validation import Field

T = TypeVar("T")

MAX_PER_PAGE = 100
PAGING_FIELDS = (
    Field(
        "page", "int", required=False, minimum=1, maximum=10_000, default=1, description="1-based page number"
    ),
    Field(
        "per_page",
        "int",
        required=False,
        minimum=1,
        maximum=MAX_PER_PAGE,
        default=25,
        description="rows per page",
    ),
)


@dataclass(frozen=True)
class Deps:
    db: sessionmaker[Session]
    clock: Callable[[], float]
    lookup_throttle: Throttle = NoThrottle()

    @property
    def audit(self) -> AuditLog:
        return AuditLog(self.clock)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def today(self) -> date:
        return self.now().date()


def new_id(prefix: str, rng: random.Random | None = None) -> str:
    """An opaque id like ``acc_9f86d081884c7d65``: nothing to guess, nothing to count."""
    bits = rng.getrandbits(64) if rng is not None else secrets.randbits(64)
    return f"{prefix}_{bits:016x}"


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, with what the pagination links need.

    ``total`` is exact up to :data:`COUNT_CAP` rows past the page; beyond that it is a
    lower bound (``total_is_lower_bound``) — see :func:`count_rows`.
    """

    items: Sequence[T]
    page: int
    per_page: int
    total: int
    total_is_lower_bound: bool = False

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages or self.total_is_lower_bound

    @property
    def first_row(self) -> int:
        return 0 if not self.total else (self.page - 1) * self.per_page + 1

    @property
    def last_row(self) -> int:
        return min(self.total, self.page * self.per_page)


# A list counts at most this many rows (past the page asked for): a large practice's ledger
# has ~1,000,000, and counting them all took seconds on every page (bench.portal).
COUNT_CAP = 10_000


def count_cap(page: int, per_page: int) -> int:
    """How many rows :func:`count_rows` reads at most: one past what it reports exactly."""
    return max(COUNT_CAP, page * per_page) + 1


def count_rows(session: Session, statement: Select[Any], page: int, per_page: int) -> tuple[int, bool]:
    """How many rows ``statement`` gives, counting no further than needed: ``(n, True)``
    means "at least n" — enough to draw this page's links, never a full scan of a big list."""
    cap = count_cap(page, per_page)
    counted = session.scalar(select(func.count()).select_from(statement.limit(cap).subquery())) or 0
    if counted >= cap:
        return cap - 1, True
    return int(counted), False


def like_any(text: str) -> str:
    """``text`` lower-cased, for a ``contains`` match with ``autoescape`` (no wildcards from users)."""
    return text.lower()


def guard(
    deps: Deps, actor: Actor, permission: Permission, action: str, object_type: str = "", object_id: str = ""
) -> None:
    """:func:`~services.portal.permissions.require`, writing a ``denied`` audit entry on refusal."""
    try:
        require(actor, permission)
    except Forbidden:
        if actor.practice_id:
            with transaction(deps.db) as session:
                deps.audit.append(
                    session,
                    actor,
                    action,
                    object_type=object_type,
                    object_id=object_id,
                    outcome="denied",
                    detail=f"missing permission {permission.value}",
                )
        raise
