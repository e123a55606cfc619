"""A send task drains its connection (issue 20): once its batch went through it takes the next ready batch of the
same sender — each conversation's next reply, the replies other tasks left — within a budget, in each
conversation's order and by the same claim rules; the tasks of replies sent that way cost one query. Run eagerly,
as `test_send_batch.py`."""

import json
from datetime import timedelta

import pytest
import responses
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inbox import outbox
from inbox.models import Conversation
from tests.tiktok_channel import test_send_batch as batches
from tests.tiktok_channel.test_send_batch import PENDING, REFUSED, URL, answer, bodies, fresh, run, sent_ids

# The batch tests' fixtures (the enqueue stand-in is autouse there too).
no_real_enqueue = batches.no_real_enqueue
retries = batches.retries
open_conversation = batches.open_conversation
reply = batches.reply

pytestmark = pytest.mark.django_db


def texts(body: dict) -> list[str]:
    return [m["content"]["text"] for m in body["messages"]]


def accept_every_request():
    """Infobip's answer to whatever the request carried: every message accepted."""

    def callback(request):
        ids = [m["destinations"][0]["messageId"] for m in json.loads(request.body)["messages"]]
        return 200, {}, json.dumps({"bulkId": "b", "messages": [{"messageId": i, "status": PENDING} for i in ids]})

    responses.add_callback(responses.POST, URL, callback=callback, content_type="application/json")


@pytest.fixture
def replies_in_pairs(open_conversation, reply, settings):
    """Sends go two to a request; `replies_in_pairs(n)` queues one reply on each of n fresh conversations."""
    settings.INFOBIP_SEND_BATCH_SIZE = 2
    return lambda count: [reply(open_conversation(f"user-{n}")) for n in range(count)]


@responses.activate
def test_one_task_drains_several_batches_of_its_sender(open_conversation, reply, settings):
    settings.INFOBIP_SEND_BATCH_SIZE = 2
    replies = [reply(open_conversation(f"user-{n}"), f"r{n}") for n in range(5)]
    accept_every_request()

    assert run(replies[0]).result == "accepted"

    assert [sent_ids(body) for body in bodies()] == [
        [replies[0].provider_message_id, replies[1].provider_message_id],
        [replies[2].provider_message_id, replies[3].provider_message_id],
        [replies[4].provider_message_id],
    ]
    assert all(fresh(m).status == "accepted" and fresh(m).attempt == 1 for m in replies)
    assert not any(cache.get(outbox.in_flight_key(m.provider_message_id)) for m in replies)


@responses.activate
def test_each_conversations_order_holds_across_the_drained_batches(open_conversation, reply):
    a, b = open_conversation("user-a"), open_conversation("user-b")
    for n in range(1, 4):
        reply(a, f"a{n}")
        reply(b, f"b{n}")
    first = a.messages.order_by("queued_at", "id").first()
    accept_every_request()

    run(first)

    # At most one reply per conversation in a request, and the next one only after the previous was accepted.
    assert [texts(body) for body in bodies()] == [["a1", "b1"], ["a2", "b2"], ["a3", "b3"]]
    assert set(a.messages.values_list("status", flat=True)) == {"accepted"}
    assert set(b.messages.values_list("status", flat=True)) == {"accepted"}


@responses.activate
def test_the_task_of_a_reply_a_batch_sent_ends_without_a_query(replies_in_pairs):
    replies = replies_in_pairs(4)
    accept_every_request()
    run(replies[0], attempt_id=replies[0].provider_message_id)

    for message in replies[1:]:
        assert cache.get(outbox.done_key(message.provider_message_id)) == 1
        with CaptureQueriesContext(connection) as queries:
            assert run(message, attempt_id=message.provider_message_id).result == "skipped"
        # The drain's done marker of this attempt, read with its leases: no statement, no provider call.
        assert len(queries) == 0
    assert len(responses.calls) == 2


@responses.activate
def test_without_its_marker_the_task_of_a_sent_reply_costs_one_query_without_a_join(replies_in_pairs):
    replies = replies_in_pairs(4)
    accept_every_request()
    run(replies[0])
    cache.delete_many([outbox.done_key(m.provider_message_id) for m in replies])  # expired, or Redis restarted

    for n, message in enumerate(replies[1:]):
        # A task enqueued with its attempt id, or without (the sweeper's, or one queued by an older release).
        kwargs = {"attempt_id": message.provider_message_id} if n % 2 else {}
        with CaptureQueriesContext(connection) as queries:
            assert run(message, **kwargs).result == "skipped"
        # Its status by primary key: not the row with its conversation and contact, no lease, no provider call.
        assert len(queries) == 1
        assert "JOIN" not in queries[0]["sql"].upper()
        assert f'"id" = {message.pk}' in queries[0]["sql"]
    assert len(responses.calls) == 2


@responses.activate
def test_the_marker_can_be_turned_off(settings, replies_in_pairs):
    settings.OUTBOX_DONE_MARK_SECONDS = 0
    replies = replies_in_pairs(2)
    accept_every_request()
    run(replies[0])

    assert cache.get(outbox.done_key(replies[1].provider_message_id)) is None
    with CaptureQueriesContext(connection) as queries:
        assert run(replies[1], attempt_id=replies[1].provider_message_id).result == "skipped"
    assert len(queries) == 1


@responses.activate
def test_a_refused_attempt_is_marked_done_and_its_retry_is_sent(
    agent, django_capture_on_commit_callbacks, no_real_enqueue, replies_in_pairs
):
    from inbox.services import message_retry

    replies = replies_in_pairs(2)
    responses.post(URL, json=answer((replies[0], PENDING), (replies[1], REFUSED)))
    run(replies[0])
    refused = fresh(replies[1])
    assert refused.status == "failed"
    assert cache.get(outbox.done_key(refused.provider_message_id)) == 1
    no_real_enqueue.clear()

    with django_capture_on_commit_callbacks(execute=True):
        message_retry(message_id=refused.pk, author=agent)
    again = fresh(refused)
    assert (again.status, again.attempt) == ("queued", 2)
    assert no_real_enqueue == [again.pk]
    accept_every_request()

    # The old attempt's task (a leftover) ends on its marker; the new attempt's task is not ended by it.
    assert run(again, attempt_id=refused.provider_message_id).result == "skipped"
    assert fresh(again).status == "queued"
    assert run(again, attempt_id=again.provider_message_id).result == "accepted"
    assert sent_ids(bodies()[-1]) == [again.provider_message_id]


@responses.activate
def test_a_task_ends_on_the_leases_of_its_attempt_without_a_query(open_conversation, reply):
    busy, waiting = reply(open_conversation("user-1")), reply(open_conversation("user-2"))
    cache.set(outbox.in_flight_key(busy.provider_message_id), 1, timeout=30)
    cache.set(outbox.scheduled_key(waiting.provider_message_id), outbox.batch_mark("other"), timeout=30)

    with CaptureQueriesContext(connection) as queries:
        assert run(busy, attempt_id=busy.provider_message_id).result == "in_flight"
        assert run(waiting, attempt_id=waiting.provider_message_id).result == "in_batch"
    assert len(queries) == 0
    assert len(responses.calls) == 0
    assert fresh(busy).status == fresh(waiting).status == "queued"


def test_the_enqueued_task_carries_its_attempt_id(open_conversation, reply, monkeypatch):
    from inbox.tasks import send_message

    monkeypatch.undo()  # the real schedule_send, with only the broker stood in for
    delayed: list[tuple] = []
    monkeypatch.setattr(send_message, "delay", lambda *args, **kwargs: delayed.append((args, kwargs)))
    message = reply(open_conversation("user-1"))

    outbox.enqueue_send(message)

    assert delayed == [((message.pk,), {"attempt_id": message.provider_message_id})]


@responses.activate
def test_the_task_of_a_reply_in_flight_elsewhere_costs_one_query(open_conversation, reply, django_assert_num_queries):
    busy = reply(open_conversation("user-1"))
    cache.set(outbox.in_flight_key(busy.provider_message_id), 1, timeout=30)

    with django_assert_num_queries(1):
        assert run(busy).result == "in_flight"
    assert len(responses.calls) == 0
    assert fresh(busy).status == "queued"


@responses.activate
def test_the_drain_stops_at_its_batch_budget(settings, replies_in_pairs):
    settings.OUTBOX_DRAIN_MAX_BATCHES = 1
    replies = replies_in_pairs(6)
    accept_every_request()

    run(replies[0])

    assert len(responses.calls) == 2  # its own batch and one more
    assert [fresh(m).status for m in replies] == ["accepted"] * 4 + ["queued"] * 2
    assert run(replies[4]).result == "accepted"  # left to their own tasks
    assert fresh(replies[5]).status == "accepted"


@responses.activate
def test_the_drain_stops_at_its_time_budget(settings, replies_in_pairs):
    settings.OUTBOX_DRAIN_SECONDS = 0
    replies = replies_in_pairs(4)
    accept_every_request()

    run(replies[0])

    assert len(responses.calls) == 1
    assert [fresh(m).status for m in replies] == ["accepted"] * 2 + ["queued"] * 2


@responses.activate
def test_a_drained_batch_that_fails_is_retried_whole_with_a_fresh_budget(retries, settings, replies_in_pairs):
    replies = replies_in_pairs(4)
    responses.post(URL, json=answer((replies[0], PENDING), (replies[1], PENDING)))
    responses.post(URL, status=503)
    responses.post(URL, json=answer((replies[2], PENDING), (replies[3], PENDING)))

    assert run(replies[0]).result == "accepted"

    first, failed, again = bodies()
    assert sent_ids(failed) == sent_ids(again) == [replies[2].provider_message_id, replies[3].provider_message_id]
    (asked,) = retries
    assert asked["args"] == [replies[2].pk]
    assert asked["kwargs"]["batch"] == [[replies[3].pk, replies[3].provider_message_id]]
    assert asked["kwargs"]["waits"] == 0  # the first try of that batch: its backoff starts at the first step
    assert asked["countdown"] <= settings.OUTBOX_RETRY_BASE_SECONDS
    assert all(fresh(m).status == "accepted" and fresh(m).attempt == 1 for m in replies)


@responses.activate
def test_after_a_batch_refused_whole_the_rest_is_left_to_their_own_tasks(replies_in_pairs):
    replies = replies_in_pairs(6)
    responses.post(URL, json=answer((replies[0], PENDING), (replies[1], PENDING)))
    responses.post(URL, json=answer((replies[2], REFUSED), (replies[3], REFUSED)))

    run(replies[0])

    assert len(responses.calls) == 2
    assert [fresh(m).status for m in replies] == ["accepted"] * 2 + ["failed"] * 2 + ["queued"] * 2


@responses.activate
def test_a_drained_reply_whose_window_closed_fails_unsent(replies_in_pairs):
    replies = replies_in_pairs(4)
    closed = replies[2]  # the first of the second batch
    Conversation.objects.filter(pk=closed.conversation_id).update(last_inbound_at=timezone.now() - timedelta(days=3))
    accept_every_request()

    run(replies[0])

    assert [sent_ids(body) for body in bodies()] == [
        [replies[0].provider_message_id, replies[1].provider_message_id],
        [replies[3].provider_message_id],
    ]
    row = fresh(closed)
    assert (row.status, row.error["name"]) == ("failed", "REPLY_WINDOW_CLOSED")


def test_ready_batch_offers_each_conversations_oldest_reply_and_nothing_behind_one_in_flight(open_conversation, reply):
    """The head of each conversation's queue, oldest first (DISTINCT ON on PostgreSQL): a conversation whose oldest
    queued reply is being sent elsewhere offers none of its later replies."""
    a, b, c = open_conversation("user-a"), open_conversation("user-b"), open_conversation("user-c")
    a1, b1, a2, c1, b2 = reply(a, "a1"), reply(b, "b1"), reply(a, "a2"), reply(c, "c1"), reply(b, "b2")
    cache.set(outbox.in_flight_key(b1.provider_message_id), 1, timeout=30)

    claimed = outbox.ready_batch(provider="infobip", endpoint_id="biz-1", limit=10)

    assert [m.pk for m in claimed] == [a1.pk, c1.pk]
    assert not ({a2.pk, b2.pk} & {m.pk for m in claimed})
    cache.delete_many([outbox.in_flight_key(m.provider_message_id) for m in (*claimed, b1)])
