import base64
import logging

import pytest

from inbox.models import Message, WebhookEvent
from tests.tiktok_channel.webhooks import encode, fixture, post, webhook_path
from tiktok_channel.webhook_auth import HMAC_ALGORITHMS

pytestmark = pytest.mark.django_db


def nothing_stored() -> bool:
    return not WebhookEvent.objects.exists() and not Message.objects.exists()


@pytest.mark.parametrize("algorithm", sorted(HMAC_ALGORITHMS))
@pytest.mark.parametrize(("encoding", "prefix"), [("hex", ""), ("base64", ""), ("hex", "sha256=")])
def test_hmac_each_algorithm_and_encoding(client, make_account, algorithm, encoding, prefix):
    account = make_account(
        sender_id="biz-1",
        hmac_algorithm=algorithm,
        signature_encoding=encoding,
        signature_prefix=prefix,
        signature_header="X-Infobip-Signature",
    )
    assert post(client, account, fixture("inbound_text")).status_code == 200
    assert Message.objects.count() == 1


def test_basic_auth(client, make_account):
    account = make_account(
        sender_id="biz-1", webhook_auth="basic", basic_username="infobip", basic_password="pa:ss", webhook_secret=""
    )
    assert post(client, account, fixture("inbound_text")).status_code == 200
    bad = "Basic " + base64.b64encode(b"infobip:wrong").decode()
    response = post(client, account, fixture("inbound_image"), signed=False, headers={"Authorization": bad})
    assert response.status_code == 401
    assert Message.objects.count() == 1


def test_static_secret_header(client, make_account):
    account = make_account(
        sender_id="biz-1", webhook_auth="header", signature_header="X-Webhook-Secret", webhook_secret="static-secret"
    )
    assert post(client, account, fixture("inbound_text")).status_code == 200
    response = post(client, account, fixture("inbound_image"), signed=False, headers={"X-Webhook-Secret": "nope"})
    assert response.status_code == 401
    stored = WebhookEvent.objects.get()
    assert "static-secret" not in str(stored.headers)  # the secret header is not kept in the ledger


def test_tampered_body_is_refused_with_a_reason_and_nothing_stored(client, account, caplog):
    body = encode(fixture("inbound_text"))
    headers = {"X-Hub-Signature": "0" * 64}
    with caplog.at_level(logging.WARNING):
        response = post(client, account, body, signed=False, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"code": "unauthenticated", "message": "signature does not match the body"}
    assert nothing_stored()
    assert f"webhook auth failed for account {account.pk}" in caplog.text
    assert account.webhook_secret not in caplog.text


def test_missing_signature_header(client, account):
    response = post(client, account, fixture("inbound_text"), signed=False)
    assert response.status_code == 401 and "missing signature header" in response.json()["message"]
    assert nothing_stored()


def test_body_signed_for_another_account_is_refused(client, account, make_account):
    other = make_account(sender_id="biz-2")
    body = encode(fixture("inbound_text"))
    from tests.tiktok_channel.webhooks import signed_headers

    response = client.generic(
        "POST", webhook_path(account), body, content_type="application/json", headers=signed_headers(other, body)
    )
    assert response.status_code == 401
    assert nothing_stored()


def test_unknown_or_inactive_token_is_404(client, account):
    response = client.post("/webhooks/infobip/tiktok/not-a-token/", b"{}", content_type="application/json")
    assert response.status_code == 404
    account.active = False
    account.save()
    assert post(client, account, fixture("inbound_text")).status_code == 404
    assert nothing_stored()


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
def test_other_methods_are_405(client, account, method):
    response = getattr(client, method)(webhook_path(account))
    assert response.status_code == 405 and response["Allow"] == "POST"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "body is not valid JSON"),
        (b"\xff\xfe\x00garbage", "body is not valid JSON"),
        (b"[1, 2]", "body must be a JSON object"),
        (b"{}", "missing 'results'"),
        (b'{"results": {"a": 1}}', "'results' must be an array"),
        (b"[" * 100_000 + b"]" * 100_000, "body is not valid JSON"),
    ],
)
def test_bodies_that_are_not_webhook_payloads_get_400_with_a_reason_and_are_kept_as_rejected(
    client, account, body, reason
):
    response = post(client, account, body)
    assert response.status_code == 400
    assert response.json() == {"code": "bad_payload", "message": reason}
    event = WebhookEvent.objects.get()
    assert event.verdict == "rejected" and event.error == reason
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (1, "must be an object"),
        ({"message": {"type": "TEXT"}, "sender": "u", "to": "b"}, "messageId is required"),
        ({"message": {"type": "TEXT"}, "messageId": 5, "sender": "u", "to": "b"}, "messageId has the wrong type"),
        ({"message": "hi", "messageId": "m", "sender": "u", "to": "b"}, "message must be an object"),
        ({"message": {"type": 1}, "messageId": "m", "sender": "u", "to": "b"}, "message.type must be a string"),
        (
            {"message": {"type": "TEXT", "text": ["x"]}, "messageId": "m", "sender": "u", "to": "b"},
            "message.text has the wrong type",
        ),
        ({"messageId": "m", "status": "DELIVERED"}, "status must be an object"),
        ({"messageId": ["m"], "seenAt": "2026-01-01T00:00:00.000+0000"}, "messageId has the wrong type"),
    ],
)
def test_a_bad_result_is_kept_with_its_reason_and_the_others_are_applied(client, account, result, reason):
    good = fixture("inbound_text")["results"][0]
    other = {**fixture("inbound_image")["results"][0]}
    response = post(client, account, {"results": [good, result, other]})
    assert response.status_code == 200
    assert response.json()["inbound"] == 2 and response.json()["invalid"] == 1
    event = WebhookEvent.objects.get()
    assert event.verdict == "partial" and event.result_count == 3
    assert event.problems == [{"index": 1, "reason": reason}]
    assert Message.objects.count() == 2


def test_a_shape_the_spec_allows_but_we_do_not_understand_is_kept_as_unrecognized(client, account):
    untyped = {**fixture("inbound_text")["results"][0], "messageId": "in-untyped"}
    untyped["message"] = {"conversationId": "user-1"}  # the spec does not require `type`
    response = post(client, account, {"results": [untyped, {"something": "else"}]})
    assert response.status_code == 200 and response.json()["unrecognized"] == 2
    event = WebhookEvent.objects.get()
    assert event.verdict == "processed"  # nothing failed: there is nothing to apply
    assert event.problems == [
        {"index": 0, "reason": "a message without a type"},
        {"index": 1, "reason": "neither a message nor a delivery or seen report"},
    ]
    assert not Message.objects.exists()


def test_wrong_content_type_is_415(client, account):
    response = post(client, account, fixture("inbound_text"), content_type="text/plain")
    assert response.status_code == 415
    assert nothing_stored()


def test_body_over_the_limit_is_413(client, account, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 1000
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    items = [fixture("inbound_text")["results"][0] for _ in range(20)]
    response = post(client, account, {"results": items})
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
    assert nothing_stored()


def test_ledger_keeps_headers_without_credentials(client, make_account):
    account = make_account(
        sender_id="biz-1", webhook_auth="basic", basic_username="u", basic_password="p", webhook_secret=""
    )
    post(client, account, fixture("inbound_text"), headers={"X-Request-Id": "req-42"})
    headers = {k.lower(): v for k, v in WebhookEvent.objects.get().headers.items()}
    assert headers["x-request-id"] == "req-42"
    assert "authorization" not in headers


def test_a_result_that_fails_to_process_is_kept_and_can_be_replayed(client, account, admin_client, monkeypatch):
    import tiktok_channel.infobip_webhooks as infobip_webhooks

    real = infobip_webhooks.messages_receive

    def broken(*args, **kwargs):
        raise RuntimeError("database hiccup")

    # The batch fails, and so does its result-by-result fallback (the same function, a batch of one each):
    # the failure is recorded per result.
    monkeypatch.setattr(infobip_webhooks, "messages_receive", broken)
    response = post(client, account, fixture("inbound_text"))
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.verdict == "partial" and "RuntimeError: database hiccup" in event.error
    assert not Message.objects.exists()

    monkeypatch.setattr(infobip_webhooks, "messages_receive", real)
    response = admin_client.post(
        "/admin/inbox/webhookevent/", {"action": "replay", "_selected_action": [event.pk]}, follow=True
    )
    assert "replayed" in response.content.decode()
    event.refresh_from_db()
    assert event.verdict == "processed" and event.replayed_at is not None and event.error == ""
    assert Message.objects.get().provider_message_id == "in-text-1"


def test_deactivating_an_account_or_sender_takes_effect_at_once_in_this_process(client, account):
    assert post(client, account, fixture("inbound_text")).status_code == 200  # lookups now cached
    sender = account.senders.get()
    sender.active = False
    sender.save()
    response = post(client, account, fixture("inbound_image"))
    assert response.json()["ignored_unknown_sender"] == 1
    account.active = False
    account.save()
    assert post(client, account, fixture("inbound_image")).status_code == 404


UNSAFE_URLS = ["javascript:alert(document.cookie)", "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="]


@pytest.mark.parametrize("unsafe", UNSAFE_URLS)
def test_unsafe_url_schemes_stay_in_the_ledger_but_never_reach_api_clients(client, account, agent, unsafe):
    """Issue 21, item 8: media, share-post and referral URLs are exposed only when http(s)."""
    from inbox.models import Conversation
    from tests.inbox.helpers import api

    image, share, text = fixture("inbound_image"), fixture("inbound_share_post"), fixture("inbound_text_referral")
    image["results"][0]["message"]["mediaUrl"] = unsafe
    share["results"][0]["message"]["embedUrl"] = unsafe
    text["results"][0]["message"]["referral"]["sourceUrl"] = unsafe
    text["results"][0]["message"]["referral"]["embedUrl"] = unsafe
    ad = fixture("inbound_referral_ad")
    ad["results"][0]["message"]["embedUrl"] = unsafe
    ad["results"][0]["messageId"] = "in-ad-unsafe"
    for payload in (image, share, text, ad):
        assert post(client, account, payload).status_code == 200
    assert all(unsafe in str(event.body) for event in WebhookEvent.objects.all()), "the ledger keeps the raw value"

    conversation = Conversation.objects.get()
    user_api = api(agent)
    messages = user_api.get(f"/api/v1/conversations/{conversation.pk}/messages/").json()["results"]
    assert len(messages) == 4
    detail = user_api.get(f"/api/v1/conversations/{conversation.pk}/").json()
    listing = user_api.get("/api/v1/conversations/").json()
    for body in (messages, detail, listing):
        assert unsafe.split(":")[0] + ":" not in str(body), body
    assert {m["media_url"] for m in messages} == {""} and {m["share_post_embed_url"] for m in messages} == {""}
    assert "source_url" not in detail["referral_data"] and "embed_url" not in detail["referral_data"]
    assert detail["referral_data"]["source"] == "ad"

    text["results"][0]["messageId"] = "in-text-referral-again"  # now the text's referral is the newest
    assert post(client, account, text).status_code == 200
    detail = user_api.get(f"/api/v1/conversations/{conversation.pk}/").json()
    assert detail["referral_data"]["source_id"] == "ad-777" and unsafe.split(":")[0] + ":" not in str(detail)


def test_http_urls_still_reach_api_clients(client, account, agent):
    from inbox.models import Conversation
    from tests.inbox.helpers import api

    for name in ("inbound_image", "inbound_share_post", "inbound_text_referral"):
        post(client, account, fixture(name))
    conversation = Conversation.objects.get()
    messages = api(agent).get(f"/api/v1/conversations/{conversation.pk}/messages/").json()["results"]
    assert {m["media_url"] for m in messages} == {"", "https://cdn.example.com/photo.jpg"}
    assert {m["share_post_embed_url"] for m in messages} == {"", "https://www.tiktok.com/embed/v2/7301"}
    detail = api(agent).get(f"/api/v1/conversations/{conversation.pk}/").json()
    assert detail["referral_data"]["source_url"] == "https://www.tiktok.com/@shop/video/1"
    assert {"label": "Source URL", "value": "https://www.tiktok.com/@shop/video/1", "mono": False} in detail[
        "referral_facts"
    ]
