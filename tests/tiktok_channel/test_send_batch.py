"""Batched sends (issue 20): the outbox hands Infobip's backend the ready replies of one sender — the oldest
queued reply of each conversation — in one `POST /tiktok/1/messages`; each message gets its own fate from the
answer, and the answers are applied in a fixed number of statements. Run eagerly, as `test_send_task.py`."""

import json
from datetime import timedelta

import pytest
import requests
import responses
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inbox import outbox
from inbox.models import AuditLog, Contact, Conversation, Message
from inbox.services import reply_queue
from inbox.tasks import send_message
from tiktok_channel.spec import request_validator, violations

pytestmark = pytest.mark.django_db
URL = "https://xyz.api.infobip.com/tiktok/1/messages"
PENDING = {"groupId": 1, "groupName": "PENDING", "id": 26, "name": "PENDING_ACCEPTED", "description": "sent"}
DUPLICATE = {"groupId": 5, "groupName": "REJECTED", "id": 23, "name": "REJECTED_DUPLICATE_MESSAGE_ID"}
REFUSED = {"groupId": 5, "groupName": "REJECTED", "id": 52, "name": "REJECTED_DESTINATION", "description": "Invalid"}


@pytest.fixture(autouse=True)
def no_real_enqueue(monkeypatch):
    enqueued: list[int] = []
    monkeypatch.setattr("inbox.outbox.schedule_send", lambda message_id, attempt_id=None: enqueued.append(message_id))
    monkeypatch.setattr(send_message, "delay", enqueued.append)
    return enqueued


@pytest.fixture
def retries(monkeypatch):
    """The retries the task asked for (eager retries run at once)."""
    asked: list[dict] = []
    original = send_message.retry

    def recording(*args, **kwargs):
        asked.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(send_message, "retry", recording)
    return asked


@pytest.fixture
def open_conversation(account, inbox):
    def make(user: str) -> Conversation:
        contact = Contact.objects.create(channel="tiktok", endpoint_id="biz-1", channel_user_id=user)
        return Conversation.objects.create(
            provider="infobip",
            inbox=inbox,
            contact=contact,
            provider_conversation_id=user,
            last_activity_at=timezone.now(),
            last_inbound_at=timezone.now() - timedelta(hours=1),
        )

    return make


@pytest.fixture
def reply(agent):
    def make(conversation: Conversation, text: str = "Hello") -> Message:
        return reply_queue(conversation_id=conversation.pk, author=agent, type="text", text=text)

    return make


def run(message: Message, **kwargs):
    return send_message.apply(args=[message.pk], kwargs=kwargs)


def bodies() -> list[dict]:
    return [json.loads(call.request.body) for call in responses.calls]


def sent_ids(body: dict) -> list[str]:
    return [m["destinations"][0]["messageId"] for m in body["messages"]]


def answer(*entries: tuple[Message, dict]) -> dict:
    return {"bulkId": "b-1", "messages": [{"messageId": m.provider_message_id, "status": s} for m, s in entries]}


def fresh(message: Message) -> Message:
    return Message.objects.get(pk=message.pk)


@responses.activate
def test_one_task_sends_the_ready_replies_of_its_sender_in_one_request(open_conversation, reply):
    replies = [reply(open_conversation(f"user-{n}"), f"reply {n}") for n in range(5)]
    responses.post(URL, json=answer(*[(m, PENDING) for m in replies]))

    assert run(replies[0]).result == "accepted"

    (body,) = bodies()
    assert violations(request_validator("/tiktok/1/messages"), body) == []
    assert sent_ids(body) == [m.provider_message_id for m in replies]  # oldest first
    assert [m["destinations"][0]["to"] for m in body["messages"]] == [f"user-{n}" for n in range(5)]
    assert [m["content"]["text"] for m in body["messages"]] == [f"reply {n}" for n in range(5)]
    assert {m["sender"] for m in body["messages"]} == {"biz-1"}
    for m in replies:
        assert fresh(m).status == "accepted"
        assert fresh(m).provider_status["name"] == "PENDING_ACCEPTED"
        assert not cache.get(outbox.in_flight_key(m.provider_message_id))
    assert AuditLog.objects.filter(action="message.status", after__status="accepted").count() == 5
    # The companions' own tasks find nothing left to send.
    assert [run(m).result for m in replies[1:]] == ["skipped"] * 4
    assert len(responses.calls) == 1


@responses.activate
def test_a_batch_holds_only_the_oldest_queued_reply_of_each_conversation(open_conversation, reply):
    a, b = open_conversation("user-a"), open_conversation("user-b")
    a1, a2, b1 = reply(a, "a1"), reply(a, "a2"), reply(b, "b1")
    responses.post(URL, json=answer((a1, PENDING), (b1, PENDING)))
    responses.post(URL, json=answer((a2, PENDING)))

    run(a1)
    assert sent_ids(bodies()[0]) == [a1.provider_message_id, b1.provider_message_id]
    # a2 goes in the task's next batch, once a1 is recorded as accepted (then the oldest of its conversation).
    assert sent_ids(bodies()[1]) == [a2.provider_message_id]
    assert fresh(a2).status == "accepted"
    assert run(a2).result == "skipped"


@responses.activate
def test_other_senders_replies_are_not_in_the_batch(open_conversation, reply, make_account, inbox):
    make_account(sender_id="biz-2")
    ours = reply(open_conversation("user-1"))
    contact = Contact.objects.create(channel="tiktok", endpoint_id="biz-2", channel_user_id="user-2")
    theirs_conversation = Conversation.objects.create(
        provider="infobip",
        inbox=inbox,
        contact=contact,
        provider_conversation_id="user-2",
        last_activity_at=timezone.now(),
        last_inbound_at=timezone.now() - timedelta(hours=1),
    )
    theirs = reply(theirs_conversation)
    responses.post(URL, json=answer((ours, PENDING)))
    run(ours)
    assert sent_ids(bodies()[0]) == [ours.provider_message_id]
    assert fresh(theirs).status == "queued"


@responses.activate
def test_each_message_of_a_batch_gets_its_own_fate(open_conversation, reply):
    accepted, refused, duplicate = (reply(open_conversation(f"user-{n}"), f"r{n}") for n in range(3))
    responses.post(URL, json=answer((accepted, PENDING), (refused, REFUSED), (duplicate, DUPLICATE)))

    assert run(accepted).result == "accepted"

    assert fresh(accepted).status == "accepted"
    assert fresh(duplicate).status == "accepted"  # an earlier try got through: Infobip has it once
    assert fresh(duplicate).provider_status == {}
    failed = fresh(refused)
    assert failed.status == "failed" and failed.failed_at is not None
    assert (failed.error["name"], failed.error["permanent"]) == ("REJECTED_DESTINATION", True)
    assert AuditLog.objects.filter(action="message.send_failed", message=refused).count() == 1
    assert len(responses.calls) == 1  # nothing retried


@responses.activate
@pytest.mark.parametrize(
    "failure",
    [
        {"status": 503, "json": {"errorCode": "E500", "description": "Something went wrong."}},
        {
            "status": 429,
            "json": {"errorCode": "E429", "description": "Too many requests"},
            "headers": {"Retry-After": "7"},
        },
        {"body": requests.ReadTimeout("read timed out")},
    ],
    ids=["5xx", "429", "timeout"],
)
def test_a_failed_batch_is_retried_whole_with_the_same_ids(open_conversation, reply, retries, failure):
    replies = [reply(open_conversation(f"user-{n}")) for n in range(3)]
    responses.post(URL, **failure)
    responses.post(URL, json=answer(*[(m, PENDING) for m in replies]))

    assert run(replies[0]).result == "accepted"

    first, second = bodies()
    assert sent_ids(first) == sent_ids(second) == [m.provider_message_id for m in replies]
    assert len(retries) == 1
    assert retries[0]["args"] == [replies[0].pk]
    assert retries[0]["kwargs"]["batch"] == [[m.pk, m.provider_message_id] for m in replies[1:]]
    if failure.get("status") == 429:
        assert retries[0]["countdown"] >= 7
    assert all(fresh(m).status == "accepted" and fresh(m).attempt == 1 for m in replies)
    assert Message.objects.filter(direction="out").count() == 3


@responses.activate
def test_a_batch_whose_retries_are_spent_fails_every_message_with_the_reason(open_conversation, reply, settings):
    settings.OUTBOX_SEND_MAX_TRIES = 2
    replies = [reply(open_conversation(f"user-{n}")) for n in range(3)]
    responses.post(URL, status=502)
    responses.post(URL, status=502)

    assert run(replies[0]).result == "failed"

    assert len(responses.calls) == 2
    for m in replies:
        row = fresh(m)
        assert row.status == "failed"
        assert row.error["retries_exhausted"] is True and row.error["http_status"] == 502


@responses.activate
def test_a_message_missing_from_the_answer_is_retried_and_the_others_are_not(open_conversation, reply, retries):
    answered, missing = reply(open_conversation("user-1")), reply(open_conversation("user-2"))
    responses.post(URL, json=answer((answered, PENDING)))
    responses.post(URL, json=answer((missing, DUPLICATE)))  # it had arrived after all

    # The task's retry carries the missing message alone; what the eager chain returns is its fate.
    assert run(answered).result == "duplicate"

    first, second = bodies()
    assert sent_ids(second) == [missing.provider_message_id]
    assert retries[0]["args"] == [missing.pk] and retries[0]["kwargs"]["batch"] == []
    assert fresh(answered).status == fresh(missing).status == "accepted"


@responses.activate
def test_a_message_waiting_for_its_batchs_retry_is_left_to_that_batch(open_conversation, reply, monkeypatch):
    """While a batch waits out its backoff, its messages are neither sent by their own tasks nor taken into
    another batch; the batch's retry sends them together."""
    from celery.exceptions import Retry

    waiting: list[dict] = []

    def hold(*args, **kwargs):
        waiting.append(kwargs)
        raise Retry(when=kwargs["countdown"])

    first, second = reply(open_conversation("user-1")), reply(open_conversation("user-2"))
    responses.post(URL, status=503)
    with monkeypatch.context() as patch:
        patch.setattr(send_message, "retry", hold)
        run(first)
    assert len(responses.calls) == 1

    third = reply(open_conversation("user-3"))
    responses.post(URL, json=answer((third, PENDING)))
    assert run(second).result == "in_batch"
    assert run(third).result == "accepted"
    assert sent_ids(bodies()[1]) == [third.provider_message_id]  # not the waiting ones

    responses.post(URL, json=answer((first, PENDING), (second, PENDING)))
    assert run(first, **waiting[0]["kwargs"]).result == "accepted"
    assert sent_ids(bodies()[2]) == [first.provider_message_id, second.provider_message_id]
    assert fresh(second).status == "accepted"


@responses.activate
def test_replies_being_sent_by_another_task_are_not_taken(open_conversation, reply):
    mine, busy = reply(open_conversation("user-1")), reply(open_conversation("user-2"))
    cache.set(outbox.in_flight_key(busy.provider_message_id), 1, timeout=30)
    responses.post(URL, json=answer((mine, PENDING)))
    run(mine)
    assert sent_ids(bodies()[0]) == [mine.provider_message_id]
    assert cache.get(outbox.in_flight_key(busy.provider_message_id))  # its owner's key is left alone


@responses.activate
def test_the_batch_size_is_a_setting(open_conversation, reply, settings):
    settings.INFOBIP_SEND_BATCH_SIZE = 2
    replies = [reply(open_conversation(f"user-{n}")) for n in range(5)]
    responses.post(URL, json=answer(*[(m, PENDING) for m in replies[:2]]))
    settings.OUTBOX_DRAIN_MAX_BATCHES = 0  # one batch per task
    run(replies[0])
    assert sent_ids(bodies()[0]) == [m.provider_message_id for m in replies[:2]]
    assert [fresh(m).status for m in replies] == ["accepted"] * 2 + ["queued"] * 3


def _apply_cost(open_conversation, reply, n: int, offset: int, *, refused: bool) -> int:
    replies = [reply(open_conversation(f"user-{offset + i}")) for i in range(n)]
    responses.post(
        URL,
        json=answer(*[(m, REFUSED if refused and i % 2 else PENDING) for i, m in enumerate(replies)]),
    )
    with CaptureQueriesContext(connection) as queries:
        run(replies[0])
    assert all(fresh(m).status != "queued" for m in replies)
    return len(queries)


@responses.activate
@pytest.mark.parametrize("refused", [False, True], ids=["all accepted", "half refused"])
def test_a_batch_of_three_and_of_twenty_cost_the_same_statements(open_conversation, reply, refused):
    assert _apply_cost(open_conversation, reply, 3, 0, refused=refused) == _apply_cost(
        open_conversation, reply, 20, 100, refused=refused
    )
