"""The shipped resource catalogue: every file parses, searches work, downloads are safe documents."""

from __future__ import annotations

from xml.etree import ElementTree

from services.portal import resources


def test_catalogue_has_guides_and_every_marketing_kind() -> None:
    items = resources.catalogue()
    assert {r.kind for r in items} == set(resources.KINDS)
    assert len([r for r in items if r.category == "training"]) >= 3


def test_search_and_category() -> None:
    assert [r.slug for r in resources.search("refund")] == ["charge-and-refund"]
    assert all(r.category == "marketing" for r in resources.search(category="marketing"))
    assert resources.search("no such words anywhere") == []
    assert resources.get("nope") is None


def test_guides_render_escaped_html_and_marketing_valid_svg() -> None:
    guide = resources.download(resources.get("help-a-patient-apply"))  # type: ignore[arg-type]
    assert "<h1>How to help a patient apply</h1>" in guide and "<ol>" in guide and "<ul>" in guide
    assert "<script" not in resources.render_markdown("<script>x</script>")
    for r in resources.search(category="marketing"):
        svg = resources.download(r, practice_name="Sunny & <Dental>")
        root = ElementTree.fromstring(svg)  # well-formed, the name escaped
        width, height = resources.SIZES[r.kind]
        assert root.get("width") == str(width) and root.get("height") == str(height)
