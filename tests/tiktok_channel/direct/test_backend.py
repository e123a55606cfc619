"""Sending through the core's outbox with the direct backend: the wire bodies, image upload then send, quotes, and
TikTok's answers classified (throttled, invalid token → refresh then retry, permanent → failed with the reason)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import responses
from django.utils import timezone

from inbox import providers
from inbox.models import Message
from inbox.services import message_receive, reply_queue
from inbox.tasks import send_message
from tiktok_channel.direct.models import TikTokConnection

from .conftest import BUSINESS_ID, REFRESH_URL, SEND_URL, UPLOAD_URL, envelope, token_answer

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


def run(message: Message):
    return send_message.apply(args=[message.pk])


def sent(url: str = SEND_URL) -> list[responses.Call]:
    return [call for call in responses.calls if call.request.url.startswith(url)]


@pytest.fixture
def countdowns(monkeypatch):
    asked: list[float] = []
    original = send_message.retry

    def recording(*args, **kwargs):
        asked.append(kwargs["countdown"])
        raise RuntimeError("retry asked")  # stop here: the test looks at the countdown

    monkeypatch.setattr(send_message, "retry", recording)
    del original
    return asked


def test_the_backend_is_registered_beside_infobip():
    assert providers.get("tiktok_direct") is not None and providers.get("infobip") is not None
    assert providers.get("tiktok_direct").channel == providers.get("infobip").channel == "tiktok"


@responses.activate
def test_text_is_sent_with_the_access_token_header(conversation, agent):
    responses.post(SEND_URL, json=envelope({"message": {"message_id": "7312"}}))
    reply = reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="Yes, still in stock.")
    assert run(reply).result == "accepted"

    (call,) = sent()
    assert call.request.headers["Access-Token"] == "act.1"
    assert "Authorization" not in call.request.headers
    assert json.loads(call.request.body) == {
        "business_id": BUSINESS_ID,
        "recipient_type": "CONVERSATION",
        "recipient": "tt-conv-1",
        "message_type": "TEXT",
        "text": {"body": "Yes, still in stock."},
    }
    reply.refresh_from_db()
    assert reply.status == "accepted" and reply.provider_status["messageId"] == "7312"


@responses.activate
def test_a_quote_names_the_customer_s_message(conversation, agent):
    from inbox.events import InboundMessage

    quoted, _ = message_receive(
        inbox_id=conversation.inbox_id,
        event=InboundMessage(
            channel="tiktok",
            endpoint_id=BUSINESS_ID,
            channel_user_id="user-1",
            provider_message_id="tt-msg-5",
            provider_conversation_id="tt-conv-1",
            sent_at=timezone.now(),
            type="text",
            text="Is it in stock?",
            provider="tiktok_direct",
        ),
    )
    responses.post(SEND_URL, json=envelope({"message": {"message_id": "7313"}}))
    reply = reply_queue(
        conversation_id=conversation.pk, author=agent, type="text", text="Yes", quoted_message_id=quoted.pk
    )
    run(reply)
    body = json.loads(sent()[0].request.body)
    assert body["referenced_message_info"] == {"referenced_message_id": "tt-msg-5"}


@responses.activate
def test_an_image_is_uploaded_then_sent(conversation, agent, settings):
    settings.PUBLIC_BASE_URL = "https://inbox.example.test"
    responses.get("https://cdn.example.test/cat.png", body=PNG, content_type="image/png")
    responses.post(UPLOAD_URL, json=envelope({"media_id": "media-77"}))
    responses.post(SEND_URL, json=envelope({"message": {"message_id": "7314"}}))
    reply = reply_queue(
        conversation_id=conversation.pk, author=agent, type="image", media_url="https://cdn.example.test/cat.png"
    )
    assert run(reply).result == "accepted"

    (upload,) = sent(UPLOAD_URL)
    assert upload.request.headers["Access-Token"] == "act.1"
    assert b'name="media_type"' in upload.request.body and b"IMAGE" in upload.request.body
    assert PNG in upload.request.body
    body = json.loads(sent()[0].request.body)
    assert body["message_type"] == "IMAGE" and body["image"] == {"media_id": "media-77"} and "text" not in body


@responses.activate
def test_throttled_is_retried_after_tiktok_s_wait(conversation, agent, countdowns, settings):
    settings.TIKTOK_DIRECT_THROTTLE_WAIT_SECONDS = 90
    settings.OUTBOX_RETRY_MAX_DELAY_SECONDS = 300
    responses.post(SEND_URL, json=envelope(code=40100, message="Too many requests"))
    reply = reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="hi")
    with pytest.raises(RuntimeError):
        run(reply).get()
    assert len(countdowns) == 1 and countdowns[0] >= 90
    reply.refresh_from_db()
    assert reply.status == "queued"


@responses.activate
def test_a_permanent_refusal_fails_the_reply_with_the_reason(conversation, agent):
    responses.post(SEND_URL, json=envelope(code=40064, message="blocked by messaging rules"))
    reply = reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="hi")
    assert run(reply).result == "failed"
    reply.refresh_from_db()
    assert reply.status == "failed"
    assert reply.error["name"] == "TIKTOK_40064" and "reply window" in reply.error["description"]
    assert reply.error["permanent"] is True


@responses.activate
def test_an_invalid_token_refreshes_once_and_retries(conversation, agent, connection):
    responses.post(SEND_URL, json=envelope(code=40105, message="invalid access token"))
    responses.post(REFRESH_URL, json=token_answer(access="act.2", refresh="rft.2"))
    responses.post(SEND_URL, json=envelope({"message": {"message_id": "7315"}}))
    reply = reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="hi")
    assert run(reply).result == "accepted"

    tokens_used = [call.request.headers["Access-Token"] for call in sent()]
    assert tokens_used == ["act.1", "act.2"]
    refresh_body = json.loads(sent(REFRESH_URL)[0].request.body)
    assert refresh_body == {
        "client_id": "app-key-1",
        "client_secret": "app-secret-0123456789",
        "grant_type": "refresh_token",
        "refresh_token": "rft.1",
    }
    connection.refresh_from_db()
    assert (connection.access_token, connection.refresh_token) == ("act.2", "rft.2")
    assert connection.access_token_expires_at - timezone.now() > timedelta(hours=23)


@responses.activate
def test_an_access_token_expired_by_our_clock_is_refreshed_before_the_call(conversation, agent, connection):
    TikTokConnection.objects.filter(pk=connection.pk).update(access_token_expires_at=timezone.now())
    responses.post(REFRESH_URL, json=token_answer(access="act.3", refresh="rft.3"))
    responses.post(SEND_URL, json=envelope({"message": {"message_id": "7316"}}))
    reply = reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="hi")
    assert run(reply).result == "accepted"
    assert [call.request.headers["Access-Token"] for call in sent()] == ["act.3"]


@responses.activate
def test_typing_and_read_are_sender_actions(conversation):
    responses.post(SEND_URL, json=envelope({"message": {"message_id": ""}}))
    backend = providers.get("tiktok_direct")
    assert backend.send_event(conversation, providers.EVENT_TYPING).outcome == providers.ACCEPTED
    assert backend.send_event(conversation, providers.EVENT_READ).outcome == providers.ACCEPTED
    actions = [json.loads(call.request.body)["sender_action"] for call in sent()]
    assert actions == ["TYPING", "MARK_READ"]


@responses.activate
def test_a_disconnected_account_fails_replies_without_calling_tiktok(conversation, agent, connection):
    reply = reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="hi")
    TikTokConnection.objects.filter(pk=connection.pk).update(state="disconnected")
    assert run(reply).result == "failed"
    reply.refresh_from_db()
    assert reply.error["name"] == "CONNECTION_UNAVAILABLE"
    assert len(responses.calls) == 0


@responses.activate
def test_an_account_waiting_for_reauthorization_holds_replies_without_calling_tiktok(conversation, agent, connection):
    reply = reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="hi")
    TikTokConnection.objects.filter(pk=connection.pk).update(state="reauthorization_needed")
    assert run(reply).result == "held"
    reply.refresh_from_db()
    assert reply.status == "queued"
    assert len(responses.calls) == 0


@responses.activate
def test_a_missing_permission_on_send_needs_reauthorization_and_holds(conversation, agent, connection):
    responses.post(SEND_URL, json=envelope(code=40001, message="no permission"))
    reply = reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="hi")
    assert run(reply).result == "held"
    connection.refresh_from_db()
    assert connection.state == "reauthorization_needed" and "40001" in connection.last_error


@responses.activate
def test_tiktok_down_during_the_token_refresh_retries_later(conversation, agent, connection, countdowns):
    responses.post(SEND_URL, json=envelope(code=40105, message="invalid access token"))
    responses.post(REFRESH_URL, status=502)
    reply = reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="hi")
    with pytest.raises(RuntimeError):
        run(reply).get()
    assert len(countdowns) == 1
    connection.refresh_from_db()
    assert connection.state == "connected" and connection.refresh_token == "rft.1"
