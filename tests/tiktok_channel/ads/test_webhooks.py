"""Ad review webhooks (§7.7) through the shared ledger: approved / rejected update the ad and reach staff live;
duplicates change nothing; forged, malformed or unknown-URL requests are refused with a reason."""

from __future__ import annotations

import json
import time

import pytest

from inbox import domain_events as de
from inbox.live import staff_group
from inbox.models import WebhookEvent
from inbox.processor import drain
from tiktok_channel.ads.models import Ad
from tiktok_channel.direct.webhooks import sign

from .conftest import ADVERTISER

pytestmark = pytest.mark.django_db

TOKEN = "ads-hook-token-123"


@pytest.fixture(autouse=True)
def _hook(settings):
    settings.TIKTOK_ADS_WEBHOOK_PATH_TOKEN = TOKEN
    settings.TIKTOK_ADS_WEBHOOK_REQUIRE_SIGNATURE = False


def review(ad_id: str, reason: str = "", object_: int = 3) -> bytes:
    entry = {
        "log_id": "l-1",
        "adv_id": int(ADVERTISER),
        "campaign_id": "1780000000000001",
        "adgroup_id": "1780000000000002",
        "ad_id": ad_id,
        "ad_name": "Ask us",
    }
    if reason:
        entry["reject_reason"] = reason
    return json.dumps({"request_id": "r-1", "object": object_, "time": int(time.time()), "entry": [entry]}).encode()


def deliver(client, body: bytes, headers=None, token: str = TOKEN):
    return client.generic(
        "POST", f"/webhooks/tiktok-ads/{token}/", body, content_type="application/json", headers=headers or {}
    )


def test_rejected_then_approved_updates_the_ad_and_pushes_to_staff(
    client, ad, live_events, django_capture_on_commit_callbacks, domain_events
):
    with django_capture_on_commit_callbacks(execute=True):
        response = deliver(client, review(ad.ad_id, reason="Misleading claim"))
    assert response.status_code == 200 and response.json()["ads_changed"] == 1
    ad.refresh_from_db()
    assert (ad.review_status, ad.reject_reason) == (Ad.Review.REJECTED, "Misleading claim")
    assert (staff_group(), {"type": "ad.review_changed", "ad_id": ad.ad_id, "review_status": "rejected"}) in live_events
    assert any(isinstance(e, de.AdReviewChanged) for e in domain_events)
    row = WebhookEvent.objects.get()
    assert (row.provider, row.verdict) == ("tiktok_ads", WebhookEvent.Verdict.PROCESSED)

    with django_capture_on_commit_callbacks(execute=True):
        deliver(client, review(ad.ad_id))
    ad.refresh_from_db()
    assert (ad.review_status, ad.reject_reason) == (Ad.Review.APPROVED, "")
    pushed = len(live_events)
    with django_capture_on_commit_callbacks(execute=True):
        again = deliver(client, review(ad.ad_id))  # at-least-once: the same again changes nothing
    assert again.json()["ads_changed"] == 0 and len(live_events) == pushed


def test_deferred_processing_goes_through_the_shared_processor(client, ad, settings):
    settings.WEBHOOK_PROCESSING = "deferred"
    assert deliver(client, review(ad.ad_id, reason="Nope")).json() == {"status": "accepted"}
    assert WebhookEvent.objects.get().verdict == WebhookEvent.Verdict.PENDING
    drain()
    ad.refresh_from_db()
    assert ad.review_status == Ad.Review.REJECTED
    assert WebhookEvent.objects.get().verdict == WebhookEvent.Verdict.PROCESSED


def test_other_objects_are_kept_unapplied(client, ad):
    assert deliver(client, review(ad.ad_id, object_=8)).status_code == 200
    row = WebhookEvent.objects.get()
    assert row.verdict == WebhookEvent.Verdict.PARTIAL and "object 8" in row.problems[0]["reason"]
    ad.refresh_from_db()
    assert ad.review_status == Ad.Review.PENDING


def test_unknown_url_malformed_body_and_bad_signature_are_refused(client, ad, settings):
    assert deliver(client, review(ad.ad_id), token="wrong").status_code == 404
    assert client.get(f"/webhooks/tiktok-ads/{TOKEN}/").status_code == 405
    response = deliver(client, b"not json")
    assert response.status_code == 400 and "JSON" in response.json()["message"]
    assert deliver(client, b'{"object": 3, "entry": "x"}').status_code == 400
    body = review(ad.ad_id, reason="x")
    forged = sign("not-the-secret", body, int(time.time()))
    response = deliver(client, body, headers={"TikTok-Signature": forged})
    assert response.status_code == 401
    settings.TIKTOK_ADS_WEBHOOK_REQUIRE_SIGNATURE = True
    assert deliver(client, body).status_code == 401  # unsigned, when signatures are required
    good = sign(settings.TIKTOK_MARKETING_APP_SECRET, body, int(time.time()))
    assert deliver(client, body, headers={"TikTok-Signature": good}).status_code == 200
    assert WebhookEvent.objects.count() == 1  # only the authentic one was stored


def test_closed_when_no_path_token_is_configured(client, ad, settings):
    settings.TIKTOK_ADS_WEBHOOK_PATH_TOKEN = ""
    assert deliver(client, review(ad.ad_id), token="anything").status_code == 404


def test_the_path_token_is_masked_in_request_logs(client, ad, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    assert deliver(client, b"not json").status_code == 400  # logged by django.request with the path
    records = [r for r in caplog.records if r.name == "django.request"]
    assert records and all("/webhooks/tiktok-ads/***/" in r.getMessage() for r in records)
    assert TOKEN not in caplog.text + repr([r.args for r in caplog.records])
