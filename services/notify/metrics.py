"""notify's own Prometheus metrics (the gRPC ones are in services/common/metrics.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from services.common.db import utcnow
from services.common.metrics import LATENCY_BUCKETS

DELIVERY_ATTEMPTS = Counter(
    "notify_delivery_attempts_total",
    "Delivery attempts by result: delivered, retry (failed, will be tried again) or dead (given up).",
    ["result"],
)
DELIVERY_LATENCY = Histogram(
    "notify_delivery_duration_seconds",
    "Time to hand one message to the transport (SMTP or file), successful or not.",
    buckets=LATENCY_BUCKETS,
)


def attempt(result: str | None, seconds: float) -> None:
    """Count one finished attempt; ``result`` is the message's new state."""
    if result is None:
        return
    DELIVERY_ATTEMPTS.labels("retry" if result == "pending" else result).inc()
    DELIVERY_LATENCY.observe(seconds)


class OutboxCollector:
    """``notify_outbox_depth{state}`` and ``notify_outbox_oldest_age_seconds``, queried at scrape time.

    The oldest age is over messages not yet delivered nor dead: how long the
    longest-waiting email has waited.
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def describe(self) -> list:
        return []

    def collect(self):  # type: ignore[no-untyped-def]
        from services.notify.store.models import DEAD, PENDING, SENDING, Message

        depth = GaugeMetricFamily(
            "notify_outbox_depth", "Messages in notify's outbox by state (delivered ones excluded).",
            labels=["state"],
        )
        age = GaugeMetricFamily(
            "notify_outbox_oldest_age_seconds", "Age of the oldest message still waiting for delivery."
        )
        up = GaugeMetricFamily("notify_outbox_scrape_ok", "1 when the outbox could be read at this scrape.")
        try:
            with self._sessions() as db:
                rows = dict(
                    db.execute(
                        select(Message.state, func.count())
                        .where(Message.state.in_((PENDING, SENDING, DEAD)))
                        .group_by(Message.state)
                    ).all()
                )
                oldest = db.scalar(
                    select(func.min(Message.created_at)).where(Message.state.in_((PENDING, SENDING)))
                )
        except Exception:  # noqa: BLE001 - a scrape reports, it does not fail
            up.add_metric([], 0)
            yield up
            return
        for state in (PENDING, SENDING, DEAD):
            depth.add_metric([state], int(rows.get(state, 0)))
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
