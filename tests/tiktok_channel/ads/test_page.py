"""The Ads page: connect an advertiser, choose accounts, create campaign → ad group → ad (with an image), enable /
pause / delete; TikTok's refusals shown with their code and message, nothing stored."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from tiktok_channel.ads.models import Ad, AdAccount, AdGroup, AdvertiserAuthorization, Campaign

from .conftest import ADVERTISER, API, TOKEN, envelope

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_the_page_is_for_staff_only(client, agent):
    assert client.get("/ads/")["Location"].startswith("/admin/login/")
    client.force_login(agent)
    assert client.get("/ads/")["Location"].startswith("/admin/login/")


@responses.activate
def test_connect_exchanges_the_code_lists_advertisers_and_stores_the_token_encrypted(client, staff):
    client.force_login(staff)
    response = client.get("/ads/connect/")
    consent = urlsplit(response["Location"])
    query = {k: v[0] for k, v in parse_qs(consent.query).items()}
    assert f"{consent.scheme}://{consent.netloc}{consent.path}" == "https://ads-auth.example.test/portal/auth"
    assert query["app_id"] == "app-123" and query["redirect_uri"].endswith("/ads/callback/")
    responses.post(
        f"{API}/oauth2/access_token/",
        json=envelope({"access_token": TOKEN, "advertiser_ids": [ADVERTISER], "scope": [4, 5]}),
    )
    responses.get(
        f"{API}/oauth2/advertiser/get/",
        json=envelope({"list": [{"advertiser_id": ADVERTISER, "advertiser_name": "Shop"}]}),
    )
    responses.get(
        f"{API}/advertiser/info/",
        json=envelope(
            {
                "list": [
                    {"advertiser_id": ADVERTISER, "name": "Shop Ltd", "currency": "EUR", "timezone": "Europe/Berlin"}
                ]
            }
        ),
    )
    response = client.get("/ads/callback/", {"auth_code": "code-1", "state": query["state"]})
    assert response.status_code == 302
    assert json.loads(responses.calls[0].request.body) == {
        "app_id": "app-123",
        "secret": "app-secret-xyz",
        "auth_code": "code-1",
    }
    account = AdAccount.objects.get()
    assert (account.name, account.currency, account.timezone, account.in_use) == (
        "Shop Ltd",
        "EUR",
        "Europe/Berlin",
        False,
    )
    assert AdvertiserAuthorization.objects.get().access_token == TOKEN
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token FROM tiktok_channel_advertiserauthorization")
        assert TOKEN not in cursor.fetchone()[0]
    # The state is single use.
    again = client.get("/ads/callback/", {"auth_code": "code-1", "state": query["state"]})
    assert any("already used" in text for text in texts(again))
    assert AdvertiserAuthorization.objects.count() == 1
    # Staff choose the accounts in use.
    client.post("/ads/accounts/", {"in_use": [account.pk]})
    assert AdAccount.objects.get().in_use


@responses.activate
def test_connect_refused_code_is_shown_and_nothing_stored(client, staff):
    client.force_login(staff)
    state = parse_qs(urlsplit(client.get("/ads/connect/")["Location"]).query)["state"][0]
    responses.post(f"{API}/oauth2/access_token/", json=envelope(code=40110, message="auth code expired"))
    response = client.get("/ads/callback/", {"auth_code": "old", "state": state})
    assert any("40110" in text and "auth code expired" in text for text in texts(response))
    assert not AdvertiserAuthorization.objects.exists()


@responses.activate
def test_create_campaign_adgroup_and_ad_with_an_image(client, staff, ad_account):
    client.force_login(staff)
    responses.post(f"{API}/campaign/create/", json=envelope({"campaign_id": "1780000000000001"}))
    client.post(
        "/ads/campaigns/",
        {
            "account": ad_account.pk,
            "name": "Spring",
            "objective_type": "LEAD_GENERATION",
            "budget_mode": "BUDGET_MODE_DAY",
            "budget": "100",
        },
    )
    body = json.loads(responses.calls[-1].request.body)
    assert body["advertiser_id"] == ADVERTISER and body["campaign_name"] == "Spring"
    assert body["operation_status"] == "DISABLE" and body["budget"] == 100.0 and body["request_id"].isdigit()
    campaign = Campaign.objects.get(campaign_id="1780000000000001")

    responses.post(f"{API}/adgroup/create/", json=envelope({"adgroup_id": "1780000000000002"}))
    client.post(
        f"/ads/campaigns/{campaign.pk}/adgroups/",
        {
            "name": "UK 18-34",
            "placement_type": "PLACEMENT_TYPE_AUTOMATIC",
            "location_ids": "2635167",
            "age_groups": ["AGE_18_24", "AGE_25_34"],
            "gender": "",
            "budget_mode": "BUDGET_MODE_DAY",
            "budget": "50",
            "start": "2030-12-01T09:00",
            "end": "",
        },
    )
    body = json.loads(responses.calls[-1].request.body)
    assert body["campaign_id"] == "1780000000000001" and body["location_ids"] == ["2635167"]
    assert body["age_groups"] == ["AGE_18_24", "AGE_25_34"] and body["schedule_type"] == "SCHEDULE_FROM_NOW"
    for required in ("budget_mode", "budget", "billing_event", "optimization_goal", "pacing", "schedule_start_time"):
        assert required in body
    assert len(body["schedule_start_time"]) == 19
    adgroup = AdGroup.objects.get(adgroup_id="1780000000000002")

    responses.post(f"{API}/file/image/ad/upload/", json=envelope({"image_id": "ad-img-1", "image_url": ""}))
    responses.post(f"{API}/ad/create/", json=envelope({"ad_ids": ["1780000000000003"]}))
    client.post(
        f"/ads/adgroups/{adgroup.pk}/ads/",
        {
            "name": "Ask us",
            "ad_text": "Ask us anything",
            "call_to_action": "CONTACT_US",
            "landing_page_url": "",
            "identity_id": "",
            "image": SimpleUploadedFile("shot.png", PNG, content_type="image/png"),
        },
    )
    body = json.loads(responses.calls[-1].request.body)
    creative = body["creatives"][0]
    assert body["adgroup_id"] == "1780000000000002"
    assert creative["image_ids"] == ["ad-img-1"] and creative["ad_text"] == "Ask us anything"
    ad = Ad.objects.get(ad_id="1780000000000003")
    assert ad.review_status == Ad.Review.PENDING and ad.image_id == "ad-img-1"

    page = client.get("/ads/")
    assert b"Ask us anything" in page.content and b"UK 18-34" in page.content


@responses.activate
def test_a_refusal_shows_tiktoks_code_and_message_and_stores_nothing(client, staff, ad_account):
    client.force_login(staff)
    responses.post(f"{API}/campaign/create/", json=envelope(code=40002, message="Budget must be at least 50"))
    response = client.post(
        "/ads/campaigns/",
        {
            "account": ad_account.pk,
            "name": "Cheap",
            "objective_type": "TRAFFIC",
            "budget_mode": "BUDGET_MODE_DAY",
            "budget": "1",
        },
        follow=True,
    )
    assert "TikTok refused (40002): Budget must be at least 50" in response.content.decode()
    assert not Campaign.objects.exists()


def test_bad_input_is_refused_before_tiktok(client, staff, ad_account, campaign, adgroup):
    client.force_login(staff)
    response = client.post(
        "/ads/campaigns/",
        {"account": ad_account.pk, "name": "", "objective_type": "NOPE", "budget_mode": "BUDGET_MODE_DAY"},
        follow=True,
    )
    assert response.status_code == 200 and "choose one of" in response.content.decode()
    response = client.post(
        f"/ads/adgroups/{adgroup.pk}/ads/",
        {
            "name": "x",
            "ad_text": "y",
            "call_to_action": "LEARN_MORE",
            "image": SimpleUploadedFile("a.gif", b"GIF89a....", content_type="image/gif"),
        },
        follow=True,
    )
    assert "JPG or PNG" in response.content.decode()
    assert not Ad.objects.exists()


@responses.activate
def test_enable_pause_delete(client, staff, ad):
    client.force_login(staff)
    responses.post(f"{API}/ad/status/update/", json=envelope({}))
    client.post(f"/ads/ad/{ad.pk}/status/", {"operation_status": "ENABLE"})
    assert json.loads(responses.calls[-1].request.body) == {
        "advertiser_id": ADVERTISER,
        "ad_ids": [ad.ad_id],
        "operation_status": "ENABLE",
    }
    ad.refresh_from_db()
    assert ad.operation_status == "ENABLE"
    client.post(f"/ads/ad/{ad.pk}/status/", {"operation_status": "DISABLE"})
    client.post(f"/ads/ad/{ad.pk}/status/", {"operation_status": "DELETE"})
    ad.refresh_from_db()
    assert ad.operation_status == "DELETE"
    calls = len(responses.calls)
    response = client.post(f"/ads/ad/{ad.pk}/status/", {"operation_status": "ENABLE"}, follow=True)
    assert "deleted" in response.content.decode() and len(responses.calls) == calls


@responses.activate
def test_a_refused_status_change_keeps_the_old_status(client, staff, campaign):
    client.force_login(staff)
    responses.post(f"{API}/campaign/status/update/", json=envelope(code=40001, message="No permission"))
    response = client.post(f"/ads/campaign/{campaign.pk}/status/", {"operation_status": "ENABLE"}, follow=True)
    assert "TikTok refused (40001): No permission" in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.operation_status == "DISABLE"


@responses.activate
def test_a_new_ad_is_subscribed_to_its_review_webhooks(
    client, staff, adgroup, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from tiktok_channel.ads import tasks

    settings.TIKTOK_ADS_WEBHOOK_PATH_TOKEN = "hook-token"
    queued = []
    monkeypatch.setattr(tasks.subscribe_ad_reviews, "delay", queued.append)  # the broker; run below
    responses.post(f"{API}/file/image/ad/upload/", json=envelope({"image_id": "img-9"}))
    responses.post(f"{API}/ad/create/", json=envelope({"ad_ids": ["1780000000000009"]}))
    client.force_login(staff)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            f"/ads/adgroups/{adgroup.pk}/ads/",
            {
                "name": "A",
                "ad_text": "B",
                "call_to_action": "LEARN_MORE",
                "image": SimpleUploadedFile("a.jpg", b"\xff\xd8\xff\xe0" + b"0" * 40, content_type="image/jpeg"),
            },
        )
    ad = Ad.objects.get()
    assert queued == [ad.pk]
    responses.post(f"{API}/subscription/subscribe/", json=envelope({"subscription_id": "s-1"}))
    assert tasks.subscribe_ad_reviews.apply(args=[ad.pk]).get() is True
    body = json.loads(responses.calls[-1].request.body)
    assert body == {
        "app_id": "app-123",
        "secret": "app-secret-xyz",
        "subscribe_entity": "AD",
        "callback_url": f"{settings.PUBLIC_BASE_URL}/webhooks/tiktok-ads/hook-token/",
        "subscription_detail": {"access_token": TOKEN, "advertiser_id": ADVERTISER, "ad_id": "1780000000000009"},
    }


def test_staff_find_the_ads_page_from_the_inbox_and_agents_do_not(client, staff, agent):
    client.force_login(staff)
    assert client.get("/").content.decode().count('href="/ads/"') == 2  # the top bar and the phone menu
    client.force_login(agent)
    assert 'href="/ads/"' not in client.get("/").content.decode()


def test_malformed_form_values_are_4xx_or_a_reason_never_a_500(client, staff, campaign):
    client.force_login(staff)
    assert client.post("/ads/campaigns/", {"account": "abc"}).status_code == 404
    assert client.post("/ads/audiences/", {"account": "1; drop"}).status_code == 404
    response = client.post(
        f"/ads/campaigns/{campaign.pk}/adgroups/",
        {
            "name": "x",
            "placement_type": "PLACEMENT_TYPE_AUTOMATIC",
            "gender": "",
            "budget_mode": "BUDGET_MODE_DAY",
            "budget": "5",
            "start": "2026-13-45T99:00",
        },
        follow=True,
    )
    assert "is not a date and time" in response.content.decode()
    assert client.post("/ads/weird/1/status/", {"operation_status": "ENABLE"}).status_code == 302
    assert client.get("/ads/campaigns/").status_code == 405


def test_admin_lists_ads_rows_read_only_without_the_token(client, django_user_model, ad):
    boss = django_user_model.objects.create_user("root", password="pw-123-root", is_staff=True, is_superuser=True)
    client.force_login(boss)
    authorization = ad.adgroup.campaign.account.authorization
    page = client.get(f"/admin/tiktok_channel/advertiserauthorization/{authorization.pk}/change/")
    assert page.status_code == 200 and TOKEN not in page.content.decode()
    assert ad.ad_id in client.get("/admin/tiktok_channel/ad/").content.decode()
    assert client.get("/admin/tiktok_channel/ad/add/").status_code == 403
