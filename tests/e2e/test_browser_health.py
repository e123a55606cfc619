"""The staff page of connection health in real Chromium, at phone and desktop widths, with its test button."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.test_browser import ARTIFACTS, browser, contexts  # noqa: F401 - fixtures
from tiktok_channel import setup

expect.set_options(timeout=15_000)
pytestmark = [pytest.mark.e2e, pytest.mark.flaky(reruns=2, reruns_delay=1)]


@pytest.mark.parametrize("viewport", [{"width": 390, "height": 844}, {"width": 1440, "height": 900}], ids=str)
def test_connections_page_is_green_and_tests_the_webhook(stack, browser, viewport):  # noqa: F811
    assert setup.account_setup(stack.account.pk).state == "complete"
    stack.account.refresh_from_db()
    result = stack.sandbox.sandbox.inbound({"sender": stack.business_id, "user": "tt-health", "text": "Hi"})
    assert result["status"] == 200, result
    # Arrivals are recorded by the processor as it applies them (not by the webhook request): the page is read after.
    stack.wait_processed()
    stack.agent.is_staff = True
    stack.agent.save(update_fields=["is_staff"])

    context = browser.new_context(viewport=viewport, locale="en-GB", timezone_id="UTC")
    try:
        context.add_cookies([stack.session_cookie()])
        page = context.new_page()
        page.goto(f"{stack.web_url}/connections/infobip/")
        card = page.locator(f'.health-card[data-account="{stack.account.pk}"]')
        expect(card).to_have_attribute("data-state", "green")
        expect(card.locator(".health-badge")).to_have_text("green")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scrolling

        card.get_by_role("button", name="Test the webhook").click()
        expect(page.locator(".health-message")).to_contain_text("our signed request SUCCESS")
        expect(card).to_contain_text("Infobip: SKIPPED · ours: SUCCESS")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"connections-{viewport['width']}.png"), full_page=True)
    finally:
        context.close()
