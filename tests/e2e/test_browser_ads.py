"""The Ads page in real Chromium at phone and desktop widths: the cost per conversation of an ad whose DM-ad
conversation came in through the Infobip webhook, and an ad review (rejected) arriving live through the review
webhook, the shared ledger and the processor."""

from __future__ import annotations

import copy
import json
import time
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.utils import timezone
from playwright.sync_api import expect

from inbox.models import Conversation
from tests.e2e.conftest import wait_for
from tests.e2e.test_browser import ARTIFACTS, browser, contexts  # noqa: F401 - fixtures
from tests.tiktok_channel.webhooks import fixture, signed_headers, webhook_path
from tiktok_channel.ads import services
from tiktok_channel.ads.models import Ad, AdAccount, AdGroup, AdMetricDaily, AdvertiserAuthorization, Campaign

expect.set_options(timeout=15_000)
pytestmark = [pytest.mark.e2e, pytest.mark.flaky(reruns=2, reruns_delay=1)]

AD_ID = "1780000000000003"


def make_tree() -> Ad:
    authorization = AdvertiserAuthorization.objects.create(access_token="adv-token")
    account = AdAccount.objects.create(
        authorization=authorization,
        advertiser_id="7012345678901234567",
        name="Shop",
        currency="EUR",
        timezone="UTC",
        in_use=True,
    )
    campaign = Campaign.objects.create(
        account=account, campaign_id="1780000000000001", name="Spring leads", objective_type="LEAD_GENERATION"
    )
    adgroup = AdGroup.objects.create(campaign=campaign, adgroup_id="1780000000000002", name="UK 18-34")
    ad = Ad.objects.create(adgroup=adgroup, ad_id=AD_ID, name="Ask us", ad_text="Ask us anything")
    today = services.account_today(account)
    AdMetricDaily.objects.create(ad=ad, date=today, spend=Decimal("30.00"), impressions=4000, clicks=50)
    AdMetricDaily.objects.create(ad=ad, date=today - timedelta(days=1), spend=Decimal("10.00"), impressions=900)
    return ad


def dm_from_ad(stack, user: str) -> None:
    payload = copy.deepcopy(fixture("inbound_referral_ad"))
    item = payload["results"][0]
    item.update(sender=user, to=stack.business_id, messageId=f"ad-msg-{user}")
    item["receivedAt"] = timezone.now().strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    item["message"].update(conversationId=user, adId=AD_ID)
    body = json.dumps(payload).encode()
    response = requests.post(
        f"{stack.web_url}{webhook_path(stack.account)}",
        data=body,
        headers={"Content-Type": "application/json", **signed_headers(stack.account, body)},
        timeout=10,
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("viewport", [{"width": 390, "height": 844}, {"width": 1440, "height": 900}], ids=str)
def test_ads_page_cost_per_conversation_and_a_live_review(stack, browser, viewport):  # noqa: F811
    ad = make_tree()
    for user in ("tt-ad-1", "tt-ad-2"):
        dm_from_ad(stack, user)
    wait_for(lambda: Conversation.objects.filter(referral__ad_id=AD_ID).count() == 2, what="two DM-ad conversations")
    stack.agent.is_staff = True
    stack.agent.save(update_fields=["is_staff"])

    context = browser.new_context(viewport=viewport, locale="en-GB", timezone_id="UTC")
    try:
        context.add_cookies([stack.session_cookie()])
        page = context.new_page()
        page.goto(f"{stack.web_url}/ads/")
        row = page.locator(f'.ads-ad[data-ad-id="{AD_ID}"]')
        expect(row.locator(".ads-cpc")).to_have_text("20.00 EUR")  # 40.00 spent, 2 conversations
        badge = row.locator(f'[data-ad-review="{AD_ID}"]')
        expect(badge).to_have_text("In review")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scrolling
        expect(page.locator("body")).to_have_attribute("data-live", "open")  # the socket joined the staff group

        review = {
            "request_id": "r-1",
            "object": 3,
            "time": int(time.time()),
            "entry": [{"adv_id": 7012345678901234567, "ad_id": AD_ID, "reject_reason": "Misleading claim"}],
        }
        response = requests.post(f"{stack.web_url}/webhooks/tiktok-ads/e2e-ads-hook/", json=review, timeout=10)
        assert response.status_code == 200, response.text
        expect(badge).to_have_text("Rejected")  # live, without a reload
        ad.refresh_from_db()
        assert ad.review_status == Ad.Review.REJECTED

        page.goto(f"{stack.web_url}/ads/ads/{ad.pk}/")
        expect(page.locator(".ads-cpc")).to_have_text("20.00 EUR")
        expect(page.locator(".ads-daily")).to_contain_text("30.00")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"ads-{viewport['width']}.png"), full_page=True)
    finally:
        context.close()
