"""Server-rendered SVG charts: readable with JavaScript off, accessible, and CSP-clean.

Each chart is one ``<svg role="img">`` labelled by its ``<title>`` and ``<desc>``
(the description states the figures, so a screen reader hears the data; the
page's table below it holds the same numbers). Colours and sizes are SVG
presentation attributes (``fill="#…"``), never ``style`` attributes, which the
portal's ``style-src 'self'`` would block. Every text is XML-escaped.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from decimal import Decimal
from xml.sax.saxutils import escape

Number = int | Decimal

BAR = "#2563a6"
LINE = "#1d7a55"
AXIS = "#5b6470"
GRID = "#d9dee4"
TEXT = "#1f2933"
FONT = 'font-family="system-ui, sans-serif" font-size="12"'

_ids = itertools.count(1)


def nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10ⁿ at or above ``value`` (an axis top)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1) if value >= 1 else 1
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return float(step * magnitude)
    return float(10 * magnitude)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _open(title: str, desc: str, width: int, height: int) -> tuple[list[str], str]:
    uid = f"chart{next(_ids)}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" '
        # No width/height: with a viewBox the chart scales to its container's width.
        f'viewBox="0 0 {width} {height}" preserveAspectRatio="xMidYMid meet" '
        f'aria-labelledby="{uid}-title {uid}-desc">',
        f'<title id="{uid}-title">{escape(title)}</title>',
        f'<desc id="{uid}-desc">{escape(desc)}</desc>',
    ]
    return parts, uid


def describe(labels: Sequence[str], values: Sequence[Number], fmt: Callable[[Number], str]) -> str:
    if not labels:
        return "No data in this range."
    points = "; ".join(f"{label}: {fmt(value)}" for label, value in zip(labels, values, strict=True))
    return points + "."


def column_chart(
    *,
    title: str,
    labels: Sequence[str],
    values: Sequence[Number],
    fmt: Callable[[Number], str],
    line: bool = False,
    width: int = 720,
    height: int = 300,
) -> str:
    """Vertical bars (or a line) over ordered labels such as months; the y axis starts at zero."""
    parts, _uid = _open(title, describe(labels, values, fmt), width, height)
    left, right, top, bottom = 84, 16, 16, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = nice_max(float(max([0, *values])))
    low = min([0, *values])
    bottom_value = -nice_max(float(-low)) if low < 0 else 0.0
    span = top_value - bottom_value

    def y(value: float) -> float:
        return top + plot_h * (top_value - value) / span

    parts.append(f'<g {FONT} fill="{TEXT}">')
    for i in range(5):
        tick = bottom_value + span * i / 4
        ty = y(tick)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="{GRID}" />'
        )
        parts.append(
            f'<text x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end">'
            f"{escape(fmt(_as_number(tick, values)))}</text>"
        )
    zero = y(0)
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{zero:.1f}" y2="{zero:.1f}" stroke="{AXIS}" />')
    n = max(1, len(values))
    slot = plot_w / n
    every = max(1, -(-n // 6))  # at most 6 x labels, so "Dec 2025" never runs into the next
    points: list[str] = []
    dots: list[str] = []
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        cx = left + slot * index + slot / 2
        vy = y(float(value))
        if line:
            points.append(f"{cx:.1f},{vy:.1f}")
            dots.append(
                f'<circle cx="{cx:.1f}" cy="{vy:.1f}" r="3.5" fill="{LINE}">'
                f"<title>{escape(label)}: {escape(fmt(value))}</title></circle>"
            )
        else:
            bar_w = max(1.0, slot * 0.7)
            y0, y1 = sorted((vy, zero))
            parts.append(
                f'<rect x="{cx - bar_w / 2:.1f}" y="{y0:.1f}" width="{bar_w:.1f}" '
                f'height="{max(0.0, y1 - y0):.1f}" fill="{BAR}">'
                f"<title>{escape(label)}: {escape(fmt(value))}</title></rect>"
            )
        if index % every == 0:
            parts.append(
                f'<text x="{cx:.1f}" y="{height - bottom + 18}" text-anchor="middle">'
                f"{escape(_shorten(label, 10))}</text>"
            )
    if points:
        parts.append(
            f'<polyline points="{" ".join(points)}" fill="none" stroke="{LINE}" stroke-width="2" />'
        )
    parts += dots
    parts.append("</g></svg>")
    return "".join(parts)


def bar_chart(
    *,
    title: str,
    labels: Sequence[str],
    values: Sequence[Number],
    fmt: Callable[[Number], str],
    width: int = 720,
) -> str:
    """Horizontal bars for categories (locations, plans), longest label shortened."""
    row = 28
    height = max(60, 24 + row * len(values) + 24)
    parts, _uid = _open(title, describe(labels, values, fmt), width, height)
    left, right, top = 180, 110, 12
    plot_w = width - left - right
    top_value = nice_max(float(max([0, *values])))
    parts.append(f'<g {FONT} fill="{TEXT}">')
    parts.append(
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + row * len(values)}" stroke="{AXIS}" />'
    )
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        ty = top + row * index
        length = plot_w * max(0.0, float(value)) / top_value
        parts.append(
            f'<text x="{left - 8}" y="{ty + row / 2 + 4:.1f}" text-anchor="end">'
            f"{escape(_shorten(label, 26))}</text>"
        )
        parts.append(
            f'<rect x="{left}" y="{ty + 4}" width="{length:.1f}" height="{row - 8}" fill="{BAR}">'
            f"<title>{escape(label)}: {escape(fmt(value))}</title></rect>"
        )
        parts.append(
            f'<text x="{left + length + 6:.1f}" y="{ty + row / 2 + 4:.1f}">{escape(fmt(value))}</text>'
        )
    if not values:
        parts.append(f'<text x="{left + 8}" y="{top + 20}">No data in this range.</text>')
    parts.append("</g></svg>")
    return "".join(parts)


def _as_number(tick: float, values: Sequence[Number]) -> Number:
    if any(isinstance(v, Decimal) for v in values):
        return Decimal(str(round(tick, 2)))
    return int(round(tick))


__all__ = ["bar_chart", "column_chart", "describe", "nice_max"]
