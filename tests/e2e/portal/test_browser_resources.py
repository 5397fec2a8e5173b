"""Resources in a real browser (issue 8): search the catalogue, filter a category, download a
training guide (a standalone HTML document) and the in-office brochure (an SVG carrying the
practice's name), and check what was downloaded is the real thing — screenshot in
var/screenshots."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.e2e.test_browser_signin import sign_in
from tests.support.stack import Stack, add_staff

pytestmark = pytest.mark.e2e

SVG = "{http://www.w3.org/2000/svg}"


def download(page, link_name: str, directory: Path) -> Path:  # type: ignore[no-untyped-def]
    """Click the link, wait for the download and keep it under the name the portal suggested."""
    with page.expect_download() as info:
        page.get_by_role("link", name=link_name).click()
    done = info.value
    assert done.failure() is None, done.failure()
    path = directory / done.suggested_filename
    done.save_as(path)
    return path


def test_search_filter_and_download_a_guide_and_a_brochure(  # type: ignore[no-untyped-def]
    stack: Stack, page, screenshots: Path, tmp_path: Path
) -> None:
    stack.start("auth-web", "auth-grpc", "portal-web")
    user = add_staff(stack, roles=["front_desk"], practice_name="Cedar Hearing Clinic")
    sign_in(page, stack, user)

    page.get_by_role("link", name="Resources", exact=True).click()
    main = page.locator("main").inner_text()
    assert "Marketing material" in main and "Training guides" in main
    assert "In-office brochure" in main and "Promotional financing explained" in main

    # Search: only what mentions deferred interest, in the guides.
    page.get_by_label("Search", exact=True).fill("deferred interest")
    page.get_by_role("button", name="Search").click()
    main = page.locator("main").inner_text()
    assert page.locator("main h2").all_inner_texts() == ["Training guides"]
    assert "Promotional financing explained" in main
    assert "Waiting room poster" not in main and "How to help a patient apply" not in main
    page.screenshot(path=str(screenshots / "portal-resources.png"), full_page=True)

    path = download(page, "Download promotional-financing.html", tmp_path)
    assert path.name == "promotional-financing.html"
    html = path.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and "<h1>Promotional financing explained</h1>" in html
    # Chromium itself opens it as a document with the guide's title and headings.
    viewer = page.context.new_page()
    viewer.goto(path.as_uri())
    assert viewer.title() == "Promotional financing explained · Provider Center"
    assert viewer.get_by_role("heading", name="Deferred interest plans", exact=False).is_visible()
    viewer.close()

    # Filter a category: marketing only, and no search text.
    page.get_by_label("Search", exact=True).fill("")
    page.get_by_label("Category").select_option(label="Marketing material")
    page.get_by_role("button", name="Search").click()
    assert "category=marketing" in page.url
    main = page.locator("main").inner_text()
    assert page.locator("main h2").all_inner_texts() == ["Marketing material"]
    assert "In-office brochure" in main and "Waiting room poster" in main
    assert "Promotional financing explained" not in main

    path = download(page, "Download in-office-brochure.svg", tmp_path)
    assert path.name == "in-office-brochure.svg"
    assert path.stat().st_size > 0
    svg = ET.fromstring(path.read_text(encoding="utf-8"))  # well-formed XML
    assert svg.tag == f"{SVG}svg" and (svg.get("width"), svg.get("height")) == ("792", "612")
    assert svg.findtext(f"{SVG}title") == "In-office brochure"
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert "Pay for care over time" in texts and "Cedar Hearing Clinic" in texts  # the practice's name
