"""Issue 5 end to end: an agent's reply goes through the real API, Redis, a real Celery worker and the
Infobip sandbox (a real HTTP server), and Infobip's reports come back through our real webhook."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
import requests
import websockets
from django.core.cache import cache
from django.utils import timezone

from inbox.models import AuditLog, Conversation, Message
from inbox.outbox import in_flight_key, reconcile_accepted
from inbox.services import reply_queue
from inbox.tasks import send_message
from tests.e2e.conftest import _purge

pytestmark = [pytest.mark.e2e]


def message(message_id: int) -> Message:
    return Message.objects.get(pk=message_id)


def status_is(message_id: int, *statuses: str):
    return lambda: message(message_id).status in statuses


def open_conversation(stack, user: str = "tt-user-1") -> Conversation:
    stack.simulate_inbound(user, "Hi, is my order on its way?")
    return stack.conversation(user)


def queue_reply(stack, conversation: Conversation, text: str = "Yes, it left today.") -> int:
    response = stack.reply(conversation.pk, text)
    assert response.status_code == 201, response.text
    # Stored queued; a send task already draining this sender's batches (issue 20) may have sent it before the
    # response was read back, so a later state is as good — never a failure.
    assert response.json()["status"] in ("queued", "accepted", "delivered", "seen"), response.json()
    return response.json()["id"]


def test_stack_serves_pages_api_static_files_and_websockets(stack):
    assert requests.get(f"{stack.web_url}/healthz", timeout=5).json() == {"status": "ok"}
    assert requests.get(f"{stack.web_url}/static/admin/css/base.css", timeout=5).status_code == 200
    assert requests.get(f"{stack.web_url}/admin/login/", timeout=5).status_code == 200
    assert stack.api.get(f"{stack.web_url}/api/v1/conversations/", timeout=5).status_code == 200

    cookie = stack.session_cookie()
    host = stack.web_url.removeprefix("http://")

    async def hello() -> dict:
        async with websockets.connect(
            f"ws://{host}/ws/inbox/",
            origin=stack.web_url,
            additional_headers={"Cookie": f"{cookie['name']}={cookie['value']}"},
        ) as ws:
            return json.loads(await asyncio.wait_for(ws.recv(), 10))

    assert asyncio.run(hello()) == {"type": "hello", "inboxes": 1}


def test_reply_is_accepted_then_delivered_then_seen(stack):
    conversation = open_conversation(stack)
    message_id = queue_reply(stack, conversation)

    stack.wait_for(status_is(message_id, "seen"), 15, "the reply to be seen")
    sent = message(message_id)
    assert sent.accepted_at and sent.delivered_at and sent.seen_at
    assert sent.accepted_at <= sent.delivered_at <= sent.seen_at

    logs = stack.sandbox.logs()
    assert [entry["messageId"] for entry in logs] == [sent.provider_message_id]
    assert logs[0]["content"] == {"type": "TEXT", "text": "Yes, it left today."}
    assert logs[0]["destination"] == "tt-user-1" and logs[0]["sender"] == stack.business_id
    # Both reports went to our real webhook, signed, and were answered 200.
    reports = [d for d in stack.sandbox.deliveries() if d["kind"] in ("delivery", "seen")]
    assert sorted(d["kind"] for d in reports) == ["delivery", "seen"]
    assert all(d["status"] == 200 and d["url"].startswith(stack.web_url) for d in reports)


def test_reply_queued_through_the_service_is_sent_by_the_worker(stack):
    conversation = open_conversation(stack)
    queued = reply_queue(conversation_id=conversation.pk, author=stack.agent, type="text", text="From the service")
    stack.wait_for(status_is(queued.pk, "delivered", "seen"), 15, "delivered")
    assert stack.sandbox.logs()[0]["messageId"] == queued.provider_message_id


@pytest.mark.parametrize(
    ("switches", "fault_counter"),
    [
        ({"fail_next": 3, "fail_status": 503}, "fault_http_503"),
        ({"fail_next": 2, "fail_status": 500}, "fault_http_500"),
        ({"throttle_next": 1, "retry_after_s": 2}, "fault_http_429"),
        ({"timeout_next": 1, "timeout_ms": 3000}, "fault_timeout"),
    ],
    ids=["503x3", "500x2", "429-retry-after", "timeout"],
)
def test_faults_then_success_send_exactly_one_message(stack, switches, fault_counter):
    conversation = open_conversation(stack)
    stack.sandbox.control(**switches)
    message_id = queue_reply(stack, conversation)

    stack.wait_for(status_is(message_id, "delivered", "seen"), 20, "the reply to be delivered after the faults")
    sent = message(message_id)
    counters = stack.sandbox.counters()
    expected_faults = switches.get("fail_next") or switches.get("throttle_next") or switches.get("timeout_next")
    assert counters[fault_counter] == expected_faults
    assert counters["messages_accepted"] == 1
    assert counters.get("messages_duplicate", 0) == 0
    assert [entry["messageId"] for entry in stack.sandbox.logs()] == [sent.provider_message_id]
    assert sent.attempt == 1 and sent.error == {}
    if "retry_after_s" in switches:  # Retry-After honoured: the retry waited at least that long
        assert sent.accepted_at - sent.queued_at >= timedelta(seconds=switches["retry_after_s"])
    if "timeout_ms" in switches:  # the worker gave up at its read timeout, long before the sandbox answered
        assert "TIMEOUT" in stack.logs("worker")


def test_worker_killed_during_the_send_still_sends_exactly_one_message(stack):
    conversation = open_conversation(stack)
    # The send is slow, so the worker is killed mid-request; the sandbox still accepts the message after
    # its pause. Its own delivery report is held back so the message is still `queued` when recovery runs.
    stack.sandbox.control(slow_ms=1500, delivery_delay_ms=60_000)
    message_id = queue_reply(stack, conversation)
    attempt_id = message(message_id).provider_message_id

    stack.wait_for(lambda: cache.get(in_flight_key(attempt_id)), 10, "the send to be in flight")
    # The lease is taken before the request leaves: wait until the sandbox holds the request itself, or the
    # worker may die before its request reaches the sandbox (seen once in CI).
    stack.wait_for(lambda: stack.sandbox.counters().get("slow_held") == 1, 10, "the sandbox to hold the send")
    stack.kill_worker()
    stack.wait_for(lambda: stack.sandbox.counters().get("messages_accepted") == 1, 10, "the sandbox to accept it")
    assert message(message_id).status == "queued"

    # The killed worker's in-flight lease lasts connect + read timeout + 15 s; expire it now instead of
    # waiting. Then the sweeper (beat's job) re-enqueues the row and a new worker sends the same attempt.
    cache.delete(in_flight_key(attempt_id))
    stack.sandbox.control(slow_ms=0)
    assert stack.sweep() == 1
    stack.start_worker()

    stack.wait_for(status_is(message_id, "accepted"), 20, "the resend to be answered")
    counters = stack.sandbox.counters()
    assert counters["messages_accepted"] == 1
    assert counters["messages_duplicate"] == 1  # the resend was refused as the same message
    assert [entry["messageId"] for entry in stack.sandbox.logs()] == [attempt_id]
    assert message(message_id).attempt == 1
    assert stack.sweep() == 0


def test_worker_killed_before_the_send_arrives_then_the_sweeper_sends_it_once(stack):
    conversation = open_conversation(stack)
    # The first request is held and closed unanswered, never accepted; the worker dies while it waits.
    stack.sandbox.control(timeout_next=1, timeout_ms=1500)
    message_id = queue_reply(stack, conversation)
    attempt_id = message(message_id).provider_message_id
    stack.wait_for(lambda: stack.sandbox.counters().get("fault_timeout") == 1, 10, "the send to be held")
    stack.kill_worker()

    cache.delete(in_flight_key(attempt_id))  # fast-forward the killed worker's lease, as above
    assert stack.sweep() == 1
    stack.start_worker()

    stack.wait_for(status_is(message_id, "delivered", "seen"), 20, "delivered after recovery")
    counters = stack.sandbox.counters()
    assert counters["messages_accepted"] == 1 and counters.get("messages_duplicate", 0) == 0
    assert [entry["messageId"] for entry in stack.sandbox.logs()] == [attempt_id]


def test_a_lost_delivery_report_is_recovered_from_infobips_logs_once(stack):
    conversation = open_conversation(stack)
    # Infobip's reports never arrive (the sandbox withholds them), though the message was delivered.
    stack.sandbox.control(withhold_reports=True)
    message_id = queue_reply(stack, conversation)
    stack.wait_for(status_is(message_id, "accepted"), 20, "the reply to be accepted")
    provider_id = message(message_id).provider_message_id
    stack.wait_for(lambda: stack.sandbox.counters().get("reports_withheld", 0) == 2, 10, "both reports withheld")
    assert stack.sandbox.logs(messageId=provider_id)[0]["status"]["groupName"] == "DELIVERED"
    assert message(message_id).status == "accepted"

    # The beat task's job, with its age threshold at zero: ask Infobip's logs through the real client.
    assert reconcile_accepted(older_than=timedelta(0)) == 1

    settled = message(message_id)
    assert settled.status == "delivered" and settled.delivered_at is not None
    assert reconcile_accepted(older_than=timedelta(0)) == 0  # applied once: nothing left to ask about
    moves = AuditLog.objects.filter(message_id=message_id, action="message.status").order_by("id")
    assert [entry.after.get("status") for entry in moves] == ["accepted", "delivered"]


def test_closed_window_is_refused_before_queueing(stack):
    conversation = open_conversation(stack)
    Conversation.objects.filter(pk=conversation.pk).update(last_inbound_at=timezone.now() - timedelta(hours=49))

    response = stack.reply(conversation.pk, "Too late")

    assert response.status_code == 409 and response.json()["code"] == "reply_window_closed"
    assert not Message.objects.filter(direction="out").exists()
    assert stack.sandbox.counters().get("messages_accepted", 0) == 0 and stack.sandbox.logs() == []


def test_quota_reached_is_refused_before_queueing(stack, settings):
    conversation = open_conversation(stack)
    quota = settings.REPLY_QUOTA_PER_WINDOW  # the web server runs with the same default
    sent = [queue_reply(stack, conversation, f"Reply {n}") for n in range(quota)]

    response = stack.reply(conversation.pk, "One too many")

    assert response.status_code == 409 and response.json()["code"] == "reply_quota_used"
    assert Message.objects.filter(direction="out").count() == quota
    stack.wait_for(
        lambda: Message.objects.filter(pk__in=sent, status__in=["delivered", "seen"]).count() == quota,
        20,
        "every reply within the quota delivered",
    )
    assert len(stack.sandbox.logs()) == quota


def test_worker_killed_mid_batch_still_sends_every_reply_exactly_once(stack):
    """Issue 20: four replies of one sender go out in one request; the worker dies while the sandbox holds it (and
    then accepts all four). The sweeper's resends are refused as duplicates: each user got one message."""
    conversations = [open_conversation(stack, f"tt-batch-{n}") for n in range(4)]
    stack.kill_worker()  # the replies queue up while no worker runs, so one send finds them all ready
    stack.sandbox.control(slow_ms=1500, delivery_delay_ms=60_000)
    message_ids = [queue_reply(stack, conversation, f"Reply {n}") for n, conversation in enumerate(conversations)]
    attempt_ids = [message(message_id).provider_message_id for message_id in message_ids]
    # One task for the first reply finds the three others ready (as under load); with their own four tasks the
    # worker's two threads could split them over two requests.
    _purge(stack.queue)
    send_message.delay(message_ids[0])
    stack.start_worker()

    stack.wait_for(lambda: stack.sandbox.counters().get("slow_held") == 1, 20, "the sandbox to hold the batch")
    assert all(cache.get(in_flight_key(attempt_id)) for attempt_id in attempt_ids)  # all four in that request
    stack.kill_worker()
    stack.wait_for(lambda: stack.sandbox.counters().get("messages_accepted") == 4, 10, "the sandbox to accept them")
    assert stack.sandbox.counters()["slow_held"] == 1  # one request carried the four
    assert {message(message_id).status for message_id in message_ids} == {"queued"}

    cache.delete_many([in_flight_key(attempt_id) for attempt_id in attempt_ids])  # fast-forward the dead leases
    stack.sandbox.control(slow_ms=0)
    assert stack.sweep() == 4
    stack.start_worker()

    for message_id in message_ids:
        stack.wait_for(status_is(message_id, "accepted"), 20, "the resends to be answered")
    counters = stack.sandbox.counters()
    assert counters["messages_accepted"] == 4
    assert counters["messages_duplicate"] == 4  # every resend refused as the same message
    assert sorted(entry["messageId"] for entry in stack.sandbox.logs()) == sorted(attempt_ids)
    assert {message(message_id).attempt for message_id in message_ids} == {1}
    assert stack.sweep() == 0


def test_a_batch_with_refused_and_failing_requests_gives_each_reply_its_own_fate(stack):
    """Issue 20, through the real worker and sandbox: the first batch request answers 503, the retry of the whole
    batch is accepted except one message Infobip refuses; that one fails with its reason, the others are sent once."""
    conversations = [open_conversation(stack, f"tt-fates-{n}") for n in range(3)]
    stack.kill_worker()
    stack.sandbox.control(fail_next=1, fail_status=503)
    message_ids = [queue_reply(stack, conversation, f"Reply {n}") for n, conversation in enumerate(conversations)]
    stack.sandbox.control(refuse_next_messages=1)
    stack.start_worker()

    for message_id in message_ids:
        stack.wait_for(status_is(message_id, "failed", "delivered", "seen"), 30, "every reply to settle")
    fates = [message(message_id) for message_id in message_ids]
    refused = [m for m in fates if m.status == "failed"]
    assert len(refused) == 1 and refused[0].error["name"] == "REJECTED_DESTINATION"
    counters = stack.sandbox.counters()
    assert counters["fault_http_503"] == 1
    assert (counters["messages_refused"], counters["messages_accepted"]) == (1, 2)
    assert counters.get("messages_duplicate", 0) == 0
    sent = sorted(entry["messageId"] for entry in stack.sandbox.logs())
    assert sent == sorted(m.provider_message_id for m in fates if m.status != "failed")
