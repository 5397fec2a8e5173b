"""``providerctl``: the one admin command, subcommands grouped by service.

Non-interactive when given flags, secrets read from stdin, exit status 0 on
success and a one-line reason on stderr otherwise (see DESIGN.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from services.common.config import ConfigError


class CommandError(Exception):
    """A command failed for a reason the operator can act on; printed as one line."""


def _db_upgrade(args: argparse.Namespace) -> int:
    from services import migrate

    unknown = [name for name in args.services if name not in migrate.SERVICES]
    if unknown:
        raise CommandError(f"unknown service {unknown[0]!r} (services: {', '.join(migrate.SERVICES)})")
    for name in args.services or migrate.SERVICES:
        migrate.upgrade(name, os.environ)
        print(f"{name}: database at newest revision")
    return 0


def _run(args: argparse.Namespace) -> int:
    from services.common.supervisor import run_all

    return run_all(os.environ, seed=not args.no_seed)


def _practice_add(args: argparse.Namespace) -> int:
    from services.auth import bootstrap as auth_bootstrap
    from services.portal import bootstrap as portal_bootstrap

    auth_bootstrap.add_practice(os.environ, args.practice_id, args.name)
    portal_bootstrap.add_practice(os.environ, args.practice_id, args.name)
    print(f"practice {args.practice_id} added")
    return 0


def _config_check(args: argparse.Namespace) -> int:
    from services.config_check import check

    return check(os.environ)


def _maintenance(args: argparse.Namespace) -> int:
    from services.common.maintenance import Maintenance

    maintenance = Maintenance.from_env(os.environ)
    if args.state == "on":
        maintenance.turn_on(args.message or "")
        print("maintenance mode on")
    else:
        maintenance.turn_off()
        print("maintenance mode off")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from services.auth import cli as auth_cli
    from services.notify import cli as notify_cli
    from services.portal import cli as portal_cli

    parser = argparse.ArgumentParser(
        prog="providerctl", description="Provider Center admin command: subcommands grouped by service."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="start the whole system locally")
    run.add_argument("--no-seed", action="store_true", help="do not seed the demo practices")
    run.set_defaults(func=_run)

    db = commands.add_parser("db", help="database migrations").add_subparsers(
        dest="db_command", required=True
    )
    upgrade = db.add_parser("upgrade", help="migrate databases to the newest revision")
    upgrade.add_argument(
        "services", nargs="*", metavar="SERVICE", help="auth, notify or portal (all when none)"
    )
    upgrade.set_defaults(func=_db_upgrade)

    config = commands.add_parser("config", help="configuration").add_subparsers(
        dest="config_command", required=True
    )
    config.add_parser("check", help="print the effective configuration").set_defaults(func=_config_check)

    practice = commands.add_parser("practice", help="practices").add_subparsers(
        dest="practice_command", required=True
    )
    add = practice.add_parser("add", help="add a practice to auth's directory and the portal")
    add.add_argument("--practice-id", required=True)
    add.add_argument("--name", required=True)
    add.set_defaults(func=_practice_add)

    maintenance = commands.add_parser("maintenance", help="maintenance mode")
    maintenance.add_argument("state", choices=["on", "off"])
    maintenance.add_argument("--message", default="")
    maintenance.set_defaults(func=_maintenance)

    auth_cli.register(commands.add_parser("auth", help="the auth service"))
    notify_cli.register(commands.add_parser("notify", help="the notify service"))
    portal_cli.register(commands.add_parser("portal", help="the portal service"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CommandError, ConfigError) as exc:
        print(f"providerctl: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    # ``python -m services.cli`` runs this file as __main__, a second copy of the
    # module; CommandError must be the class subcommands raise, so run the real one.
    from services.cli import main as _main

    sys.exit(_main())
