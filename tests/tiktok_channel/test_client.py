"""The Infobip client: exact request bodies (checked against the spec) and the classification of answers."""

import json
import uuid
from datetime import timedelta

import pytest
import requests
import responses
from django.utils import timezone

from inbox import outbox
from inbox.models import Contact, Conversation, Message
from tiktok_channel import client
from tiktok_channel.backend import InfobipBackend
from tiktok_channel.spec import request_validator, violations

pytestmark = pytest.mark.django_db
URL = "https://xyz.api.infobip.com/tiktok/1/messages"


def spec_violations(body: dict) -> list[dict]:
    return violations(request_validator("/tiktok/1/messages"), body)


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


def message(conversation, **fields) -> Message:
    """An unsaved outbound message: building the body needs no database row."""
    values = {
        "conversation": conversation,
        "direction": "out",
        "type": "text",
        "text": "Hi!",
        "channel": "tiktok",
        "provider_message_id": "ours-1",
        "status": "queued",
        "queued_at": timezone.now(),
        "sent_at": timezone.now(),
    }
    values.update(fields)
    return Message(**values)


def build(account, msg, validity=3600) -> dict:
    return client.message_request(msg, account=account, business_account_id="biz-1", validity=validity)


def envelope(account, content: dict, *, to="conv-1", validity=3600, callback_data=None) -> dict:
    webhooks = {
        "delivery": {"url": f"{account.webhook_url}delivery/", "notify": True},
        "seen": {"url": f"{account.webhook_url}seen/"},
    }
    if callback_data:
        webhooks["callbackData"] = callback_data
    return {
        "messages": [
            {
                "sender": "biz-1",
                "destinations": [{"to": to, "messageId": "ours-1"}],
                "content": content,
                "options": {"validityPeriod": {"amount": validity, "timeUnit": "SECONDS"}},
                "webhooks": webhooks,
            }
        ]
    }


@pytest.mark.parametrize(
    ("fields", "content"),
    [
        ({"type": "text", "text": "Hi!"}, {"type": "TEXT", "text": "Hi!"}),
        (
            {"type": "text", "text": "this one", "quoted_provider_message_id": "7199695882537746695"},
            {"type": "TEXT", "text": "this one", "replyToMessageId": "7199695882537746695"},
        ),
        (
            {"type": "image", "text": "", "media_url": "https://inbox.example.test/media/a.png"},
            {"type": "IMAGE", "mediaUrl": "https://inbox.example.test/media/a.png"},
        ),
        ({"type": "share_post", "text": "", "post_id": "id123456789"}, {"type": "SHARE_POST", "postId": "id123456789"}),
    ],
)
def test_request_body_per_content_type_matches_the_spec(account, conversation, fields, content):
    body = build(account, message(conversation, **fields))
    assert body == envelope(account, content)
    assert spec_violations(body) == []
    assert body["messages"][0]["webhooks"]["delivery"]["url"].startswith(
        f"https://inbox.example.test/webhooks/infobip/tiktok/{account.webhook_token}/"
    )


def test_callback_data_goes_with_the_webhooks(account, conversation):
    body = build(account, message(conversation, payload={"callback_data": "ticket=42"}))
    assert body == envelope(account, {"type": "TEXT", "text": "Hi!"}, callback_data="ticket=42")
    assert spec_violations(body) == []


def test_the_validator_is_discriminator_aware(account, conversation):
    """Control: the same checker refuses what the spec refuses, so the empty lists above mean something."""
    body = build(account, message(conversation))
    del body["messages"][0]["content"]["text"]
    assert any("text" in v["violation"] for v in spec_violations(body))
    body = build(account, message(conversation, text="x" * 6001))
    assert spec_violations(body) != []
    body = build(account, message(conversation, payload={"callback_data": "c" * 4001}))
    assert spec_violations(body) != []


def test_destination_falls_back_to_the_user_id(account, conversation):
    conversation.provider_conversation_id = ""
    assert build(account, message(conversation))["messages"][0]["destinations"] == [
        {"to": "user-1", "messageId": "ours-1"}
    ]


def test_validity_is_what_is_left_of_the_window(conversation):
    now = conversation.last_inbound_at + timedelta(hours=1)
    assert outbox.reply_window_seconds(conversation, now=now) == 47 * 3600
    assert outbox.reply_window_seconds(conversation, now=conversation.last_inbound_at + timedelta(hours=48)) == 0
    assert outbox.reply_window_seconds(conversation, now=conversation.last_inbound_at + timedelta(hours=50)) == 0


@responses.activate
def test_the_backend_cuts_validity_to_48_hours(conversation, settings):
    settings.REPLY_WINDOW_HOURS = 72  # Infobip cuts validity to 48 h anyway: never ask for more
    responses.post(URL, json={"messages": []})
    InfobipBackend().send(message(conversation), validity_seconds=72 * 3600)
    sent = json.loads(responses.calls[0].request.body)
    assert sent["messages"][0]["options"]["validityPeriod"] == {"amount": 48 * 3600, "timeUnit": "SECONDS"}


def accepted_body(status: dict, message_id="ours-1") -> dict:
    return {"bulkId": "bulk-1", "messages": [{"messageId": message_id, "status": status, "destination": "conv-1"}]}


PENDING = {"groupId": 1, "groupName": "PENDING", "id": 7, "name": "PENDING_ENROUTE", "description": "sent"}
DUPLICATE = {
    "groupId": 5,
    "groupName": "REJECTED",
    "id": 23,
    "name": "REJECTED_DUPLICATE_MESSAGE_ID",
    "description": "Message ID is already used",
}


@responses.activate
def test_sends_with_app_key_json_and_timeouts(account, settings):
    settings.INFOBIP_CONNECT_TIMEOUT, settings.INFOBIP_READ_TIMEOUT = 2.5, 9.0
    responses.post(URL, json=accepted_body(PENDING))
    result = client.send_messages(account, {"messages": []})
    assert result == client.SendResult("accepted", provider_message_id="ours-1", status=PENDING)
    call = responses.calls[0]
    assert call.request.headers["Authorization"] == f"App {account.api_key}"
    assert call.request.headers["Content-Type"] == "application/json"
    assert call.request.body == b'{"messages": []}'
    assert call.request.req_kwargs["timeout"] == (2.5, 9.0)


@responses.activate
def test_duplicate_message_id_means_accepted(account):
    responses.post(URL, json=accepted_body(DUPLICATE))
    result = client.send_messages(account, {"messages": []})
    assert (result.outcome, result.duplicate) == ("accepted", True)


@responses.activate
def test_other_rejection_in_a_200_is_permanent(account):
    status = {"groupId": 5, "groupName": "REJECTED", "id": 6, "name": "REJECTED_DESTINATION", "description": "bad"}
    responses.post(URL, json=accepted_body(status))
    result = client.send_messages(account, {"messages": []})
    assert result.outcome == "permanent"
    assert result.error == {"name": "REJECTED_DESTINATION", "description": "bad", "permanent": True}


@responses.activate
@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_are_permanent_with_description_and_violations(account, status):
    violations_ = [{"property": "messages[0].content.text", "violation": "must not be blank"}]
    responses.post(
        URL,
        status=status,
        json={
            "errorCode": f"E{status}",
            "description": "Request cannot be processed.",
            "action": "Check the syntax, violations and adjust the request.",
            "violations": violations_,
            "resources": [],
        },
    )
    result = client.send_messages(account, {"messages": []})
    assert result.outcome == "permanent"
    assert result.error == {
        "name": f"E{status}",
        "description": "Request cannot be processed.",
        "permanent": True,
        "http_status": status,
        "action": "Check the syntax, violations and adjust the request.",
        "violations": violations_,
    }


@responses.activate
def test_legacy_error_shape_is_understood(account):
    responses.post(
        URL, status=401, json={"requestError": {"serviceException": {"messageId": "UNAUTHORIZED", "text": "Invalid"}}}
    )
    result = client.send_messages(account, {"messages": []})
    assert (result.outcome, result.error["name"], result.error["description"]) == (
        "permanent",
        "UNAUTHORIZED",
        "Invalid",
    )


@responses.activate
@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_server_errors_are_retryable(account, status):
    responses.post(URL, status=status, body="<html>oops</html>")
    result = client.send_messages(account, {"messages": []})
    assert (result.outcome, result.error["name"], result.error["http_status"]) == (
        "retryable",
        f"HTTP_{status}",
        status,
    )
    assert result.error["permanent"] is False


@responses.activate
def test_429_is_retryable_with_retry_after(account):
    responses.post(
        URL,
        status=429,
        json={"errorCode": "E429", "description": "Too many requests sent."},
        headers={"Retry-After": "17"},
    )
    result = client.send_messages(account, {"messages": []})
    assert (result.outcome, result.retry_after, result.error["name"]) == ("retryable", 17.0, "E429")


def test_retry_after_as_http_date():
    later = timezone.now() + timedelta(seconds=120)
    value = later.strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 100 < client.retry_after_seconds(value) <= 120
    assert client.retry_after_seconds("nonsense") is None
    assert client.retry_after_seconds(None) is None
    assert client.retry_after_seconds("-5") == 0.0


@responses.activate
@pytest.mark.parametrize(
    ("exc", "name"),
    [
        (requests.ReadTimeout("read timed out"), "TIMEOUT"),
        (requests.ConnectTimeout("connect timed out"), "TIMEOUT"),
        (requests.ConnectionError("refused"), "CONNECTION_ERROR"),
    ],
)
def test_network_trouble_is_retryable(account, exc, name):
    responses.post(URL, body=exc)
    result = client.send_messages(account, {"messages": []})
    assert (result.outcome, result.error["name"], result.error["permanent"]) == ("retryable", name, False)


def test_one_session_per_account(make_account):
    first, second = make_account(), make_account()
    assert client.session_for(first) is client.session_for(first)
    assert client.session_for(first) is not client.session_for(second)


def test_message_ids_are_unique_per_attempt():
    from inbox.services import new_provider_message_id

    ids = {new_provider_message_id() for _ in range(100)}
    assert len(ids) == 100 and all(len(i) <= 200 and uuid.UUID(i) for i in ids)
