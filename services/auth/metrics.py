"""auth's own Prometheus metrics (the HTTP and gRPC ones are in services/common/metrics.py).

Security events are counted in one place, ``events.record()``, when the
transaction that wrote them commits, so the counters agree with the event log.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from services.common.db import utcnow
from services.common.metrics import LATENCY_BUCKETS

SECURITY_EVENTS = Counter(
    "auth_security_events_total",
    "Security events written to the event log, by event, outcome and reason.",
    ["event", "outcome", "reason"],
)
SIGN_INS = Counter(
    "auth_sign_ins_total",
    "Sign-ins by outcome: success (both factors), or failure at the password or code step, with the reason.",
    ["outcome", "step", "reason"],
)
LOCKOUTS = Counter("auth_lockouts_total", "Accounts locked after repeated failures.")
TOKENS_ISSUED = Counter(
    "auth_tokens_issued_total", "Access tokens issued by the token endpoint, by grant type.", ["grant_type"]
)
TOKENS_VALIDATED = Counter(
    "auth_tokens_validated_total",
    "TokenService.ValidateToken answers: active, or inactive with the reason.",
    ["active", "reason"],
)
VALIDATE_LATENCY = Histogram(
    "auth_validate_token_duration_seconds",
    "Time to answer TokenService.ValidateToken (signature, revocation state, profile).",
    buckets=LATENCY_BUCKETS,
)


def count_event(event: str, outcome: str, reason: str | None) -> None:
    """The counters one security event moves (called once it is committed)."""
    SECURITY_EVENTS.labels(event, outcome, reason or "").inc()
    if event == "sign_in.success":
        SIGN_INS.labels("success", "code", "").inc()
    elif event.startswith("sign_in.") and outcome != "ok":
        SIGN_INS.labels("failure", event.removeprefix("sign_in."), reason or "").inc()
    elif event == "account.locked":
        LOCKOUTS.inc()


class OutboxCollector:
    """``auth_outbox_depth`` and ``auth_outbox_oldest_age_seconds``, queried at scrape time."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def describe(self) -> list:
        return []

    def collect(self):  # type: ignore[no-untyped-def]
        from services.auth.store.models import OutboxMessage

        depth = GaugeMetricFamily(
            "auth_outbox_depth", "Emails in auth's outbox not yet accepted by notify.", labels=["state"]
        )
        age = GaugeMetricFamily(
            "auth_outbox_oldest_age_seconds", "Age of the oldest email in auth's outbox not yet accepted."
        )
        up = GaugeMetricFamily("auth_outbox_scrape_ok", "1 when the outbox could be read at this scrape.")
        try:
            with self._sessions() as db:
                waiting = OutboxMessage.relayed_at.is_(None)
                count, oldest = db.execute(
                    select(func.count(), func.min(OutboxMessage.created_at)).where(waiting)
                ).one()
                failing = db.scalar(
                    select(func.count()).where(waiting, OutboxMessage.last_error.is_not(None))
                )
        except Exception:  # noqa: BLE001 - a scrape reports, it does not fail
            up.add_metric([], 0)
            yield up
            return
        depth.add_metric(["pending"], int(count) - int(failing or 0))
        depth.add_metric(["failing"], int(failing or 0))
        age.add_metric([], _age_s(oldest))
        up.add_metric([], 1)
        yield depth
        yield age
        yield up


def _age_s(oldest: datetime | None) -> float:
    if oldest is None:
        return 0.0
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return max(0.0, (utcnow() - oldest).total_seconds())
