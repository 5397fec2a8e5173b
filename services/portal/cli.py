"""The portal's ``providerctl portal …`` commands."""

from __future__ import annotations

import argparse
import os
import sys

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
