"""Consent for clients that are not first-party: asked once per user and
client, remembered, and revocable; ``prompt=consent`` asks again."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.auth.store.models import Client, Consent
from services.common.db import utcnow


def covers(db: Session, user_pk: str, client_id: str, scopes: set[str]) -> bool:
    consent = db.get(Consent, (user_pk, client_id))
    return consent is not None and scopes <= set(consent.scopes)


def grant(db: Session, user_pk: str, client_id: str, scopes: set[str]) -> None:
    consent = db.get(Consent, (user_pk, client_id))
    if consent is None:
        db.add(Consent(user_pk=user_pk, client_id=client_id, scopes=sorted(scopes), granted_at=utcnow()))
    else:
        consent.scopes = sorted(set(consent.scopes) | scopes)
        consent.granted_at = utcnow()


def revoke(db: Session, user_pk: str, client_id: str) -> bool:
    consent = db.get(Consent, (user_pk, client_id))
    if consent is None:
        return False
    db.delete(consent)
    return True


def for_user(db: Session, user_pk: str) -> list[tuple[Consent, Client]]:
    rows = db.execute(
        select(Consent, Client)
        .join(Client, Client.client_id == Consent.client_id)
        .where(Consent.user_pk == user_pk)
    )
    return [(consent, client) for consent, client in rows]
