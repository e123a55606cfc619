"""What each ad brings: conversations that came in through the Infobip webhook from a DM ad (REFERRAL_AD), their
replies, resolutions and reported conversions, joined with the ad's spend — on the page and in the API."""

from __future__ import annotations

import copy
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from inbox.models import Conversation
from inbox.services import conversation_set_status, reply_queue
from inbox.services.conversions import conversion_report
from tests.tiktok_channel.webhooks import fixture, post
from tiktok_channel.ads import selectors, services
from tiktok_channel.ads.models import AdMetricDaily

pytestmark = pytest.mark.django_db


def referral_from(ad_id: str, user: str, message_id: str) -> dict:
    payload = copy.deepcopy(fixture("inbound_referral_ad"))
    item = payload["results"][0]
    item["sender"], item["messageId"] = user, message_id
    item["receivedAt"] = timezone.now().strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    item["message"]["conversationId"] = user
    item["message"]["adId"] = ad_id
    return payload


@pytest.fixture
def ad_conversations(client, account, ad, agent):
    """Three users write from the ad; one gets a reply and a conversion, one is resolved; one user from another ad."""
    for n in range(3):
        assert post(client, account, referral_from(ad.ad_id, f"user-{n}", f"m-{n}")).status_code == 200
    assert post(client, account, referral_from("other-ad", "user-9", "m-9")).status_code == 200
    conversations = list(Conversation.objects.filter(referral__ad_id=ad.ad_id).order_by("pk"))
    assert len(conversations) == 3
    first, second = conversations[0], conversations[1]
    reply_queue(conversation_id=first.pk, author=agent, type="text", text="Hi! How can we help?")
    conversion_report(conversation_id=first.pk, author=agent, event="Contact")
    conversation_set_status(conversation_id=second.pk, status=Conversation.Status.RESOLVED, actor=agent)
    today = services.account_today(ad.adgroup.campaign.account)
    AdMetricDaily.objects.create(ad=ad, date=today, spend=Decimal("20.00"), impressions=1000, clicks=30)
    AdMetricDaily.objects.create(ad=ad, date=today - timedelta(days=1), spend=Decimal("10.50"), impressions=5)
    return conversations


def test_brings_per_ad_joins_conversations_with_spend(ad, ad_conversations):
    brings = selectors.brings_per_ad([ad])[ad.ad_id]
    assert (brings.conversations, brings.replied, brings.resolved, brings.conversions) == (3, 1, 1, 1)
    assert brings.spend == Decimal("30.50")
    assert brings.cost_per_conversation == Decimal("10.17")


def test_page_and_campaign_chart_show_cost_per_conversation(client, staff, ad, ad_conversations):
    client.force_login(staff)
    page = client.get("/ads/").content.decode()
    assert "10.17 EUR" in page
    detail = client.get(f"/ads/campaigns/{ad.adgroup.campaign.pk}/").content.decode()
    assert "10.17 EUR" in detail and "<svg" in detail and "<rect" in detail
    assert "20.00" in detail and "10.50" in detail  # the numbers in the table beside the chart
    ad_page = client.get(f"/ads/ads/{ad.pk}/").content.decode()
    assert "10.17 EUR" in ad_page


def test_api_per_ad_and_campaign(client, staff, ad, ad_conversations):
    client.force_login(staff)
    body = client.get(f"/api/v1/ads/ads/{ad.ad_id}/").json()
    assert body["brings"]["conversations"] == 3
    assert body["brings"]["cost_per_conversation"] == "10.17"
    assert body["brings"]["conversions_reported"] == 1
    assert len(body["daily"]) == 30 and body["daily"][-1]["spend"] == "20.00"
    campaign = client.get(f"/api/v1/ads/campaigns/{ad.adgroup.campaign.campaign_id}/").json()
    assert campaign["brings"]["spend"] == "30.50" and campaign["ads"][0]["ad_id"] == ad.ad_id
    index = client.get("/api/v1/ads/").json()
    tree_ad = index["accounts"][0]["campaigns"][0]["adgroups"][0]["ads"][0]
    assert tree_ad["brings"]["replied"] == 1


def test_api_is_staff_only_and_unknown_ids_are_404(client, agent, staff, ad):
    client.force_login(agent)
    assert client.get("/api/v1/ads/").status_code == 403
    client.force_login(staff)
    response = client.get("/api/v1/ads/ads/999/")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_api_status_refusals_are_4xx_with_a_reason(client, staff, ad):
    client.force_login(staff)
    response = client.post(
        f"/api/v1/ads/ad/{ad.pk}/status/", {"operation_status": "BOOM"}, content_type="application/json"
    )
    assert response.status_code == 422 and response.json()["code"] == "invalid_status"
    response = client.post(
        "/api/v1/ads/nope/1/status/", {"operation_status": "ENABLE"}, content_type="application/json"
    )
    assert response.status_code == 422
