"""The advertiser consent page in Chromium at phone and desktop width: what a staff member clicks through."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from playwright.sync_api import expect

from tests.tiktok_channel.ads.sandbox.conftest import ADVERTISER, APP_ID, OTHER_ADVERTISER, REDIRECT_URI, SECRET
from tests.tiktok_channel.sandbox_helpers import chromium

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.mark.parametrize("width", [390, 1280])
def test_consent_page_grants_the_ad_accounts_left_checked(running, browser, width):
    page = browser.new_page(viewport={"width": width, "height": 844})
    try:
        page.route(re.compile(r"^https://inbox\.example/.*"), lambda route: route.fulfill(body="callback"))
        query = urlencode({"app_id": APP_ID, "state": "s-ads", "redirect_uri": REDIRECT_URI})
        page.goto(f"{running.url}/portal/auth?{query}")
        expect(page.get_by_role("heading")).to_have_text("Acme Ads would like to manage your TikTok ad accounts")
        expect(page.get_by_label(f"Acme Shop ({ADVERTISER})")).to_be_checked()
        page.get_by_label(f"Acme Outlet ({OTHER_ADVERTISER})").uncheck()
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing wider than the window
        page.get_by_role("button", name="Authorize").click()
        page.wait_for_url(f"{REDIRECT_URI}**")
        callback = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
    finally:
        page.close()
    assert callback["state"] == "s-ads"
    answer = running.post(
        "/oauth2/access_token/", {"app_id": APP_ID, "secret": SECRET, "auth_code": callback["auth_code"]}
    )
    assert answer["data"]["advertiser_ids"] == [ADVERTISER]
