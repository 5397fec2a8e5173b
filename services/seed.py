"""The demo practices and users of DESIGN.md, seeded on the first ``make run``.

Their credentials are fixed and documented, for demos and trying the system
by hand; tests make their own users, and ``providerctl config check`` refuses
the demo users in production.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.config import Env


@dataclass(frozen=True)
class DemoUser:
    practice_id: str
    user_id: str
    password: str
    totp_secret: str
    roles: tuple[str, ...]
    name: str


DEMO_PRACTICES = {
    "demo-dental": "Sunny Dental Group",
    "demo-vet": "Copper Fern Veterinary",
}

DEMO_USERS = (
    DemoUser(
        "demo-dental",
        "demo.admin",
        "Sunny-Molar-Ledger-42",
        "MR2LT7Q67FZYZNRWDNBDPJADOXVTO6TL",
        ("admin",),
        "Dana Admin",
    ),
    DemoUser(
        "demo-dental",
        "demo.frontdesk",
        "Quiet-Harbor-Canvas-17",
        "MXKEDCVJUGEGH4SYBLNYVSLRHVHGBNTQ",
        ("front_desk",),
        "Frank Frontdesk",
    ),
    DemoUser(
        "demo-vet",
        "vet.admin",
        "Copper-Fern-Whistle-93",
        "LHNE5HMSSUQ7NQ4YUGWPVKDGXU7ZSAGY",
        ("admin",),
        "Vera Vetadmin",
    ),
)


def seed_demo(env: Env) -> None:
    """Create what is missing; never change what exists (a demo user may have changed a password)."""
    from services.auth import directory
    from services.auth.bootstrap import container_from_env
    from services.common.db import transaction
    from services.portal import bootstrap as portal_bootstrap

    auth = container_from_env(env)
    with transaction(auth.db) as db:
        for practice_id, name in DEMO_PRACTICES.items():
            directory.add_practice(db, practice_id, name)
        for demo in DEMO_USERS:
            if directory.find_user(db, demo.user_id) is None:
                directory.add_user(
                    db,
                    auth.passwords,
                    auth.secret_box,
                    practice_id=demo.practice_id,
                    user_id=demo.user_id,
                    email=f"{demo.user_id}@example.test",
                    name=demo.name,
                    password=demo.password,
                    totp_secret=demo.totp_secret,
                    roles=list(demo.roles),
                )
    auth.engine.dispose()
    portal_bootstrap.seed_demo(env)
