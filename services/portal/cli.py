"""The portal's ``providerctl portal …`` commands."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.portal.settings import Settings


def gunicorn_argv(settings: Settings) -> list[str]:
    """The command that serves the portal's pages; the rest of gunicorn's settings
    come from the environment (services/common/gunicorn_conf.py, shared with auth).

    No access log by default: the app writes one JSON line per request itself.
    """
    from services.common.webserver import gunicorn_argv as argv

    return argv("portal", settings.http_bind, settings.web_workers)


def _web(_args: argparse.Namespace) -> int:
    from services.common.webserver import exec_gunicorn

    # Read the settings here too, so a bad value is one clear line before gunicorn starts.
    settings = Settings.from_env(os.environ)
    # Replace this process: signals from the supervisor or the container runtime reach gunicorn.
    exec_gunicorn("portal", settings.http_bind, settings.web_workers)
    return 0  # pragma: no cover - execv does not return


def _anchor(text: str) -> tuple[int, str]:
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        raise argparse.ArgumentTypeError("expected SEQ:HASH, as printed by an earlier verify")
    return int(seq), digest


def _audit_verify(args: argparse.Namespace) -> int:
    """Walk the audit chain; exit 0 with a summary, or 1 with a one-line reason."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from services.common import db
    from services.portal import audit

    engine = db.make_engine(db.database_url(os.environ, "portal"))
    try:
        result = audit.verify(db.session_factory(engine), anchor=args.anchor)
    except (OperationalError, ProgrammingError) as exc:
        print(f"providerctl: portal database not ready ({type(exc.orig).__name__})", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    if not result.ok:
        print(f"providerctl: {result.line()}", file=sys.stderr)
        return 1
    print(f"{result.line()} (anchor: {result.head_seq}:{result.head_hash})")
    return 0


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a date as YYYY-MM-DD") from None


@contextmanager
def _money() -> Iterator[Any]:
    """The money service on the portal database (``PORTAL_DATABASE_URL``); errors as one line."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from services.cli import CommandError
    from services.common import db
    from services.portal.errors import PortalError, ValidationError
    from services.portal.service_layer.money import MoneyService
    from services.portal.service_layer.unit import Deps

    engine = db.make_engine(db.database_url(os.environ, "portal"))
    try:
        yield MoneyService(Deps(db.session_factory(engine), time.time))
    except (OperationalError, ProgrammingError) as exc:
        raise CommandError(
            f"portal database not ready ({type(exc.orig).__name__}); "
            "run `providerctl db upgrade portal` first"
        ) from None
    except ValidationError as exc:
        raise CommandError(str(exc)) from None
    except PortalError as exc:
        raise CommandError(f"{type(exc).__name__}: {exc}") from None
    finally:
        engine.dispose()


def _settle(args: argparse.Namespace) -> int:
    """Turn charges and refunds up to the end of the business date into deposits (default: yesterday)."""
    business_date = args.date or (datetime.now(UTC).date() - timedelta(days=1))
    with _money() as money:
        result = money.settle(business_date)
    print(
        f"settled through {business_date.isoformat()}: {result.deposits} deposits, "
        f"{result.items} transactions, net {result.net_cents} cents"
    )
    return 0


def _accrue_interest(args: argparse.Namespace) -> int:
    """Accrue interest for every active account up to the date (default: today, UTC)."""
    through = args.date or datetime.now(UTC).date()
    with _money() as money:
        result = money.accrue_interest(through)
    print(
        f"interest through {through.isoformat()}: {result.accounts} accounts, {result.interest_rows} "
        f"entries, {result.interest_cents} cents, {result.expired_promotions} promotions ended unpaid"
    )
    return 0


def _payments_post(args: argparse.Namespace) -> int:
    """Post one payment from the issuer's feed (as the CLI's own service identity)."""
    from services.portal.permissions import Actor
    from services.portal.service_layer.money import PAYMENTS_SCOPE

    actor = Actor(
        sub="providerctl",
        practice_id="",
        roles=(),
        name="providerctl",
        channel="cli",
        scopes=(PAYMENTS_SCOPE,),
    )
    body = {
        "account_number": args.account.replace(" ", "").replace("-", ""),
        "amount_cents": args.amount_cents,
        "reference": args.reference,
    }
    with _money() as money:
        result = money.post_payment(actor, body, args.idempotency_key)
    print(
        f"payment {result.transaction_id}: {result.amount_cents} cents; "
        f"balance {result.balance_cents} cents, available {result.available_credit_cents} cents"
    )
    return 0


def register(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="portal_command", required=True, metavar="COMMAND")
    web = commands.add_parser("web", help="serve the portal's pages (gunicorn)")
    web.set_defaults(func=_web)
    audit = commands.add_parser("audit", help="the audit log").add_subparsers(
        dest="audit_command", required=True
    )
    verify = audit.add_parser("verify", help="check the audit log's hash chain and checkpoint")
    verify.add_argument(
        "--anchor",
        type=_anchor,
        default=None,
        help="SEQ:HASH printed by an earlier verify: also prove that entry is still in the chain",
    )
    verify.set_defaults(func=_audit_verify)

    settle = commands.add_parser("settle", help="daily: turn charges and refunds into deposits")
    settle.add_argument("--date", type=_date, default=None, help="business date (default: yesterday, UTC)")
    settle.set_defaults(func=_settle)
    accrue = commands.add_parser("accrue-interest", help="daily: accrue interest and end unpaid promotions")
    accrue.add_argument("--date", type=_date, default=None, help="accrue through this date (default: today)")
    accrue.set_defaults(func=_accrue_interest)
    payments = commands.add_parser("payments", help="the issuer's payment feed").add_subparsers(
        dest="payments_command", required=True
    )
    post = payments.add_parser("post", help="post a cardholder's payment to their account")
    post.add_argument("--account", required=True, help="the 16-digit account number")
    post.add_argument("--amount-cents", type=int, required=True, help="the payment, in cents")
    post.add_argument("--idempotency-key", required=True, help="the feed's id for this payment (8-100 chars)")
    post.add_argument("--reference", default="", help="the feed's reference, shown in payment history")
    post.set_defaults(func=_payments_post)
