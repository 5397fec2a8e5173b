"""The portal's API and pages with real tokens from the real auth service (HTTP and gRPC
on free ports, this test's databases and Redis prefix): the tenancy sweep with two
practices' real staff, and a schemathesis run of every API operation against the
portal served over HTTP — no 5xx for any generated input."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import schemathesis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance
from sqlalchemy import insert
from werkzeug.serving import WSGIRequestHandler, make_server

from services.common.db import transaction
from services.portal.service_layer.unit import new_id
from services.portal.store import practices
from services.portal.store.models import Location
from tests.integration.portal.test_sign_in_with_auth import Wired, local, sign_in_at_auth
from tests.support.infra import free_port
from tests.unit.portal.factories import applicant
from tests.unit.portal.tenancy import Foreign, sweep

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION_AND_MODE = 40


@dataclass
class Staff:
    practice_id: str
    locations: list[str]
    client: FlaskClient  # the browser's portal cookie jar, signed in
    token: str  # the real access token the portal holds for that session

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def staff(wired: Wired, practice_name: str, role: str) -> Staff:
    """A practice in auth and the portal (two locations), one user, signed in through auth."""
    from tests.support.auth_factory import make_practice, make_user

    practice_id = make_practice(wired.auth, practice_name)  # type: ignore[arg-type]
    practices.upsert(wired.ctx.db, practice_id, practice_name)
    locations = [new_id("loc"), new_id("loc")]
    with transaction(wired.ctx.db) as session:
        for index, location_id in enumerate(locations):
            session.execute(
                insert(Location).values(
                    location_id=location_id,
                    practice_id=practice_id,
                    name=f"{practice_name} {index + 1}",
                    street="1 Main St",
                    city="Portland",
                    state="OR",
                    zip="97214",
                    phone="(503) 555-0100",
                )
            )
    user = make_user(wired.auth, practice_id, roles=[role])  # type: ignore[arg-type]
    client = wired.portal_app.test_client()
    to_login = client.get("/")
    to_auth = client.get(to_login.headers["Location"])
    callback = sign_in_at_auth(requests.Session(), to_auth.headers["Location"], user)
    assert client.get(local(callback)).status_code == 302
    with client.session_transaction() as session:
        ref = session["signed_in"]["ref"]
    tokens = wired.ctx.token_store.load(ref, 600)
    assert tokens is not None
    return Staff(practice_id, locations, client, tokens.access_token)


def test_real_tokens_tenancy_sweep(wired: Wired, capsys: pytest.CaptureFixture[str]) -> None:
    a = staff(wired, "Alder Dental", "admin")
    b = staff(wired, "Birch Dental", "front_desk")
    body = applicant(b.locations[0], first_name="Bettina", last_name="Brightwater")
    created = b.client.post("/api/v1/applications", json=body, headers=b.bearer)
    assert created.status_code == 201, created.get_data(as_text=True)
    result = created.get_json()
    number = result["account_number"].replace(" ", "")
    charge = {
        "location_id": b.locations[0],
        "plan_code": "DI12",
        "amount_cents": 500_00,
        "description": "Cleaning",
        "treatment_date": "2027-01-15",
    }
    charged = b.client.post(
        f"/api/v1/accounts/{result['detail']['account_id']}/charges",
        json=charge,
        headers={**b.bearer, "Idempotency-Key": "tenancy-b-charge"},
    )
    assert charged.status_code == 201, charged.get_data(as_text=True)
    foreign = Foreign(
        practice_id=b.practice_id,
        account_id=result["detail"]["account_id"],
        application_id=result["detail"]["summary"]["application_id"],
        location_id=b.locations[0],
        secrets=("Brightwater", number, "Birch Dental 1", "Cleaning"),
        transaction_id=charged.get_json()["transaction_id"],
    )
    # The pages use A's signed-in session; the API A's bearer token — both checked over real gRPC.
    lines = sweep(a.client, a.bearer, foreign, a.locations[0], a.practice_id, wired.ctx.db)
    with capsys.disabled():  # shown in CI's log, not only on failure
        print("\ntenancy sweep (real tokens):\n  " + "\n  ".join(lines))
    assert len(lines) == 14
    # And B still sees its own.
    assert b.client.get(f"/api/v1/accounts/{foreign.account_id}", headers=b.bearer).status_code == 200
    # An unknown or revoked token is 401, not a redirect.
    assert (
        a.client.get("/api/v1/me", headers={"Authorization": "Bearer " + a.token[:-2] + "xx"}).status_code
        == 401
    )


class _Quiet(WSGIRequestHandler):
    def log_request(self, *_args: Any) -> None:  # a thousand requests need no thousand lines
        pass


@pytest.fixture
def served(wired: Wired) -> Iterator[str]:
    """The portal app on a real HTTP port (threads), as schemathesis talks to a running server."""
    port = free_port()
    server = make_server("127.0.0.1", port, wired.portal_app, threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()


def test_schemathesis_every_operation_no_server_error(
    wired: Wired, served: str, capsys: pytest.CaptureFixture[str]
) -> None:
    a = staff(wired, "Cedar Dental", "admin")
    # The look-up limit (tested on its own) would turn most generated look-ups into 429s.
    wired.ctx.services.accounts.deps.lookup_throttle.limit = 1_000_000  # type: ignore[attr-defined]
    document = requests.get(f"{served}/api/openapi.json", timeout=10).json()
    # Let generated applications name a real location now and then, so approvals are exercised too.
    document["paths"]["/applications"]["post"]["requestBody"]["content"]["application/json"]["schema"][
        "properties"
    ]["location_id"] = {"type": "string", "enum": a.locations}
    # And let the money operations (issue 7) reach a real account at a real location now and then.
    created = a.client.post("/api/v1/applications", json=applicant(a.locations[0]), headers=a.bearer)
    assert created.status_code == 201, created.get_data(as_text=True)
    account_id = created.get_json()["detail"]["account_id"]
    for path in ("/accounts/{account_id}/charges", "/accounts/{account_id}/holds"):
        operation = document["paths"][path]["post"]
        operation["parameters"][0]["schema"] = {
            "type": "string",
            "enum": [account_id, "acc_0000000000000000"],
        }
        properties = operation["requestBody"]["content"]["application/json"]["schema"]["properties"]
        properties["location_id"] = {"type": "string", "enum": a.locations}
        properties["amount_cents"] = {**properties["amount_cents"], "maximum": 300_000}  # within the limit
    schema = schemathesis.openapi.from_dict(document)
    session = requests.Session()
    statuses: Counter[tuple[str, int]] = Counter()
    cases = 0
    began = time.monotonic()

    def runner(operation: Any, mode: GenerationMode):  # type: ignore[no-untyped-def]
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION_AND_MODE,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            nonlocal cases
            cases += 1
            response = case.call(base_url=f"{served}/api/v1", session=session, headers=a.bearer)
            statuses[(operation.label, response.status_code)] += 1
            assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
            if mode is GenerationMode.POSITIVE:
                # Generated input the schema allows gets an answer the schema describes.
                case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

        return run

    for result in schema.get_all_operations():
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            runner(result.ok(), mode)()
    seconds = time.monotonic() - began
    operations = len(list(schema.get_all_operations()))
    with capsys.disabled():  # shown in CI's log, not only on failure
        print(f"\nschemathesis: {cases} cases over {operations} operations in {seconds:.0f} s, no 5xx")
        for (label, status), n in sorted(statuses.items()):
            print(f"  {label} → {status}: {n}")
    assert not any(status >= 500 for _label, status in statuses)
