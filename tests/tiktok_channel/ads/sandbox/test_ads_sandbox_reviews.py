"""Ad review webhooks (§7.7, §10): subscriptions, the signed delivery, retries."""

from __future__ import annotations

import json
import re

import requests

from tests.tiktok_channel.ads.sandbox.conftest import ADVERTISER, APP_ID, SECRET
from tests.tiktok_channel.sandbox_helpers import verify_signature, wait_until


def _subscribe(connected, url: str, entity: str = "AD", **detail) -> dict:
    body = {
        "app_id": APP_ID,
        "secret": SECRET,
        "subscribe_entity": entity,
        "callback_url": url,
        "subscription_detail": {"access_token": connected.token, "advertiser_id": ADVERTISER, **detail},
    }
    return connected.running.post("/subscription/subscribe/", body)


def _review(running, **body) -> dict:
    response = requests.post(f"{running.url}/sandbox/review", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_approval_posts_a_signed_ad_review_webhook_to_the_subscription(connected):
    running = connected.running
    campaign_id, adgroup_id, ad_id = connected.tree()
    subscribed = _subscribe(connected, f"{running.receiver.url}/ads-hook/", ad_id=ad_id)
    assert subscribed["code"] == 0 and subscribed["data"]["subscription_id"].isdigit()

    result = _review(running, ad_id=ad_id, decision="approve")
    assert result["ad"]["secondary_status"] == "AD_STATUS_DELIVERY_OK"
    (captured,) = running.receiver.wait_for(1)
    assert captured.path == "/ads-hook/"
    header = {k.lower(): v for k, v in captured.headers.items()}["tiktok-signature"]
    assert verify_signature(header, captured.body, SECRET)
    assert not verify_signature(header, captured.body.replace(b'"object"', b'"objekt"'), SECRET)
    payload = captured.json
    assert payload["object"] == 3 and isinstance(payload["time"], int)
    (entry,) = payload["entry"]
    assert re.search(rb'"adv_id":\s*7012345678901234567[,}]', captured.body)  # a JSON number, exact
    assert entry["ad_id"] == ad_id and entry["adgroup_id"] == adgroup_id and entry["campaign_id"] == campaign_id
    assert entry["ad_name"] == "Image A" and entry["campaign_name"] == "Spring leads"
    assert entry["reject_reason"] == ""

    ad = running.get("/ad/get/", {"advertiser_id": ADVERTISER}, token=connected.token)["data"]["list"][0]
    assert ad["secondary_status"] == "AD_STATUS_DELIVERY_OK"


def test_rejection_carries_the_reason_and_ad_group_subscriptions_get_object_2(connected):
    running = connected.running
    _, adgroup_id, ad_id = connected.tree()
    assert (
        _subscribe(connected, f"{running.receiver.url}/group/", entity="AD_GROUP", adgroup_id=adgroup_id)["code"] == 0
    )
    _review(running, ad_id=ad_id, decision="reject", reject_reason="Misleading claim")
    (captured,) = running.receiver.wait_for(1)
    assert captured.json["object"] == 2
    assert captured.json["entry"][0]["reject_reason"] == "Misleading claim"
    assert running.state()["ads"][0]["secondary_status"] == "AD_STATUS_AUDIT_DENY"


def test_the_apps_configured_url_gets_every_review_and_a_failure_is_retried(connected):
    running = connected.running
    _, _, ad_id = connected.tree()
    running.control("/sandbox/apps", app_id=APP_ID, secret=SECRET, review_webhook_url=f"{running.receiver.url}/cfg/")
    running.receiver.statuses.append(500)
    _review(running, ad_id=ad_id, decision="approve")
    first, second = running.receiver.wait_for(2)
    assert first.body == second.body and second.path == "/cfg/"
    wait_until(lambda: running.counter("review_webhooks_ok") == 1, 5, "the retry answered 200")
    assert running.counter("review_webhooks_failed") == 1


def test_unsigned_reviews_when_switched_off(connected):
    running = connected.running
    _, _, ad_id = connected.tree()
    running.control(set={"sign_review_webhooks": False})
    _subscribe(connected, f"{running.receiver.url}/h/", ad_id=ad_id)
    _review(running, ad_id=ad_id, decision="approve")
    (captured,) = running.receiver.wait_for(1)
    assert "tiktok-signature" not in {k.lower() for k in captured.headers}


def test_a_revoked_token_ends_its_subscriptions(connected):
    running = connected.running
    _, _, ad_id = connected.tree()
    _subscribe(connected, f"{running.receiver.url}/h/", ad_id=ad_id)
    running.control(revoke_token=connected.token)
    result = _review(running, ad_id=ad_id, decision="approve")
    assert result["deliveries"] == []
    assert running.sandbox.scheduler.wait_idle(5)
    assert running.receiver.requests == []


def test_subscribe_refusals(connected):
    running = connected.running
    _, _, ad_id = connected.tree()
    assert _subscribe(connected, "not a url", ad_id=ad_id)["code"] == 40002
    assert _subscribe(connected, f"{running.receiver.url}/h/", ad_id="123")["code"] == 40007
    assert _subscribe(connected, f"{running.receiver.url}/h/", entity="LEAD", ad_id=ad_id)["code"] == 40002
    body = {"app_id": APP_ID, "secret": "wrong", "subscribe_entity": "AD", "callback_url": "https://x.example/"}
    assert running.post("/subscription/subscribe/", body)["code"] == 40001


def test_review_control_refuses_bad_input_with_400(connected):
    response = requests.post(
        f"{connected.running.url}/sandbox/review", json={"ad_id": "1", "decision": "ok"}, timeout=5
    )
    assert response.status_code == 400 and "decision" in response.json()["error"]
    response = requests.post(f"{connected.running.url}/sandbox/review", data=b"{", timeout=5)
    assert response.status_code == 400
    unknown = requests.post(
        f"{connected.running.url}/sandbox/review", data=json.dumps({"ad_id": "1", "decision": "approve"}), timeout=5
    )
    assert unknown.status_code == 400 and "unknown ad_id" in unknown.json()["error"]
