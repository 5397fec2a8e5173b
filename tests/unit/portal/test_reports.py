"""Issue 8's reports: every figure against sums computed independently over the seeded rows,
the inclusive range boundary (UTC), tenancy, permissions, CSV, and the SVG charts."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from services.portal import charts, reports
from services.portal.errors import Forbidden, NotFound, ValidationError
from services.portal.reports import DateRange, ReportService
from services.portal.service_layer.unit import Deps
from services.portal.store.models import Location
from tests.unit.portal.conftest import Harness
from tests.unit.portal.factories import PracticeFixture, World, make_practice, make_world
from tests.unit.portal.report_seed import FIRST, LAST, Seeded, seed

SVG = "{http://www.w3.org/2000/svg}"
MONTHS = ["2026-03", "2026-04", "2026-05", "2026-06", "2026-07", "2026-08"]
RANGE = {"from": FIRST.isoformat(), "to": LAST.isoformat()}


def names(world: World, practice: PracticeFixture) -> dict[str, str]:
    with world.db() as session:
        return {
            loc.location_id: loc.name
            for loc in session.query(Location).filter(Location.practice_id == practice.practice_id)
        }


@pytest.fixture(scope="module")
def seeded_world() -> tuple[World, Seeded, Seeded]:
    world = make_world()

    def set_clock(when: datetime) -> None:
        world.clock.now = when.timestamp()

    a = make_practice(world.db, "Maple Dental")
    b = make_practice(world.db, "Birch Vision")
    seeded_a = seed(world.services, world.db, set_clock, a, names(world, a), seed_value=11)
    seeded_b = seed(world.services, world.db, set_clock, b, names(world, b), seed_value=23, days=12)
    world.clock.now = datetime(2026, 9, 15, 12, tzinfo=UTC).timestamp()
    return world, seeded_a, seeded_b


def service(world: World) -> ReportService:
    return ReportService(Deps(world.db, world.clock))


def by_label(report: reports.Report) -> dict[str, tuple]:
    return {row[0]: tuple(row[1:]) for row in report.rows}


def month(m: str) -> str:
    return reports.month_label(m)


def check_all(world: World, seeded: Seeded) -> None:
    svc = service(world)
    actor = seeded.practice.actor("admin")

    volume = svc.run(actor, "financed-volume", RANGE)
    expected = seeded.volume_by_month()
    assert [r[0] for r in volume.rows] == [month(m) for m in MONTHS]
    assert by_label(volume) == {month(m): expected.get(m, (0, 0)) for m in MONTHS}
    assert volume.totals == ("Total", sum(v[0] for v in expected.values()), sum(v[1] for v in expected.values()))

    ticket = svc.run(actor, "average-ticket", RANGE)
    for m in MONTHS:
        n, cents = expected.get(m, (0, 0))
        want = int((Decimal(cents) / n).quantize(Decimal(1), rounding="ROUND_HALF_EVEN")) if n else None
        assert by_label(ticket)[month(m)] == (n, cents, want)

    location = svc.run(actor, "volume-by-location", RANGE)
    want_loc = seeded.volume_by_location()
    total = sum(c for _n, c in want_loc.values())
    assert {r[0]: (r[1], r[2]) for r in location.rows} == want_loc
    for row in location.rows:
        assert row[3] == (Decimal(row[2]) * 100 / total).quantize(Decimal("0.01"))

    mix = svc.run(actor, "plan-mix", RANGE)
    got_mix = {r[0].split("(")[-1].rstrip(")"): (r[1], r[2]) for r in mix.rows}
    assert got_mix == seeded.plan_mix()

    refunds = svc.run(actor, "refunds", RANGE)
    want_ref = seeded.refunds_by_month()
    assert by_label(refunds) == {month(m): want_ref.get(m, (0, 0)) for m in MONTHS}

    apps = svc.run(actor, "applications", RANGE)
    want_apps = seeded.applications_by_month()
    for m in MONTHS:
        n, approved, declined, pending = want_apps.get(m, (0, 0, 0, 0))
        rate = (Decimal(approved) * 100 / n).quantize(Decimal("0.01")) if n else None
        assert by_label(apps)[month(m)] == (n, approved, declined, pending, rate)

    funding = svc.run(actor, "funding", RANGE)
    want_fund = seeded.funding_by_month()
    assert by_label(funding) == {month(m): want_fund.get(m, (0, 0, 0, 0, 0)) for m in MONTHS}
    assert any(v[3] for v in want_fund.values()), "the seed must produce merchant fees"


def test_every_report_matches_independent_sums(seeded_world: tuple[World, Seeded, Seeded]) -> None:
    world, a, b = seeded_world
    assert len(a.financed()) > 10 and a.refunds and any(c[4] for c in a.charges)
    check_all(world, a)
    check_all(world, b)


def test_range_boundary_first_and_last_day_inclusive_utc(seeded_world: tuple[World, Seeded, Seeded]) -> None:
    world, a, _b = seeded_world
    svc = service(world)
    actor = a.practice.actor("admin")
    edge = [c for c in a.charges if c[0].date() in (FIRST, LAST)]
    outside = [c for c in a.charges if c[0].date() in (date(2026, 2, 28), date(2026, 9, 1))]
    assert {c[0].time().isoformat() for c in edge} >= {"00:00:00", "23:59:59.999999"}
    assert {c[0].time().isoformat() for c in outside} == {"23:59:59.999999", "00:00:00"}
    # A one-day range on the first day holds exactly that day's purchases; so does the last day.
    for day in (FIRST, LAST):
        one = svc.run(actor, "financed-volume", {"from": day.isoformat(), "to": day.isoformat()})
        on_day = [c for c in a.charges if c[0].date() == day and not c[4]]
        assert one.totals == ("Total", len(on_day), sum(c[3] for c in on_day))
        assert len(one.rows) == 1
    # The day before the first and the day after the last are not in the six-month range.
    volume = svc.run(actor, "financed-volume", RANGE)
    everything = [c for c in a.charges if not c[4]]
    assert volume.totals[1] == len(everything) - len([c for c in everything if not a.in_range(c[0])])
    wider = svc.run(actor, "financed-volume", {"from": "2026-02-28", "to": "2026-09-01"})
    assert wider.totals[1] - volume.totals[1] == len(
        [c for c in everything if c[0].date() in (date(2026, 2, 28), date(2026, 9, 1))]
        + [c for c in everything if date(2026, 2, 28) < c[0].date() < FIRST or LAST < c[0].date() < date(2026, 9, 1)]
    )


def test_practice_a_never_sees_practice_b(seeded_world: tuple[World, Seeded, Seeded]) -> None:
    world, a, b = seeded_world
    svc = service(world)
    for spec in reports.SPECS:
        mine = svc.run(a.practice.actor("admin"), spec.slug, RANGE)
        theirs = svc.run(b.practice.actor("admin"), spec.slug, RANGE)
        assert mine.rows != theirs.rows, spec.slug
    locations = {r[0] for r in svc.run(a.practice.actor(), "volume-by-location", RANGE).rows}
    assert locations <= set(a.location_names.values())
    # The location names are alike ("Location 1"), so also check the totals are A's own.
    assert svc.run(a.practice.actor(), "financed-volume", RANGE).totals[2] == sum(
        c[3] for c in a.financed()
    )


def test_permissions_per_report(seeded_world: tuple[World, Seeded, Seeded]) -> None:
    world, a, _b = seeded_world
    svc = service(world)
    front = a.practice.actor("front_desk")
    assert [s.slug for s in svc.available(front)] == ["applications"]
    svc.run(front, "applications", RANGE)
    for slug in ("financed-volume", "funding", "plan-mix", "refunds", "average-ticket", "volume-by-location"):
        with pytest.raises(Forbidden):
            svc.run(front, slug, RANGE)
    assert len(svc.available(a.practice.actor("read_only"))) == len(reports.SPECS)
    with pytest.raises(NotFound):
        svc.run(a.practice.actor(), "nope", RANGE)


def test_range_parsing_and_default() -> None:
    today = date(2027, 1, 15)
    assert reports.parse_range({}, today) == DateRange(date(2026, 2, 1), today)
    assert len(reports.default_range(today).months()) == 12
    assert reports.parse_range({"from": "2026-01-01", "to": "2026-01-01"}, today).months() == ["2026-01"]
    for bad, field in (
        ({"from": "2026-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2026-02-01", "to": "2026-01-31"}, "to"),
        ({"from": "2010-01-01", "to": "2026-01-01"}, "from"),
    ):
        with pytest.raises(ValidationError) as caught:
            reports.parse_range(bad, today)
        assert field in caught.value.fields
    rng = DateRange(date(2026, 3, 1), date(2026, 3, 31))
    assert rng.start == datetime(2026, 3, 1, tzinfo=UTC) and rng.end == datetime(2026, 4, 1, tzinfo=UTC)


def test_csv_content_and_formula_safety(seeded_world: tuple[World, Seeded, Seeded]) -> None:
    world, a, _b = seeded_world
    report = service(world).run(a.practice.actor(), "funding", RANGE, export=True)
    rows = list(csv.reader(io.StringIO(reports.to_csv(report))))
    assert rows[0] == ["# Merchant fees and net deposits, 2026-03-01 to 2026-08-31 inclusive, UTC"]
    assert rows[1] == [
        "month", "deposits", "charges_cents", "charges", "refunds_cents", "refunds",
        "fees_cents", "fees", "net_cents", "net",
    ]
    want = a.funding_by_month()
    for line, m in zip(rows[2:8], MONTHS, strict=True):
        d, charged, refunded, fees, net = want.get(m, (0, 0, 0, 0, 0))
        assert line[0] == month(m)
        assert [int(line[1]), int(line[2]), int(line[4]), int(line[6]), int(line[8])] == [d, charged, refunded, fees, net]
        assert line[3] == f"{charged // 100}.{charged % 100:02d}"
    assert rows[8][0] == "Total" and len(rows) == 9
    hostile = reports.Report(
        "x", "T", "", DateRange(FIRST, LAST), (reports.Column("name", "Name", "text"),),
        (("=HYPERLINK(\"http://evil\")",), ("+1",), ("-2",), ("@SUM(A1)",), ("plain",)), "name", "hbar",
    )
    cells = [r[0] for r in csv.reader(io.StringIO(reports.to_csv(hostile)))][2:]
    assert cells == ["'=HYPERLINK(\"http://evil\")", "'+1", "'-2", "'@SUM(A1)", "plain"]


def test_svg_is_well_formed_with_title_and_desc() -> None:
    fmt = str
    for svg in (
        charts.column_chart(title="Volume <&> by month", labels=["Jan 2026", "Feb"], values=[5, 0], fmt=fmt),
        charts.column_chart(title="Rate", labels=["a", "b"], values=[Decimal("12.5"), Decimal("80")], fmt=fmt, line=True),
        charts.bar_chart(title="By location", labels=["<script>x</script>", "B"], values=[3, 1], fmt=fmt),
        charts.bar_chart(title="Empty", labels=[], values=[], fmt=fmt),
        charts.column_chart(title="Negative", labels=["a", "b"], values=[-300, 200], fmt=fmt),
    ):
        root = ET.fromstring(svg)
        assert root.tag == f"{SVG}svg" and root.get("role") == "img"
        title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
        assert title is not None and desc is not None and title.text and desc.text
        assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
        assert "style=" not in svg and "<script" not in svg
    line = ET.fromstring(charts.column_chart(title="t", labels=["a", "b"], values=[1, 2], fmt=fmt, line=True))
    assert line.find(f".//{SVG}polyline") is not None
    bars = ET.fromstring(charts.column_chart(title="t", labels=["a", "b"], values=[1, 2], fmt=fmt))
    assert len(bars.findall(f".//{SVG}rect")) == 2
    assert "a: 1; b: 2." in (bars.find(f"{SVG}desc").text or "")


# --- the pages ----------------------------------------------------------------------------------


def test_report_pages_chart_table_and_csv(harness: Harness) -> None:
    practice = make_practice(harness.portal.db, "Page Dental")
    harness.sign_in(practice_id=practice.practice_id, roles=("manager",))
    index = harness.client.get("/reports")
    assert index.status_code == 200
    page = index.get_data(as_text=True)
    assert "UTC" in page and "Both days are included" in page
    for spec in reports.SPECS:
        assert f"/reports/{spec.slug}?" in page
    shown = harness.client.get("/reports/financed-volume?from=2026-03-01&to=2026-08-31")
    assert shown.status_code == 200
    html = shown.get_data(as_text=True)
    assert '<svg xmlns="http://www.w3.org/2000/svg" role="img"' in html and "<table" in html
    assert "Aug 2026" in html and "/reports/financed-volume.csv?from=2026-03-01&amp;to=2026-08-31" in html
    svg = html[html.index("<svg"): html.index("</svg>") + 6]
    ET.fromstring(svg)
    download = harness.client.get("/reports/financed-volume.csv?from=2026-03-01&to=2026-08-31")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert "attachment" in download.headers["Content-Disposition"]
    assert download.get_data(as_text=True).splitlines()[1] == "month,purchases,volume_cents,volume"
    bad = harness.client.get("/reports/refunds?from=2026-09-01&to=2026-08-01")
    assert bad.status_code == 400 and "must be on or after" in bad.get_data(as_text=True)
    assert harness.client.get("/reports/nope").status_code == 404


def test_front_desk_sees_only_applications(harness: Harness) -> None:
    practice = make_practice(harness.portal.db, "Desk Dental")
    harness.sign_in(practice_id=practice.practice_id, roles=("front_desk",))
    page = harness.client.get("/reports").get_data(as_text=True)
    assert "/reports/applications?" in page and "/reports/funding?" not in page
    assert harness.client.get("/reports/applications").status_code == 200
    assert harness.client.get("/reports/funding").status_code == 403
    assert harness.client.get("/reports/funding.csv").status_code == 403
