"""Two real auth web processes (gunicorn, two workers each) sharing one real Redis and
one database: lockout under concurrency, maintenance mode, and what their logs hold."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pyotp
import pytest
from sqlalchemy import func, select

from services.auth.bootstrap import Container
from services.auth.store.models import SecurityEvent
from tests.integration.auth.signin.processes import AuthWeb, HttpBrowser, start_serving
from tests.integration.auth.signin.support import (
    LOCKED_TEXT,
    RECOVERY_CODE,
    SECRET,
    run_cli,
    wait_until,
)
from tests.support.auth_factory import auth_env, make_container, make_user
from tests.support.infra import Databases, random_id

pytestmark = pytest.mark.integration

WORKERS = 2
THREADS = 16
ATTEMPTS = 400


@dataclass
class Cluster:
    env: dict[str, str]
    container: Container
    webs: list[AuthWeb]

    def stop(self) -> None:
        for web in self.webs:
            web.stop()

    def logs(self) -> str:
        return "\n".join(web.log() for web in self.webs)


@pytest.fixture(scope="module")
def cluster(
    databases: Databases, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    directory = tmp_path_factory.mktemp("auth-web")
    env = auth_env(databases.new("auth"), redis_url, random_id("test:") + ":", directory / "var")
    container = make_container(env)
    cluster = Cluster(env, container, [])
    try:
        cluster.webs = start_serving(env, directory, ["auth-web-0", "auth-web-1"], WORKERS)
        yield cluster
    finally:
        cluster.stop()
        container.engine.dispose()


def test_concurrent_wrong_passwords_reach_the_check_exactly_threshold_times(cluster: Cluster) -> None:
    user = make_user(cluster.container)
    threshold = cluster.container.settings.lockout.threshold
    per_thread = ATTEMPTS // THREADS
    statuses: list[int] = []
    bodies_ok = []
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def attack(n: int) -> None:
        try:
            browser = HttpBrowser(cluster.webs[n % 2].url, user_agent=f"attacker-thread-{n}")
            token = browser.token("/signin")
            barrier.wait(timeout=60)
            for _ in range(per_thread):
                response = browser.post(
                    "/signin", {"csrf_token": token, "user_id": user.user_id, "password": f"wrong-{n}-guess"}
                )
                with lock:
                    statuses.append(response.status_code)
                    if response.status_code == 423:
                        bodies_ok.append(LOCKED_TEXT in response.text)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=attack, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)

    with cluster.container.db() as db:
        rows = db.execute(
            select(SecurityEvent.outcome, SecurityEvent.reason, func.count())
            .where(SecurityEvent.user_id == user.user_id, SecurityEvent.event == "sign_in.password")
            .group_by(SecurityEvent.outcome, SecurityEvent.reason)
        ).all()
        locks = db.scalar(
            select(func.count())
            .select_from(SecurityEvent)
            .where(SecurityEvent.user_id == user.user_id, SecurityEvent.event == "account.locked")
        )
    counted = {(outcome, reason): n for outcome, reason, n in rows}
    checked = counted.get(("failure", "bad_credentials"), 0)
    refused = counted.get(("refused", "locked"), 0)
    by_status = Counter(statuses)
    print(
        f"\nconcurrency: {THREADS} threads, {ATTEMPTS} wrong passwords for one User ID through 2 auth "
        f"processes x {WORKERS} workers: password checked {checked}, refused as locked {refused}, "
        f"checked + refused = {checked + refused}; HTTP {dict(sorted(by_status.items()))}; "
        f"lockouts {locks}, lockout emails {len(_outbox(cluster, user.email))}"
    )
    assert len(statuses) == ATTEMPTS
    assert checked == threshold
    assert refused == ATTEMPTS - threshold
    assert checked + refused == ATTEMPTS
    assert set(counted) == {("failure", "bad_credentials"), ("refused", "locked")}
    assert by_status == {401: threshold, 423: ATTEMPTS - threshold}
    assert all(bodies_ok)
    assert locks == 1 and len(_outbox(cluster, user.email)) == 1
    # And while locked, the right password is refused too.
    right = HttpBrowser(cluster.webs[0].url).form("/signin", user_id=user.user_id, password=user.password)
    assert right.status_code == 423 and LOCKED_TEXT in right.text


def _outbox(cluster: Cluster, to: str) -> list:
    from services.auth.store.models import OutboxMessage

    with cluster.container.db() as db:
        return list(
            db.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.to == to, OutboxMessage.template == "account_locked"
                )
            )
        )


def test_maintenance_mode_reaches_every_process_and_lifts(cluster: Cluster) -> None:
    message = f"Scheduled upgrade {random_id()} until 02:00 UTC"
    pages = ["/signin", "/", "/signin/verify", "/.well-known/openid-configuration", "/unlock?token=x"]

    def all_in_maintenance() -> bool:
        for web in cluster.webs:
            for _ in range(4):  # several requests, so every worker has answered at least once
                for path in pages:
                    response = HttpBrowser(web.url).get(path)
                    if response.status_code != 503:
                        return False
        return True

    def none_in_maintenance() -> bool:
        return all(
            HttpBrowser(web.url).get("/signin").status_code == 200 for web in cluster.webs for _ in range(4)
        )

    result = run_cli(cluster.env, "maintenance", "on", "--message", message)
    assert result.returncode == 0, result.stderr
    try:
        wait_until(all_in_maintenance, 20, "maintenance mode on every process", interval_s=0.2)
        for web in cluster.webs:
            browser = HttpBrowser(web.url)
            for path in pages:
                response = browser.get(path)
                assert response.status_code == 503
                assert response.headers["Retry-After"] == "300"
                assert message in response.text
            posted = browser.post("/signin", {"user_id": "x", "password": "y", "csrf_token": "z"})
            assert posted.status_code == 503 and message in posted.text
            assert browser.get("/healthz").status_code == 200
            assert browser.get("/static/auth.css").status_code == 200
    finally:
        result = run_cli(cluster.env, "maintenance", "off")
        assert result.returncode == 0, result.stderr
    wait_until(none_in_maintenance, 20, "maintenance mode off on every process", interval_s=0.2)
    user = make_user(cluster.container)
    assert _http_sign_in(cluster.webs[1].url, user).status_code == 302


def _http_sign_in(base: str, user, code: str | None = None) -> object:
    browser = HttpBrowser(base)
    first = browser.form("/signin", user_id=user.user_id, password=user.password)
    assert first.status_code == 302, (first.status_code, first.text[:500])
    return browser.form("/signin/verify", code=code or user.code())


def test_logs_hold_no_password_code_secret_or_token(cluster: Cluster) -> None:
    """Sign-ins good and bad, a lockout, an enrollment and an unlock link through the real
    processes; then no secret of any of them appears anywhere in their output."""
    a, b = (web.url for web in cluster.webs)
    start = {web.url: len(web.log()) for web in cluster.webs}
    secrets: dict[str, str] = {}

    good = make_user(cluster.container)
    secrets |= {"good password": good.password, "good TOTP secret": good.totp_secret}
    browser = HttpBrowser(a, user_agent="log-test")
    assert browser.form("/signin", user_id=good.user_id, password=good.password).status_code == 302
    wrong_code = f"{(int(good.code()) + 7) % 1_000_000:06d}"
    secrets["wrong code"] = wrong_code
    assert browser.form("/signin/verify", code=wrong_code).status_code == 401
    code = good.code()
    secrets["good code"] = code
    done = browser.form("/signin/verify", code=code)
    assert done.status_code == 302
    for name, value in browser.http.cookies.items():
        secrets[f"cookie {name}"] = value
    secrets["csrf token"] = browser.token("/account/password")

    victim = make_user(cluster.container)
    secrets["victim password"] = victim.password
    attacker = HttpBrowser(b, user_agent="log-test-attacker")
    for n in range(5):
        secrets[f"wrong password {n}"] = f"Guess-{random_id()}-{n}"
        assert (
            attacker.form(
                "/signin", user_id=victim.user_id, password=secrets[f"wrong password {n}"]
            ).status_code
            == 401
        )
    locked = attacker.form("/signin", user_id=victim.user_id, password=victim.password)
    assert locked.status_code == 423
    [mail] = _outbox(cluster, victim.email)
    token = mail.params["unlock_url"].split("token=")[1]
    secrets["unlock token"] = token
    owner = HttpBrowser(a)
    page = owner.get(f"/unlock?token={token}")
    assert page.status_code == 200
    assert owner.form(f"/unlock?token={token}", token=token).status_code == 200

    newcomer = make_user(cluster.container, enrolled=False)
    secrets["newcomer password"] = newcomer.password
    enrolling = HttpBrowser(b)
    assert enrolling.form("/signin", user_id=newcomer.user_id, password=newcomer.password).status_code == 302
    html = enrolling.get("/signin/enroll").text
    secret = SECRET.search(html).group(1).replace(" ", "")
    secrets["enrolled TOTP secret"] = secret
    enroll_code = pyotp.TOTP(secret).now()
    secrets["enrollment code"] = enroll_code
    shown = enrolling.form("/signin/enroll", code=enroll_code)
    assert shown.status_code == 200
    for n, recovery in enumerate(RECOVERY_CODE.findall(shown.text)):
        secrets[f"recovery code {n}"] = recovery

    # The workers log each request as it ends; wait until the last ones are in.
    def logged(count: int) -> bool:
        return sum(len(_json_lines(web.log()[start[web.url] :])) for web in cluster.webs) >= count

    wait_until(lambda: logged(20), 10, "request log lines")
    output = "".join(web.log()[start[web.url] :] for web in cluster.webs)
    entries = _json_lines(output)
    routes = Counter(entry.get("route") for entry in entries if entry.get("msg") == "request")
    assert routes["/signin"] >= 8 and routes["/unlock"] >= 2 and routes["/signin/enroll"] >= 2, routes
    assert all(entry["service"] == "auth" for entry in entries)

    leaks = [
        name
        for name, value in secrets.items()
        if re.search(rf"(?<![0-9A-Za-z]){re.escape(value)}(?![0-9A-Za-z])", output)
        or (name.endswith("secret") and value.lower() in output.lower())
    ]
    print(
        f"\nlog scan: {len(output.splitlines())} lines ({len(entries)} JSON) from 2 auth processes, "
        f"{len(secrets)} secrets looked for, found: {leaks or 'none'}"
    )
    assert not leaks, leaks


def _json_lines(text: str) -> list[dict]:
    entries = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def test_processes_logged_json(cluster: Cluster) -> None:
    entries = _json_lines(cluster.logs())
    assert entries, cluster.logs()[-2000:]
    assert not [e for e in entries if e.get("level") == "error"], [
        e for e in entries if e.get("level") == "error"
    ]


def test_a_minimum_password_length_below_8_is_refused_at_start(tmp_path) -> None:
    env = {"AUTH_PASSWORD_MIN_LENGTH": "7", "PC_VAR_DIR": str(tmp_path), "REDIS_URL": "redis://127.0.0.1:9/0"}
    result = run_cli(env, "auth", "web")
    assert result.returncode == 1
    assert (
        result.stderr.strip() == "providerctl: AUTH_PASSWORD_MIN_LENGTH: never fewer than 8 (NIST SP 800-63B)"
    )
