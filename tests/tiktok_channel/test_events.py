"""Typing indicators and read receipts (`POST /tiktok/1/events`): exact bodies checked against the spec, and
the best-effort task (short timeouts, at most one retry, failures only logged). Tasks run eagerly."""

import json
import logging
from datetime import timedelta

import pytest
import requests
import responses
from django.utils import timezone

from inbox import outbox, providers
from inbox.models import Contact, Conversation
from inbox.tasks import send_event
from tiktok_channel import client
from tiktok_channel.models import TikTokSender
from tiktok_channel.spec import request_validator, violations

pytestmark = pytest.mark.django_db
URL = "https://xyz.api.infobip.com/tiktok/1/events"
OK = {
    "bulkId": "b-1",
    "messages": [{"messageId": "e-1", "status": {"groupId": 1, "groupName": "PENDING", "id": 26}}],
}


@pytest.fixture
def conversation(account, inbox):
    contact = Contact.objects.create(channel="tiktok", endpoint_id="biz-1", channel_user_id="user-1")
    return Conversation.objects.create(
        provider="infobip",
        inbox=inbox,
        contact=contact,
        provider_conversation_id="conv-1",
        last_activity_at=timezone.now(),
        last_inbound_at=timezone.now() - timedelta(hours=1),
    )


def run(conversation, kind):
    return send_event.apply(args=[conversation.pk, kind]).result


def bodies() -> list[dict]:
    return [json.loads(call.request.body) for call in responses.calls]


@pytest.mark.parametrize(("kind", "content_type"), [("typing", "TYPING_INDICATOR"), ("read", "MARK_AS_READ")])
def test_event_body_matches_the_spec(conversation, kind, content_type):
    body = client.event_request(conversation, business_account_id="biz-1", kind=kind)
    assert body == {
        "events": [{"sender": "biz-1", "destinations": [{"to": "conv-1"}], "content": {"type": content_type}}]
    }
    assert violations(request_validator("/tiktok/1/events"), body) == []


def test_the_spec_validator_would_catch_a_wrong_event_type(conversation):
    body = client.event_request(conversation, business_account_id="biz-1", kind="typing")
    body["events"][0]["content"]["type"] = "TYPING"
    assert violations(request_validator("/tiktok/1/events"), body) != []


def test_destination_falls_back_to_the_user_id(conversation):
    conversation.provider_conversation_id = ""
    body = client.event_request(conversation, business_account_id="biz-1", kind="read")
    assert body["events"][0]["destinations"] == [{"to": "user-1"}]


@responses.activate
@pytest.mark.parametrize(("kind", "content_type"), [("typing", "TYPING_INDICATOR"), ("read", "MARK_AS_READ")])
def test_task_sends_one_event_with_the_account_key_and_short_timeouts(conversation, account, kind, content_type):
    responses.post(URL, json=OK)
    assert run(conversation, kind) == "sent"

    (call,) = responses.calls
    assert call.request.headers["Authorization"] == f"App {account.api_key}"
    (body,) = bodies()
    assert body["events"][0]["content"] == {"type": content_type}
    assert body["events"][0]["sender"] == "biz-1"
    assert violations(request_validator("/tiktok/1/events"), body) == []
    assert call.request.req_kwargs["timeout"] == client.EVENT_TIMEOUT


@responses.activate
def test_read_receipt_retries_a_503_once_then_succeeds(conversation):
    responses.post(URL, status=503, json={"errorCode": "E500", "description": "Something went wrong."})
    responses.post(URL, json=OK)
    assert run(conversation, "read") == "sent"
    assert len(responses.calls) == 2


@responses.activate
def test_read_receipt_gives_up_after_one_retry_and_only_logs(conversation, caplog):
    responses.post(URL, status=503, json={"errorCode": "E500", "description": "Something went wrong."})
    with caplog.at_level(logging.WARNING, logger="inbox.tasks"):
        assert run(conversation, "read") == "failed"
    assert len(responses.calls) == 2
    assert "Something went wrong." in caplog.text


@responses.activate
def test_typing_indicator_is_never_retried(conversation):
    responses.post(URL, body=requests.ConnectionError("refused"))
    assert run(conversation, "typing") == "failed"
    assert len(responses.calls) == 1


@responses.activate
def test_permanent_error_is_logged_not_raised(conversation, caplog):
    responses.post(URL, status=400, json={"errorCode": "E400", "description": "Invalid destination."})
    with caplog.at_level(logging.WARNING, logger="inbox.tasks"):
        assert run(conversation, "read") == "failed"
    assert len(responses.calls) == 1
    assert "Invalid destination." in caplog.text


@responses.activate
def test_nothing_is_sent_when_the_window_closed(conversation):
    Conversation.objects.filter(pk=conversation.pk).update(last_inbound_at=timezone.now() - timedelta(hours=49))
    assert run(conversation, "typing") == "window_closed"
    assert len(responses.calls) == 0


@responses.activate
def test_nothing_is_sent_without_an_active_sender(conversation):
    TikTokSender.objects.filter(business_account_id="biz-1").update(active=False)
    assert run(conversation, "read") == "skipped"
    assert len(responses.calls) == 0


def test_the_backend_declares_events_which_are_enqueued_with_an_expiry(monkeypatch, conversation):
    capabilities = providers.get("infobip").capabilities
    assert capabilities.typing_events and capabilities.read_receipts
    calls = []
    monkeypatch.setattr(send_event, "apply_async", lambda **kwargs: calls.append(kwargs))
    outbox.enqueue_event(conversation, providers.EVENT_TYPING)
    assert calls == [{"args": [conversation.pk, "typing"], "expires": outbox.EVENT_EXPIRES_SECONDS}]


def test_a_broker_failure_while_enqueuing_is_swallowed(monkeypatch, conversation, caplog):
    def down(**kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(send_event, "apply_async", down)
    with caplog.at_level(logging.WARNING, logger="inbox.outbox"):
        outbox.enqueue_event(conversation, providers.EVENT_READ)
    assert "could not enqueue the read event" in caplog.text
