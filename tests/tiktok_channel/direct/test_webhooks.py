"""TikTok's own webhook: the signature and replay window first, nothing stored on refusal; then each event kind
through the shared ledger and the core's write paths."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from inbox.models import Conversation, Message, WebhookEvent
from inbox.services import reply_queue
from tiktok_channel.direct.models import DIRECT_PROVIDER

from .conftest import BUSINESS_ID, post_webhook, received, webhook_body

pytestmark = pytest.mark.django_db


def test_a_text_message_is_stored_in_the_ledger_and_the_inbox(client, app, connection, inbox):
    response = post_webhook(client, app, webhook_body("im_receive_msg", received()))

    assert response.status_code == 200, response.content
    assert response.json()["inbound"] == 1
    event = WebhookEvent.objects.get()
    assert (event.provider, event.connection_id, event.verdict) == (DIRECT_PROVIDER, app.pk, "processed")
    assert "tiktok-signature" not in {name.lower() for name in event.headers}
    message = Message.objects.get()
    assert (message.direction, message.type, message.text) == ("in", "text", "Hello from TikTok")
    assert (message.endpoint_id, message.provider_message_id) == (BUSINESS_ID, "tt-msg-1")
    conversation = message.conversation
    assert (conversation.inbox, conversation.provider, conversation.provider_conversation_id) == (
        inbox,
        DIRECT_PROVIDER,
        "tt-conv-1",
    )
    assert conversation.contact.channel_user_id == "user-1"
    assert timezone.now() - conversation.last_inbound_at < timedelta(seconds=10)  # the reply window opened


def test_image_share_post_quote_and_other_types(client, app, connection):
    bodies = [
        received("m-img", type="image", image={"media_id": "media-1"}),
        received("m-post", type="share_post", share_post={"embed_url": "https://www.tiktok.com/embed/123"}),
        received("m-quote", referenced_message_info={"referenced_message_id": "m-img"}),
        received("m-sticker", type="sticker", sticker={"id": "s-1"}),
    ]
    for content in bodies:
        assert post_webhook(client, app, webhook_body("im_receive_msg", content)).status_code == 200

    by_id = {m.provider_message_id: m for m in Message.objects.all()}
    assert by_id["m-img"].type == "image" and by_id["m-img"].payload["image"] == {"media_id": "media-1"}
    assert (by_id["m-post"].type, by_id["m-post"].embed_url) == ("share_post", "https://www.tiktok.com/embed/123")
    assert by_id["m-quote"].quoted_provider_message_id == "m-img"
    assert by_id["m-sticker"].type == "unsupported" and by_id["m-sticker"].payload["type"] == "sticker"
    sticker_row = WebhookEvent.objects.get(body__contains="m-sticker")
    assert sticker_row.verdict == "partial" and "sticker" in sticker_row.problems[0]["reason"]


def test_a_redelivery_is_stored_once(client, app, connection):
    body = webhook_body("im_receive_msg", received())
    post_webhook(client, app, body)
    response = post_webhook(client, app, body)
    assert response.json()["duplicate"] == 1
    assert Message.objects.count() == 1


def test_forged_signature_is_refused_and_nothing_stored(client, app, connection):
    response = post_webhook(client, app, webhook_body("im_receive_msg", received()), secret="not-the-secret")
    assert response.status_code == 401
    assert response.json() == {"code": "unauthenticated", "message": "signature does not match the body"}
    assert WebhookEvent.objects.count() == 0 and Message.objects.count() == 0


def test_a_tampered_body_is_refused(client, app, connection):
    body = webhook_body("im_receive_msg", received())
    from tiktok_channel.direct.webhooks import sign

    header = sign("app-secret-0123456789", body, int(time.time()))
    tampered = body.replace(b"Hello", b"Hallo")
    response = post_webhook(client, app, tampered, header=header)
    assert response.status_code == 401
    assert WebhookEvent.objects.count() == 0


def test_a_replayed_old_request_is_refused(client, app, connection, settings):
    settings.TIKTOK_DIRECT_WEBHOOK_MAX_AGE_SECONDS = 60
    body = webhook_body("im_receive_msg", received())
    response = post_webhook(client, app, body, timestamp=int(time.time()) - 120)
    assert response.status_code == 401
    assert "replay window" in response.json()["message"]
    assert WebhookEvent.objects.count() == 0 and Message.objects.count() == 0
    # The same request inside the window is taken.
    assert post_webhook(client, app, body, timestamp=int(time.time()) - 30).status_code == 200


@pytest.mark.parametrize(
    ("header", "reason"),
    [(False, "missing TikTok-Signature header"), ("s=abc", "malformed TikTok-Signature header")],
)
def test_missing_or_malformed_signature_header(client, app, connection, header, reason):
    response = post_webhook(client, app, webhook_body("im_receive_msg", received()), header=header)
    assert response.status_code == 401
    assert response.json()["message"].startswith(reason)
    assert WebhookEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "body is not valid JSON"),
        (b"[1, 2]", "body must be a JSON object"),
        (json.dumps({"event": "im_receive_msg", "user_openid": BUSINESS_ID, "content": "{oops"}).encode(), "'content'"),
        (webhook_body("im_receive_msg", {**received(), "message_id": {"x": 1}}), "content.message_id"),
        (webhook_body("im_mark_read_msg", {"conversation_id": "c", "read": {}}), "last_read_timestamp"),
    ],
)
def test_malformed_signed_bodies_get_400_and_nothing_stored(client, app, connection, body, reason):
    response = post_webhook(client, app, body)
    assert response.status_code == 400
    assert response.json()["code"] == "bad_payload" and reason in response.json()["message"]
    assert WebhookEvent.objects.count() == 0


def test_unknown_webhook_token_is_404(client, app):
    response = client.post("/webhooks/tiktok/nope/", data=b"{}", content_type="application/json")
    assert response.status_code == 404


def test_an_account_not_connected_to_this_app_is_kept_not_applied(client, app, connection):
    response = post_webhook(client, app, webhook_body("im_receive_msg", received(), business_id="someone-else"))
    assert response.status_code == 200
    assert response.json()["ignored_unknown_account"] == 1
    assert Message.objects.count() == 0
    assert WebhookEvent.objects.get().verdict == "processed"


def test_an_unknown_event_is_kept_with_its_reason(client, app, connection):
    response = post_webhook(client, app, webhook_body("im_referral_msg", {"conversation_id": "tt-conv-1"}))
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.verdict == "partial" and "im_referral_msg" in event.problems[0]["reason"]


def test_the_business_s_message_from_the_tiktok_app_is_an_outbound_message_sent_outside(
    client, app, connection, conversation, agent
):
    content = {
        **received("tt-app-1"),
        "from_user": {"id": BUSINESS_ID, "role": "business_account"},
        "to_user": {"id": "user-1", "role": "personal_account"},
        "text": {"body": "Answered from my phone"},
        "message_tag": {"source": "APP"},
    }
    before = Conversation.objects.get(pk=conversation.pk).last_inbound_at
    response = post_webhook(client, app, webhook_body("im_send_msg", content))
    assert response.json()["sent_outside"] == 1

    message = Message.objects.get(provider_message_id="tt-app-1")
    assert (message.direction, message.status, message.conversation_id) == ("out", "accepted", conversation.pk)
    assert message.queued_at is None and message.author is None
    assert Conversation.objects.get(pk=conversation.pk).last_inbound_at == before  # no reply window from it
    client.force_login(agent)
    thread = client.get(f"/api/v1/conversations/{conversation.pk}/messages/").json()
    shown = next(m for m in thread["results"] if m["id"] == message.pk)
    assert shown["sent_outside_inbox"] is True and shown["text"] == "Answered from my phone"


def test_the_echo_of_our_own_reply_is_not_stored_twice(client, app, connection, conversation, agent):
    reply = reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="Hi!")
    Message.objects.filter(pk=reply.pk).update(status="accepted", provider_status={"messageId": "tt-out-9"})
    echo = {
        **received("tt-out-9"),
        "from_user": {"id": BUSINESS_ID},
        "to_user": {"id": "user-1"},
        "message_tag": {"source": "API"},
    }
    response = post_webhook(client, app, webhook_body("im_send_msg", echo))
    assert response.json()["echo_of_ours"] == 1
    assert Message.objects.filter(direction="out").count() == 1


def test_an_api_echo_that_beats_our_send_answer_is_not_stored(client, app, connection, conversation, agent):
    reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="Hi!")  # still queued
    echo = {**received("tt-out-10"), "from_user": {"id": BUSINESS_ID}, "to_user": {"id": "user-1"}}
    echo["message_tag"] = {"source": "API"}
    response = post_webhook(client, app, webhook_body("im_send_msg", echo))
    assert response.json()["echo_in_flight"] == 1
    assert Message.objects.filter(direction="out").count() == 1


@pytest.mark.parametrize("reader", [{"from_user": {"id": "user-1"}}, {}], ids=["by-user", "by-conversation-id"])
def test_a_read_event_makes_our_earlier_replies_seen(client, app, connection, conversation, agent, reader):
    first = reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="one")
    second = reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="two")
    Message.objects.filter(pk__in=[first.pk, second.pk]).update(status="accepted")
    Message.objects.filter(pk=second.pk).update(sent_at=timezone.now() + timedelta(minutes=5))  # after the read
    read_at = int(time.time() * 1000)
    body = webhook_body(
        "im_mark_read_msg",
        {"conversation_id": "tt-conv-1", "read": {"last_read_timestamp": read_at}, **reader},
    )
    response = post_webhook(client, app, body)
    assert response.status_code == 200 and response.json()["read_applied"] == 1
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == "seen" and first.seen_at is not None
    assert second.status == "accepted"


def test_one_bad_event_in_a_processor_batch_does_not_drop_the_good_ones(app, connection, settings):
    from inbox.processor import drain

    settings.WEBHOOK_PROCESSING = "deferred"
    good = webhook_body("im_receive_msg", received("good-1")).decode()
    now = timezone.now()
    common = {"provider": DIRECT_PROVIDER, "connection_id": app.pk, "path_kind": "im_receive_msg", "received_at": now}
    WebhookEvent.objects.create(**common, headers={}, body="{broken", verdict="pending", result_count=1)
    WebhookEvent.objects.create(**common, headers={}, body=good, verdict="pending", result_count=1)
    assert drain() == 2
    verdicts = dict(WebhookEvent.objects.values_list("body", "verdict"))
    assert verdicts["{broken"] == "rejected" and verdicts[good] == "processed"
    assert Message.objects.filter(provider_message_id="good-1").exists()


def test_deferred_webhooks_are_stored_pending_then_applied_by_the_processor(client, app, connection, settings):
    from inbox.processor import drain

    settings.WEBHOOK_PROCESSING = "deferred"
    response = post_webhook(client, app, webhook_body("im_receive_msg", received()))
    assert response.json() == {"status": "accepted"}
    assert WebhookEvent.objects.get().verdict == "pending" and Message.objects.count() == 0
    drain()
    assert WebhookEvent.objects.get().verdict == "processed" and Message.objects.count() == 1


def test_get_is_405_and_an_oversized_body_413(client, app, settings):
    url = f"/webhooks/tiktok/{app.webhook_path_token}/"
    assert client.get(url).status_code == 405
    settings.WEBHOOK_MAX_BODY_BYTES = 10
    response = client.post(url, data=b"{" + b" " * 20 + b"}", content_type="application/json")
    assert response.status_code == 413
    assert WebhookEvent.objects.count() == 0


def test_messages_keep_arriving_while_the_account_waits_for_reauthorization(client, app, connection):
    connection.state = "reauthorization_needed"
    connection.save()
    response = post_webhook(client, app, webhook_body("im_receive_msg", received()))
    assert response.json()["inbound"] == 1


def test_a_disconnected_account_s_messages_are_kept_not_applied(client, app, connection):
    connection.state = "disconnected"
    connection.save()
    response = post_webhook(client, app, webhook_body("im_receive_msg", received()))
    assert response.json()["ignored_unknown_account"] == 1 and Message.objects.count() == 0
