"""The portal's ``providerctl portal …`` commands."""

from __future__ import annotations

import argparse
import os
import sys

from services.portal.settings import Settings


def gunicorn_argv(settings: Settings) -> list[str]:
    """The command that serves the portal's pages.

    No access log: the app writes one JSON line per request itself.
    """
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        settings.http_bind,
        "--workers",
        str(settings.web_workers),
        "--graceful-timeout",
        "10",
        "services.portal.web.wsgi:app",
    ]


def _web(_args: argparse.Namespace) -> int:
    # Read the settings here too, so a bad value is one clear line before gunicorn starts.
    settings = Settings.from_env(os.environ)
    argv = gunicorn_argv(settings)
    # Replace this process: signals from the supervisor or the container runtime reach gunicorn.
    os.execv(argv[0], argv)  # noqa: S606 - our own interpreter and fixed arguments
    return 0  # pragma: no cover - execv does not return


def register(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="portal_command", required=True, metavar="COMMAND")
    web = commands.add_parser("web", help="serve the portal's pages (gunicorn)")
    web.set_defaults(func=_web)
