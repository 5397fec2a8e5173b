"""Reports and analytics pages (issue 8): a chart, its table and a CSV download per report.

All figures come from :mod:`services.portal.reports` (aggregates in the database,
the practice from the token only); the charts from :mod:`services.portal.charts`
(server-rendered SVG, no JavaScript).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, cast

from flask import Blueprint, Response, current_app, render_template, request
from markupsafe import Markup

from services.portal import charts, reports
from services.portal.errors import NotFound, ValidationError
from services.portal.service_layer.unit import Deps
from services.portal.web.actors import page_actor
from services.portal.web.filters import money

bp = Blueprint("reports", __name__, url_prefix="/reports")
EXTENSION = "services.portal.reports"


@bp.record_once
def _service(state) -> None:  # type: ignore[no-untyped-def]
    p = state.app.extensions["services.portal"]
    if EXTENSION not in state.app.extensions:
        state.app.extensions[EXTENSION] = reports.ReportService(Deps(p.db, p.clock))


def service() -> reports.ReportService:
    return cast(reports.ReportService, current_app.extensions[EXTENSION])


def formatter(kind: str) -> Callable[[Any], str]:
    if kind == "cents":
        return lambda v: money(int(v)) if v is not None else "—"
    if kind == "percent":
        return lambda v: f"{Decimal(v):.2f}%" if v is not None else "—"
    return lambda v: f"{int(v):,}" if v is not None else "—"


def chart(report: reports.Report) -> Markup:
    labels, values = report.series()
    column = report.column(report.chart_column)
    fmt = formatter(column.kind)
    first, last = report.range.first, report.range.last
    title = f"{report.title}: {column.label.lower()}, {first:%b %-d, %Y} to {last:%b %-d, %Y}"
    clean = [v if v is not None else 0 for v in values]
    if report.chart == "hbar":
        svg = charts.bar_chart(title=title, labels=labels, values=clean, fmt=fmt)
    else:
        line = report.chart == "line"
        svg = charts.column_chart(title=title, labels=labels, values=clean, fmt=fmt, line=line)
    return Markup(svg)  # noqa: S704 - every text inside is escaped by charts


def _range_or_errors() -> tuple[reports.DateRange, dict[str, str]]:
    try:
        return service().range(request.args), {}
    except ValidationError as exc:
        return reports.default_range(service().deps.today()), exc.fields


@bp.get("")
def index() -> str:
    rng, errors = _range_or_errors()
    return render_template(
        "reports/index.html",
        specs=service().available(page_actor()),
        rng=rng,
        errors=errors,
        query=request.args,
        time_zone=reports.TIME_ZONE,
    )


@bp.get("/<slug>")
def show(slug: str) -> Response:
    if slug not in reports.BY_SLUG:
        raise NotFound("report")
    rng, errors = _range_or_errors()
    if errors:
        body = render_template(
            "reports/show.html", report=None, spec=reports.BY_SLUG[slug], rng=rng, errors=errors,
            query=request.args, time_zone=reports.TIME_ZONE,
        )
        return Response(body, status=400, mimetype="text/html")
    report = service().run(page_actor(), slug, request.args)
    body = render_template(
        "reports/show.html",
        report=report,
        spec=reports.BY_SLUG[slug],
        rng=report.range,
        errors={},
        query=request.args,
        chart=chart(report),
        fmt=formatter,
        time_zone=reports.TIME_ZONE,
    )
    return Response(body, mimetype="text/html")


@bp.get("/<slug>.csv")
def export(slug: str) -> Response:
    report = service().run(page_actor(), slug, request.args, export=True)
    name = f"{slug}_{report.range.first.isoformat()}_{report.range.last.isoformat()}.csv"
    return Response(
        reports.to_csv(report),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )
