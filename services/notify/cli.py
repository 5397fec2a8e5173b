"""``providerctl notify …``: the notify processes and the operator's outbox commands.

``server`` and ``worker`` are the long-running processes (the container image
and ``providerctl run`` start them); ``list`` and ``retry`` are for operators.
"""

from __future__ import annotations

import argparse
import os
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from services.notify.store.models import STATES

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from services.notify.outbox import Outbox
    from services.notify.settings import Settings


def register(parser: argparse.ArgumentParser) -> None:
    """Add the notify subcommands to ``parser`` (``providerctl notify``)."""
    commands = parser.add_subparsers(dest="notify_command", required=True, metavar="COMMAND")

    commands.add_parser("server", help="run the NotifyService gRPC server").set_defaults(func=_server)
    commands.add_parser("worker", help="run the delivery worker").set_defaults(func=_worker)

    listing = commands.add_parser("list", help="show messages in the outbox, newest first")
    listing.add_argument("--status", choices=STATES, help="only messages in this state")
    listing.add_argument("--limit", type=_positive_int, default=50, help="at most this many (default 50)")
    listing.set_defaults(func=_list)

    retry = commands.add_parser(
        "retry", help="put a dead or pending message back in line (attempts reset, next try now)"
    )
    retry.add_argument("message_id", metavar="ID")
    retry.set_defaults(func=_retry)


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {raw!r}") from None
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError("must be between 1 and 1000")
    return value


def _settings() -> Settings:
    from services.notify.settings import Settings

    return Settings.from_env(os.environ)


def _server(args: argparse.Namespace) -> int:
    from services.common import logs
    from services.notify import bootstrap

    logs.configure("notify")
    return bootstrap.run_server(_settings())


def _worker(args: argparse.Namespace) -> int:
    from services.common import logs
    from services.notify import bootstrap

    logs.configure("notify")
    return bootstrap.run_worker(_settings())


def _open_outbox() -> tuple[Engine, Outbox]:
    """The outbox for an operator command; refuses a database that was never migrated."""
    from sqlalchemy import inspect

    from services.cli import CommandError
    from services.notify import bootstrap

    settings = _settings()
    engine = bootstrap.build_engine(settings)
    try:
        migrated = inspect(engine).has_table("messages")
    except SQLAlchemyError as exc:
        engine.dispose()
        raise CommandError(f"cannot open the notify database: {_short(exc)}") from exc
    if not migrated:
        engine.dispose()
        raise CommandError("the notify database has no outbox yet; run: providerctl db upgrade notify")
    return engine, bootstrap.build_outbox(settings, engine)


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value is not None else "-"


def _list(args: argparse.Namespace) -> int:
    from services.cli import CommandError

    engine, outbox = _open_outbox()
    try:
        messages = outbox.list_messages(args.status, args.limit)
    except SQLAlchemyError as exc:
        raise CommandError(f"cannot read the notify outbox: {_short(exc)}") from exc
    finally:
        engine.dispose()
    rows = [
        ("ID", "STATE", "TRIES", "TEMPLATE", "TO", "CREATED (UTC)", "NEXT / DELIVERED (UTC)", "LAST ERROR")
    ]
    for m in messages:
        next_or_done = _when(m.delivered_at) if m.state == "delivered" else _when(m.next_attempt_at)
        if m.state == "dead":
            next_or_done = "-"
        error = (m.last_error or "").replace("\n", " ")
        rows.append(
            (
                m.message_id,
                m.state,
                str(m.attempts),
                m.template,
                m.to,
                _when(m.created_at),
                next_or_done,
                error[:60] + ("…" if len(error) > 60 else ""),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if not messages:
        print("(no messages)")
    return 0


def _retry(args: argparse.Namespace) -> int:
    from services.cli import CommandError
    from services.notify.errors import NotifyServiceError

    engine, outbox = _open_outbox()
    try:
        view = outbox.retry(args.message_id)
    except NotifyServiceError as exc:
        raise CommandError(str(exc)) from exc
    except SQLAlchemyError as exc:
        raise CommandError(f"cannot update the notify outbox: {_short(exc)}") from exc
    finally:
        engine.dispose()
    print(f"message {view.message_id} is pending again; a worker will try it now")
    return 0


def _short(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig or exc).splitlines()[0][:200]
