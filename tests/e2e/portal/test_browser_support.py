"""A support ticket in real browsers: the practice opens it, an agent of the support practice
answers in another browser, and the reply appears on the practice's open page without a
reload (static/support.js polling messages.json)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_browser_signin import sign_in
from tests.support.stack import Stack, add_staff

pytestmark = pytest.mark.e2e


def test_a_reply_appears_without_a_reload(stack: Stack, chromium, screenshots: Path) -> None:  # type: ignore[no-untyped-def]
    agent_user = add_staff(stack, roles=["manager"], practice_name="Provider Center Support")
    stack.env["PORTAL_SUPPORT_PRACTICE_ID"] = agent_user.practice_id
    stack.start()
    desk_user = add_staff(stack, roles=["front_desk"], practice_name="Bright Smiles Dental")

    desk_context = chromium.new_context(viewport={"width": 1280, "height": 860})
    agent_context = chromium.new_context(viewport={"width": 1280, "height": 860})
    try:
        desk = desk_context.new_page()
        agent = agent_context.new_page()
        for page in (desk, agent):
            page.set_default_timeout(15_000)
        sign_in(desk, stack, desk_user)
        desk.get_by_role("link", name="Support", exact=True).click()
        desk.get_by_role("link", name="New support request").click()
        desk.get_by_label("Subject").fill("Deposit looks short")
        desk.get_by_label("Category").select_option("payments")
        desk.get_by_label("Message").fill("Yesterday's deposit is $40 less than the charges.")
        desk.get_by_role("button", name="Send request").click()
        assert "created" in desk.get_by_role("status").inner_text()
        ticket_url = desk.url.split("?")[0]
        ticket_id = ticket_url.rsplit("/", 1)[1]

        sign_in(agent, stack, agent_user)
        agent.goto(stack.portal_url + "/support")
        agent.get_by_role("link", name=ticket_id).click()
        agent.get_by_label("Your message").fill("That is the merchant fee; see the deposit report.")
        agent.get_by_role("button", name="Send reply").click()
        assert "merchant fee" in agent.locator("#thread").inner_text()

        # The practice's page, opened before the reply, shows it without a reload.
        reply = desk.locator("#thread .message--support")
        reply.wait_for(state="visible", timeout=20_000)
        assert "merchant fee" in reply.inner_text()
        assert desk.url.split("?")[0] == ticket_url
        desk.screenshot(path=str(screenshots / "portal-support-ticket.png"), full_page=True)
    finally:
        desk_context.close()
        agent_context.close()
