"""The resource catalogue: marketing material and training guides the project ships.

Each item is a small text file in ``services/portal/resources/`` (``key: value``
header lines, ``---``, then a body in a tiny Markdown subset). Downloads are made
from that text on request: training guides as a standalone HTML document,
marketing pieces (brochure, poster, banner, button) as SVG at their print or
screen size. Nothing is fetched from elsewhere; the catalogue holds no patient data.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from html import escape
from pathlib import Path

DIRECTORY = Path(__file__).parent / "resources"
CATEGORIES = {"marketing": "Marketing material", "training": "Training guides"}
KINDS = {
    "guide": "Training guide",
    "brochure": "In-office brochure",
    "poster": "Poster",
    "banner": "Digital banner",
    "button": "Website button",
}
# Width × height of each marketing kind's SVG (points for print, pixels for screen).
SIZES = {"brochure": (792, 612), "poster": (1296, 1728), "banner": (728, 90), "button": (180, 60)}


@dataclass(frozen=True)
class Resource:
    slug: str
    title: str
    category: str
    kind: str
    summary: str
    body: str

    @property
    def filename(self) -> str:
        return f"{self.slug}.{'html' if self.kind == 'guide' else 'svg'}"

    @property
    def mimetype(self) -> str:
        return "text/html" if self.kind == "guide" else "image/svg+xml"

    def matches(self, text: str) -> bool:
        text = text.lower()
        return text in self.title.lower() or text in self.summary.lower() or text in self.body.lower()


def _parse(path: Path) -> Resource:
    head, _, body = path.read_text(encoding="utf-8").partition("\n---\n")
    meta = dict(line.split(":", 1) for line in head.splitlines() if ":" in line)
    meta = {k.strip(): v.strip() for k, v in meta.items()}
    if meta.get("category") not in CATEGORIES or meta.get("kind") not in KINDS:
        raise ValueError(f"{path.name}: unknown category or kind")
    return Resource(path.stem, meta["title"], meta["category"], meta["kind"], meta["summary"], body.strip())


@cache
def catalogue() -> tuple[Resource, ...]:
    return tuple(sorted((_parse(p) for p in DIRECTORY.glob("*.md")), key=lambda r: (r.category, r.title)))


def search(text: str = "", category: str = "") -> list[Resource]:
    return [
        r for r in catalogue() if (not category or r.category == category) and (not text or r.matches(text))
    ]


def get(slug: str) -> Resource | None:
    return next((r for r in catalogue() if r.slug == slug), None)


def render_markdown(text: str) -> str:
    """Headings (#, ##), bulleted (-) and numbered (1.) lists and paragraphs; everything escaped."""
    out: list[str] = []
    for block in text.split("\n\n"):
        lines = [line.rstrip() for line in block.strip().splitlines() if line.strip()]
        if not lines:
            continue
        if lines[0].startswith("#"):
            level = min(len(lines[0]) - len(lines[0].lstrip("#")), 3)
            out.append(f"<h{level}>{escape(lines[0].lstrip('#').strip())}</h{level}>")
            lines = lines[1:]
            if not lines:
                continue
        if all(line.startswith("- ") for line in lines):
            out.append("<ul>" + "".join(f"<li>{escape(line[2:])}</li>" for line in lines) + "</ul>")
        elif all(line.split(".", 1)[0].isdigit() for line in lines):
            out.append(
                "<ol>"
                + "".join(f"<li>{escape(line.split('.', 1)[1].strip())}</li>" for line in lines)
                + "</ol>"
            )
        else:
            out.append(f"<p>{escape(' '.join(lines))}</p>")
    return "\n".join(out)


def guide_html(resource: Resource) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(resource.title)} · Provider Center</title></head>\n<body>\n"
        f"{render_markdown(resource.body)}\n"
        "<hr><p>Provider Center training guide. Questions: contact Provider Center support.</p>\n"
        "</body></html>\n"
    )


def marketing_svg(resource: Resource, practice_name: str = "") -> str:
    """The piece at its size: the headline, the points under it, and the practice's name."""
    width, height = SIZES[resource.kind]
    lines = resource.body.splitlines()
    headline = next((line.lstrip("#").strip() for line in lines if line.startswith("#")), resource.title)
    points = [line[2:].strip() for line in lines if line.startswith("- ")]
    big = max(12, min(width // 14, height // 3))
    small = max(10, big // 2)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="t">',
        f'<title id="t">{escape(resource.title)}</title>',
        f'<rect width="{width}" height="{height}" fill="#0b5cad"/>',
        f'<text x="{width // 2}" y="{big + height // 12}" font-family="sans-serif" font-size="{big}" '
        f'fill="#ffffff" text-anchor="middle">{escape(headline)}</text>',
    ]
    y = big + height // 12 + small * 2
    for point in points:
        if y > height - small:
            break
        parts.append(
            f'<text x="{width // 2}" y="{y}" font-family="sans-serif" font-size="{small}" fill="#ffffff" '
            f'text-anchor="middle">{escape(point)}</text>'
        )
        y += int(small * 1.6)
    if practice_name and height >= 200:
        parts.append(
            f'<text x="{width // 2}" y="{height - small}" font-family="sans-serif" font-size="{small}" '
            f'fill="#ffd54f" text-anchor="middle">{escape(practice_name)}</text>'
        )
    parts.append("</svg>\n")
    return "\n".join(parts)


def download(resource: Resource, practice_name: str = "") -> str:
    return guide_html(resource) if resource.kind == "guide" else marketing_svg(resource, practice_name)
