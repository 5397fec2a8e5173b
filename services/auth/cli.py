"""``providerctl auth …``: auth's processes and its admin commands."""

from __future__ import annotations

import argparse
import os
import sys

from services.common.config import Env


def _container(env: Env | None = None):  # type: ignore[no-untyped-def]
    from services.auth.bootstrap import container_from_env

    return container_from_env(env if env is not None else os.environ)


def _fail(message: str) -> None:
    from services.cli import CommandError

    raise CommandError(message)


def _web(args: argparse.Namespace) -> int:
    from services.auth.bootstrap import first_start
    from services.auth.settings import Settings
    from services.common import logs
    from services.common.webserver import exec_gunicorn

    logs.configure("auth")
    settings = Settings.from_env(os.environ)
    first_start(_container())
    # gunicorn's settings (threads, timeouts, access log…) come from the environment:
    # services/common/gunicorn_conf.py, shared with the portal.
    exec_gunicorn("auth", settings.http_bind, settings.web_workers)
    return 0  # pragma: no cover - exec does not return


def _grpc(args: argparse.Namespace) -> int:
    from services.auth import grpc_server
    from services.common import config, logs
    from services.common.grpc_util import serve_until_signalled

    logs.configure("auth")
    container = _container()
    server, port, health = grpc_server.build(container, container.settings.grpc_addr)
    serve_until_signalled(
        server, health, "auth", port, metrics_bind=config.get(os.environ, "AUTH_GRPC_METRICS_BIND")
    )
    return 0


def _relay(args: argparse.Namespace) -> int:
    from services.auth import relay
    from services.common import logs

    logs.configure("auth")
    relay.run(_container())
    return 0


def _read_secret(what: str) -> str:
    if sys.stdin is None or sys.stdin.isatty():
        _fail(f"{what}: pipe it on standard input")
    value = sys.stdin.readline().rstrip("\n")
    if not value:
        _fail(f"{what}: nothing on standard input")
    return value


def _client_add(args: argparse.Namespace) -> int:
    from services.auth import clients
    from services.common.db import transaction

    container = _container()
    secret = _read_secret("client secret") if args.client_secret_stdin else None
    grant_types = args.grant_type or ["authorization_code", "refresh_token"]
    scopes = args.scope or (["openid", "profile", "email"] if "authorization_code" in grant_types else [])
    try:
        with transaction(container.db) as db:
            _row, issued = clients.add_client(
                db,
                container.settings.client_secret_key,
                client_id=args.client_id,
                name=args.name,
                redirect_uris=args.redirect_uri or [],
                post_logout_redirect_uris=args.post_logout_redirect_uri or [],
                grant_types=grant_types,
                scopes=scopes,
                audience=args.audience,
                public=args.public,
                first_party=args.first_party,
                client_secret=secret,
            )
    except clients.ClientError as exc:
        _fail(str(exc))
    print(f"client {args.client_id} added")
    if issued and not secret:
        print(f"client secret (shown once): {issued}")
    return 0


def _client_list(args: argparse.Namespace) -> int:
    from services.auth import clients

    container = _container()
    with container.db() as db:
        rows = clients.list_clients(db)
        for row in rows:
            kind = "public" if row.public else "confidential"
            party = "first-party" if row.first_party else "third-party"
            print(
                f"{row.client_id}\t{kind}\t{party}\tgrants={','.join(row.grant_types)}\t"
                f"scopes={','.join(row.scopes)}\tredirects={','.join(row.redirect_uris)}"
            )
    return 0


def _client_remove(args: argparse.Namespace) -> int:
    from services.auth import clients
    from services.common.db import transaction

    container = _container()
    try:
        with transaction(container.db) as db:
            clients.remove_client(db, args.client_id)
    except clients.ClientError as exc:
        _fail(str(exc))
    print(f"client {args.client_id} removed")
    return 0


def _user_add(args: argparse.Namespace) -> int:
    from services.auth import directory
    from services.common.db import transaction

    container = _container()
    password = _read_secret("password") if args.password_stdin else None
    from services.auth import credentials

    try:
        with transaction(container.db) as db:
            user = directory.add_user(
                db,
                container.passwords,
                container.secret_box,
                practice_id=args.practice_id,
                user_id=args.user_id,
                email=args.email,
                name=args.name or args.user_id,
                password=password,
                totp_secret=args.totp_secret,
                roles=args.role or ["read_only"],
            )
            violation = credentials.policy_violation(container, db, user, password) if password else None
            if violation is not None:
                raise directory.DirectoryError(f"password refused: {violation.message}")
    except directory.DirectoryError as exc:
        _fail(str(exc))
    print(f"user {args.user_id.lower()} added to {args.practice_id}")
    return 0


def _user_status(args: argparse.Namespace) -> int:
    from services.auth import accounts

    container = _container()
    try:
        message = accounts.apply(container, args.action, args.user_id, actor="providerctl")
    except accounts.AccountError as exc:
        _fail(str(exc))
    print(message)
    return 0


def _suspend_inactive(args: argparse.Namespace) -> int:
    from services.auth import accounts

    if args.days < 1:
        _fail("--days must be at least 1")
    suspended = accounts.suspend_inactive(_container(), days=args.days)
    print(
        f"{len(suspended)} account(s) suspended for inactivity"
        + (": " + ", ".join(suspended) if suspended else "")
    )
    return 0


def _events(args: argparse.Namespace) -> int:
    from services.auth import events

    container = _container()
    with container.db() as db:
        for event in events.recent(db, user_id=args.user, limit=args.limit):
            print(
                f"{event.at.isoformat(timespec='seconds')}\t{event.event}\t{event.outcome}\t"
                f"{event.user_id or '-'}\t{event.reason or '-'}\t{event.ip or '-'}"
            )
    return 0


def _sessions_list(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from services.auth import directory

    container = _container()
    with container.db() as db:
        user = directory.find_user(db, args.user_id)
    if user is None:
        _fail(f"no user {args.user_id}")
    for session in container.sessions.list_for_user(user.id):
        started = datetime.fromtimestamp(session.created, UTC).isoformat(timespec="seconds")
        print(f"{session.sid}\t{started}\t{session.ip}\t{session.user_agent[:60]}")
    return 0


def _sessions_revoke(args: argparse.Namespace) -> int:
    from services.auth import accounts

    container = _container()
    try:
        count = accounts.revoke_sessions(container, user_id=args.user, sid=args.sid)
    except accounts.AccountError as exc:
        _fail(str(exc))
    print(f"{count} session(s) ended")
    return 0


def _keys_rotate(args: argparse.Namespace) -> int:
    kid = _container().signing.rotate()
    print(f"new signing key {kid}; previous keys stay in JWKS until their tokens expire")
    return 0


def _totp_code(args: argparse.Namespace) -> int:
    import time

    import pyotp

    from services.auth import directory

    container = _container()
    if container.settings.production:
        _fail("totp-code is a development aid and refuses to run in production")
    with container.db() as db:
        user = directory.find_user(db, args.user_id)
        if user is None or user.totp_secret_enc is None:
            _fail(f"no enrolled user {args.user_id}")
        secret = container.secret_box.open(user.totp_secret_enc, user.id)
    print(pyotp.TOTP(secret).at(time.time()))
    return 0


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="auth_command", required=True, metavar="COMMAND")
    sub.add_parser("web", help="the auth web server (gunicorn)").set_defaults(func=_web)
    sub.add_parser("grpc", help="the TokenService gRPC server").set_defaults(func=_grpc)
    sub.add_parser("relay", help="the outbox relay to notify").set_defaults(func=_relay)

    client = sub.add_parser("client", help="OAuth clients").add_subparsers(
        dest="client_command", required=True
    )
    add = client.add_parser("add", help="register a client")
    add.add_argument("--client-id", required=True)
    add.add_argument("--name")
    add.add_argument("--redirect-uri", action="append")
    add.add_argument("--post-logout-redirect-uri", action="append")
    add.add_argument("--grant-type", action="append")
    add.add_argument("--scope", action="append")
    add.add_argument("--audience")
    add.add_argument("--public", action="store_true")
    add.add_argument("--client-secret-stdin", action="store_true")
    add.add_argument("--first-party", action="store_true")
    add.set_defaults(func=_client_add)
    client.add_parser("list", help="list clients").set_defaults(func=_client_list)
    remove = client.add_parser("remove", help="remove a client")
    remove.add_argument("client_id")
    remove.set_defaults(func=_client_remove)

    user = sub.add_parser("user", help="staff users").add_subparsers(dest="user_command", required=True)
    uadd = user.add_parser("add", help="add a user")
    uadd.add_argument("--practice-id", required=True)
    uadd.add_argument("--user-id", required=True)
    uadd.add_argument("--email", required=True)
    uadd.add_argument("--name")
    uadd.add_argument("--password-stdin", action="store_true", required=True)
    uadd.add_argument("--totp-secret")
    uadd.add_argument("--role", action="append")
    uadd.set_defaults(func=_user_add)
    for action, text in (
        ("unlock", "lift a lockout"),
        ("suspend", "suspend an account (ends its sessions)"),
        ("reactivate", "reactivate a suspended account"),
        ("reset-mfa", "clear the authenticator so the user enrolls again"),
    ):
        cmd = user.add_parser(action, help=text)
        cmd.add_argument("user_id")
        cmd.set_defaults(func=_user_status, action=action)

    inactive = sub.add_parser(
        "suspend-inactive", help="suspend accounts with no sign-in for N days (daily job)"
    )
    inactive.add_argument("--days", type=int, required=True)
    inactive.set_defaults(func=_suspend_inactive)

    ev = sub.add_parser("events", help="the security event log")
    ev.add_argument("--user")
    ev.add_argument("--limit", type=int, default=50)
    ev.set_defaults(func=_events)

    sessions = sub.add_parser("sessions", help="auth sessions").add_subparsers(
        dest="sessions_command", required=True
    )
    slist = sessions.add_parser("list", help="a user's sessions")
    slist.add_argument("user_id")
    slist.set_defaults(func=_sessions_list)
    srevoke = sessions.add_parser("revoke", help="end sessions: one by --sid, or all of --user")
    group = srevoke.add_mutually_exclusive_group(required=True)
    group.add_argument("--sid")
    group.add_argument("--user")
    srevoke.set_defaults(func=_sessions_revoke)

    keys = sub.add_parser("keys", help="signing keys").add_subparsers(dest="keys_command", required=True)
    keys.add_parser("rotate", help="switch to a new signing key").set_defaults(func=_keys_rotate)

    code = sub.add_parser("totp-code", help="(development) the current TOTP code of a user")
    code.add_argument("user_id")
    code.set_defaults(func=_totp_code)
