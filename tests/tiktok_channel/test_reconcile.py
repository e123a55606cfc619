"""Reconciliation: messages that stayed *accepted* are settled from Infobip's message logs (lost reports)."""

import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.utils import timezone

from config.celery import app as celery_app
from inbox import outbox
from inbox.models import AuditLog, Contact, Conversation, Message
from tiktok_channel import client

pytestmark = pytest.mark.django_db
LOGS_URL = "https://xyz.api.infobip.com/tiktok/1/logs"
DELIVERED = {"groupId": 3, "groupName": "DELIVERED", "id": 5, "name": "DELIVERED_TO_HANDSET", "description": "ok"}
PENDING = {"groupId": 1, "groupName": "PENDING", "id": 7, "name": "PENDING_ENROUTE", "description": "sent"}
EXPIRED = {"groupId": 4, "groupName": "EXPIRED", "id": 15, "name": "EXPIRED_EXPIRED", "description": "expired"}


def conversation_for(inbox, endpoint_id: str, user: str = "user-1") -> Conversation:
    contact = Contact.objects.create(channel="tiktok", endpoint_id=endpoint_id, channel_user_id=user)
    return Conversation.objects.create(
        provider="infobip",
        inbox=inbox,
        contact=contact,
        provider_conversation_id=user,
        last_activity_at=timezone.now(),
        last_inbound_at=timezone.now() - timedelta(hours=1),
    )


def sent(conversation: Conversation, provider_id: str, *, accepted_ago: timedelta) -> Message:
    at = timezone.now() - accepted_ago
    return Message.objects.create(
        conversation=conversation,
        channel="tiktok",
        direction=Message.Direction.OUT,
        type=Message.Type.TEXT,
        text="hello",
        status=Message.Status.ACCEPTED,
        provider_message_id=provider_id,
        sent_at=at,
        queued_at=at,
        accepted_at=at,
    )


def log_entry(message_id: str, status: dict, *, to: str = "user-1", sender: str = "biz-1", error=None) -> dict:
    return {
        "sender": sender,
        "destination": to,
        "messageId": message_id,
        "sentAt": "2026-11-30T08:00:00.000+0000",
        "doneAt": "2026-11-30T08:00:05.000+0000",
        "status": status,
        "error": error or {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR", "permanent": False},
    }


@pytest.fixture
def conversation(account, inbox):
    return conversation_for(inbox, "biz-1")


@responses.activate
def test_a_message_stuck_in_accepted_is_settled_from_the_logs_once(conversation):
    stuck = sent(conversation, "out-1", accepted_ago=timedelta(hours=1))
    fresh = sent(conversation, "out-2", accepted_ago=timedelta(minutes=1))
    responses.get(LOGS_URL, json={"results": [log_entry("out-1", DELIVERED)]})

    assert outbox.reconcile_accepted() == 1

    (call,) = responses.calls
    query = parse_qs(urlsplit(call.request.url).query)
    assert query["messageId"] == ["out-1"]  # the fresh one is not asked about yet
    assert call.request.headers["Authorization"].startswith("App api-key-")
    stuck.refresh_from_db()
    fresh.refresh_from_db()
    assert stuck.status == Message.Status.DELIVERED and stuck.delivered_at is not None
    assert fresh.status == Message.Status.ACCEPTED
    assert AuditLog.objects.filter(message=stuck, action="message.status").count() == 1
    # Settled: the next run has nothing to ask about that message.
    assert outbox.reconcile_accepted() == 0
    assert len(responses.calls) == 1


@responses.activate
def test_a_final_failure_in_the_logs_fails_the_message_with_its_reason(conversation):
    stuck = sent(conversation, "out-3", accepted_ago=timedelta(hours=2))
    error = {"groupId": 1, "groupName": "HANDSET_ERRORS", "id": 27, "name": "EC_ABSENT_SUBSCRIBER", "permanent": False}
    responses.get(LOGS_URL, json={"results": [log_entry("out-3", EXPIRED, error=error)]})

    assert outbox.reconcile_accepted() == 1

    stuck.refresh_from_db()
    assert stuck.status == Message.Status.FAILED and stuck.error["name"] == "EC_ABSENT_SUBSCRIBER"


@responses.activate
def test_still_pending_or_unanswered_changes_nothing_and_is_asked_again(conversation):
    stuck = sent(conversation, "out-4", accepted_ago=timedelta(hours=1))
    responses.get(LOGS_URL, json={"results": [log_entry("out-4", PENDING)]})
    responses.get(LOGS_URL, status=429, json={"requestError": {"serviceException": {"messageId": "TOO_MANY"}}})

    assert outbox.reconcile_accepted() == 0
    assert outbox.reconcile_accepted() == 0  # 429: nothing read, nothing raised

    assert len(responses.calls) == 2
    stuck.refresh_from_db()
    assert stuck.status == Message.Status.ACCEPTED


@responses.activate
def test_messages_older_than_the_logs_window_are_not_asked_about(conversation):
    sent(conversation, "out-5", accepted_ago=timedelta(hours=49))
    assert outbox.reconcile_accepted() == 0
    assert len(responses.calls) == 0  # any call would fail: no response is registered


@responses.activate
def test_an_entry_for_another_accounts_message_is_not_applied(make_account, inbox, conversation, account):
    other = make_account(sender_id="biz-other")
    theirs = sent(conversation_for(inbox, "biz-other", user="user-2"), "theirs-1", accepted_ago=timedelta(hours=1))
    ours = sent(conversation, "ours-1", accepted_ago=timedelta(hours=1))
    # Each account is asked about its own messages; the other account's answer also claims ours.
    answers = {
        other.api_key: [log_entry("theirs-1", DELIVERED, sender="biz-other"), log_entry("ours-1", DELIVERED)],
        account.api_key: [],
    }

    def logs(request):
        key = request.headers["Authorization"].removeprefix("App ")
        return 200, {}, json.dumps({"results": answers[key]})

    responses.add_callback(responses.GET, LOGS_URL, callback=logs)

    assert outbox.reconcile_accepted() == 1

    ours.refresh_from_db()
    theirs.refresh_from_db()
    assert theirs.status == Message.Status.DELIVERED
    assert ours.status == Message.Status.ACCEPTED
    assert len(responses.calls) == 2


@responses.activate
def test_an_answer_arriving_after_the_message_moved_on_does_not_move_it_back(conversation):
    stuck = sent(conversation, "out-6", accepted_ago=timedelta(hours=1))

    def logs(request):
        # While Infobip is being asked, the seen report comes in through the webhook.
        Message.objects.filter(pk=stuck.pk).update(status=Message.Status.SEEN, seen_at=timezone.now())
        return 200, {}, json.dumps({"results": [log_entry("out-6", DELIVERED)]})

    responses.add_callback(responses.GET, LOGS_URL, callback=logs)

    assert outbox.reconcile_accepted() == 0

    stuck.refresh_from_db()
    assert stuck.status == Message.Status.SEEN  # forward-only: delivered is below seen
    assert stuck.delivered_at is not None  # the delivery time is still recorded


def test_ids_are_asked_in_chunks_that_fit_the_parameter():
    ids = [f"{n:0100d}" for n in range(45)]  # 45 × 101 characters with commas
    chunks = client._id_chunks(ids)
    assert [len(",".join(chunk)) <= client.LOGS_MESSAGE_IDS_MAX_CHARS for chunk in chunks] == [True] * len(chunks)
    assert [i for chunk in chunks for i in chunk] == ids and len(chunks) == 3


def test_the_beat_schedule_runs_reconciliation():
    entry = celery_app.conf.beat_schedule["outbox-reconcile-accepted-messages"]
    assert entry["task"] == "inbox.tasks.reconcile_accepted_messages"
