"""The body of every service's Alembic ``env.py``: online migrations only.

A service's ``env.py`` calls :func:`run` with its metadata; the URL comes from
the caller (``services.common.db.upgrade``), never from an ini file.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData

from services.common.db import make_engine


def run(metadata: MetaData) -> None:
    config = context.config
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL given to the migrations")
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=url.startswith("sqlite"),
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
