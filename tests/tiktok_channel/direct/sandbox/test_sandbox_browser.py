"""The consent page in Chromium at phone width: what an admin connecting an account clicks through."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from tests.tiktok_channel.direct.sandbox.conftest import BUSINESS, REDIRECT_URI
from tests.tiktok_channel.sandbox_helpers import chromium

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.mark.parametrize("decision", ["Authorize", "Deny"])
def test_consent_page_at_390px_redirects_back(running, browser, decision):
    page = browser.new_page(viewport={"width": 390, "height": 844})
    try:
        # The callback is the inbox's; here it only has to be reached.
        page.route(re.compile(r"^https://inbox\.example/.*"), lambda route: route.fulfill(body="callback"))
        page.goto(running.authorize_url(scope="user.info.basic,message.list.send", state="s-390"))
        expect(page.get_by_role("heading")).to_have_text("Acme Inbox would like to access your TikTok account")
        expect(page.get_by_label("Acme Shop (@acme_shop)")).to_be_checked()
        page.get_by_label("user.info.basic").uncheck()  # a user may grant less than asked
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390  # nothing wider than the phone
        page.get_by_role("button", name=decision).click()
        page.wait_for_url(f"{REDIRECT_URI}**")
        callback = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
    finally:
        page.close()
    assert callback["state"] == "s-390"
    if decision == "Deny":
        assert callback["error"] == "access_denied" and "code" not in callback
        return
    data = running.exchange(callback["code"]).json()["data"]
    assert data["open_id"] == BUSINESS and data["scope"] == "message.list.send"
