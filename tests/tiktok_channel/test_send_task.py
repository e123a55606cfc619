"""The send task's paths (run eagerly: retries re-run at once, their countdowns are recorded, not waited for),
the sweeper, and the beat schedule."""

import json
from datetime import timedelta

import pytest
import requests
import responses
from django.conf import settings as django_settings
from django.core.cache import cache
from django.utils import timezone

from config.celery import app as celery_app
from inbox import outbox
from inbox.models import AuditLog, Contact, Conversation, Message, ParkedReport
from inbox.services import message_retry, reply_queue
from inbox.tasks import send_message, sweep_queued_messages
from tiktok_channel.spec import request_validator, violations

pytestmark = pytest.mark.django_db
URL = "https://xyz.api.infobip.com/tiktok/1/messages"
PENDING = {"groupId": 1, "groupName": "PENDING", "id": 7, "name": "PENDING_ENROUTE", "description": "sent"}
DUPLICATE = {"groupId": 5, "groupName": "REJECTED", "id": 23, "name": "REJECTED_DUPLICATE_MESSAGE_ID"}


@pytest.fixture(autouse=True)
def no_real_enqueue(monkeypatch):
    """reply_queue's on-commit hook and the sweeper enqueue here instead of the broker."""
    enqueued: list[int] = []
    monkeypatch.setattr("inbox.outbox.schedule_send", lambda message_id, attempt_id=None: enqueued.append(message_id))
    monkeypatch.setattr(send_message, "delay", enqueued.append)
    return enqueued


@pytest.fixture
def countdowns(monkeypatch):
    """Countdowns the task asked its retries to wait (eager retries run at once)."""
    asked: list[float] = []
    original = send_message.retry

    def recording(*args, **kwargs):
        asked.append(kwargs["countdown"])
        return original(*args, **kwargs)

    monkeypatch.setattr(send_message, "retry", recording)
    return asked


@pytest.fixture
def conversation(account, inbox):
    contact = Contact.objects.create(channel="tiktok", endpoint_id="biz-1", channel_user_id="user-1")
    return Conversation.objects.create(
        provider="infobip",
        inbox=inbox,
        contact=contact,
        provider_conversation_id="user-1",
        last_activity_at=timezone.now(),
        last_inbound_at=timezone.now() - timedelta(hours=1),
    )


@pytest.fixture
def queued(conversation, agent) -> Message:
    return reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="We ship to Berlin.")


def run(message: Message, **kwargs):
    return send_message.apply(args=[message.pk], kwargs=kwargs)


def ok(message: Message, status=PENDING) -> dict:
    return {"bulkId": "b-1", "messages": [{"messageId": message.provider_message_id, "status": status}]}


def sent_bodies() -> list[dict]:
    return [json.loads(call.request.body) for call in responses.calls]


@responses.activate
def test_accepted(queued, countdowns):
    responses.post(URL, json=ok(queued))
    assert run(queued).result == "accepted"

    queued.refresh_from_db()
    assert (queued.status, queued.error) == ("accepted", {})
    assert queued.accepted_at is not None
    assert queued.provider_status == {**PENDING, "messageId": queued.provider_message_id}
    (body,) = sent_bodies()
    assert violations(request_validator("/tiktok/1/messages"), body) == []
    message = body["messages"][0]
    assert message["sender"] == "biz-1"
    assert message["destinations"] == [{"to": "user-1", "messageId": queued.provider_message_id}]
    assert message["content"] == {"type": "TEXT", "text": "We ship to Berlin."}
    assert 47 * 3600 - 60 <= message["options"]["validityPeriod"]["amount"] <= 47 * 3600
    assert countdowns == []
    assert AuditLog.objects.filter(action="message.status", message=queued, after__status="accepted").exists()


@responses.activate
def test_5xx_then_success_sends_one_message_with_one_id(queued, countdowns, settings):
    settings.OUTBOX_RETRY_BASE_SECONDS = 4
    responses.post(URL, status=503, json={"errorCode": "E500", "description": "Something went wrong."})
    responses.post(URL, json=ok(queued))
    assert run(queued).result == "accepted"

    assert len(responses.calls) == 2
    ids = {body["messages"][0]["destinations"][0]["messageId"] for body in sent_bodies()}
    assert ids == {queued.provider_message_id}
    assert len(countdowns) == 1 and 2 <= countdowns[0] <= 4  # base 4 s, half of it jitter
    queued.refresh_from_db()
    assert queued.status == "accepted" and queued.attempt == 1
    assert Message.objects.filter(direction="out").count() == 1


@responses.activate
def test_backoff_grows_exponentially(queued, countdowns, settings):
    settings.OUTBOX_RETRY_BASE_SECONDS = 4
    settings.OUTBOX_SEND_MAX_TRIES = 4
    for _ in range(3):
        responses.post(URL, status=500)
    responses.post(URL, json=ok(queued))
    assert run(queued).result == "accepted"
    assert len(responses.calls) == 4
    for n, countdown in enumerate(countdowns):
        assert 4 * 2**n / 2 <= countdown <= 4 * 2**n


@responses.activate
def test_429_honours_retry_after(queued, countdowns):
    responses.post(URL, status=429, json={"errorCode": "E429"}, headers={"Retry-After": "42"})
    responses.post(URL, json=ok(queued))
    assert run(queued).result == "accepted"
    assert countdowns == [42.0]
    assert len(responses.calls) == 2


@responses.activate
def test_retry_after_is_capped_by_the_max_delay(queued, countdowns, settings):
    settings.OUTBOX_RETRY_MAX_DELAY_SECONDS = 60
    responses.post(URL, status=429, headers={"Retry-After": "3600"})
    responses.post(URL, json=ok(queued))
    run(queued)
    assert countdowns == [60]


@responses.activate
def test_timeout_is_retried_with_the_same_id(queued, countdowns):
    responses.post(URL, body=requests.ReadTimeout("read timed out"))
    responses.post(URL, json=ok(queued))
    assert run(queued).result == "accepted"
    assert len(responses.calls) == 2 and len(countdowns) == 1


@responses.activate
def test_400_fails_at_once_with_description_and_violations(
    queued, countdowns, live_events, django_capture_on_commit_callbacks
):
    violations_ = [{"property": "messages[0].destinations[0].to", "violation": "invalid destination"}]
    responses.post(
        URL,
        status=400,
        json={
            "errorCode": "E400",
            "description": "Request cannot be processed.",
            "action": "Fix it.",
            "violations": violations_,
            "resources": [],
        },
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert run(queued).result == "failed"

    assert len(responses.calls) == 1 and countdowns == []
    queued.refresh_from_db()
    assert queued.status == "failed" and queued.failed_at is not None
    assert queued.error["description"] == "Request cannot be processed."
    assert queued.error["violations"] == violations_
    assert (queued.error["name"], queued.error["permanent"], queued.error["http_status"]) == ("E400", True, 400)
    audit = AuditLog.objects.get(action="message.send_failed")
    assert (audit.actor_kind, audit.before, audit.after["status"]) == ("system", {"status": "queued"}, "failed")
    assert [e["type"] for _, e in live_events] == ["message.status"]
    assert live_events[0][1]["status"] == "failed"


@responses.activate
def test_duplicate_rejection_means_accepted_and_nothing_more_is_sent(queued, countdowns):
    responses.post(URL, json=ok(queued, DUPLICATE))
    assert run(queued).result == "duplicate"
    queued.refresh_from_db()
    assert queued.status == "accepted" and queued.error == {}
    assert run(queued).result == "skipped"  # e.g. the sweeper's copy arriving later
    assert len(responses.calls) == 1


@responses.activate
def test_retries_spent_marks_failed_with_the_reason(queued, countdowns, settings):
    settings.OUTBOX_SEND_MAX_TRIES = 3
    responses.post(URL, status=500, json={"errorCode": "E500", "description": "Something went wrong."})
    assert run(queued).result == "failed"

    assert len(responses.calls) == 3 and len(countdowns) == 2
    queued.refresh_from_db()
    assert queued.status == "failed"
    assert queued.error["name"] == "E500" and queued.error["description"] == "Something went wrong."
    assert (queued.error["permanent"], queued.error["retries_exhausted"], queued.error["tries"]) == (False, True, 3)


@responses.activate
def test_time_budget_spent_marks_failed(queued, countdowns, settings):
    settings.OUTBOX_SEND_BUDGET_SECONDS = 600
    responses.post(URL, body=requests.ConnectionError("refused"))
    first_try_at = (timezone.now() - timedelta(seconds=599)).isoformat()
    assert run(queued, first_try_at=first_try_at).result == "failed"
    assert len(responses.calls) == 1 and countdowns == []
    queued.refresh_from_db()
    assert queued.error["name"] == "CONNECTION_ERROR"


@responses.activate
@pytest.mark.parametrize("status", ["accepted", "delivered", "failed"])
def test_only_a_queued_message_is_sent(queued, status):
    Message.objects.filter(pk=queued.pk).update(status=status)
    assert run(queued).result == "skipped"
    assert len(responses.calls) == 0


@responses.activate
def test_a_closed_window_fails_without_sending(queued):
    Conversation.objects.filter(pk=queued.conversation_id).update(last_inbound_at=timezone.now() - timedelta(hours=49))
    assert run(queued).result == "failed"
    assert len(responses.calls) == 0
    queued.refresh_from_db()
    assert (queued.status, queued.error["name"]) == ("failed", "REPLY_WINDOW_CLOSED")


@responses.activate
def test_an_inactive_sender_fails_without_sending(queued, account):
    account.senders.update(active=False)
    assert run(queued).result == "failed"
    assert len(responses.calls) == 0
    queued.refresh_from_db()
    assert queued.error["name"] == "SENDER_UNAVAILABLE"


@responses.activate
def test_an_attempt_being_sent_elsewhere_is_not_sent_twice(queued):
    cache.set(outbox.in_flight_key(queued.provider_message_id), 1, timeout=30)
    assert run(queued).result == "in_flight"
    assert len(responses.calls) == 0


@responses.activate
def test_a_stale_task_cannot_fail_a_newer_attempt(queued, agent):
    """The failure is keyed by the attempt id the task sent: a retried row is left alone."""
    from inbox.services import message_send_failed

    old_id = queued.provider_message_id
    Message.objects.filter(pk=queued.pk).update(status="failed")
    message_retry(message_id=queued.pk, author=agent)
    assert message_send_failed(channel="tiktok", provider_message_id=old_id, error={"name": "X"}) == "unknown"
    queued.refresh_from_db()
    assert (queued.status, queued.attempt) == ("queued", 2)


@responses.activate
def test_a_retried_message_is_sent_with_its_new_id(queued, agent):
    Message.objects.filter(pk=queued.pk).update(status="failed")
    retried = message_retry(message_id=queued.pk, author=agent)
    responses.post(URL, json=ok(retried))
    assert run(retried).result == "accepted"
    (body,) = sent_bodies()
    assert (
        body["messages"][0]["destinations"][0]["messageId"] == retried.provider_message_id != queued.provider_message_id
    )


@responses.activate
def test_reports_kept_before_the_send_are_applied_after_it(queued, account):
    ParkedReport.objects.create(
        channel="tiktok",
        provider_message_id=queued.provider_message_id,
        status="delivered",
        at=timezone.now(),
        provider_status={"groupId": 3, "groupName": "DELIVERED", "id": 5, "name": "DELIVERED_TO_HANDSET"},
        received_at=timezone.now(),
    )
    # Kept as unmatched although the row exists (e.g. a report that raced an id change): the send applies it.
    responses.post(URL, json=ok(queued))
    run(queued)
    queued.refresh_from_db()
    assert queued.status == "delivered"
    assert ParkedReport.objects.get().applied_at is not None


def test_the_task_is_safe_to_redeliver():
    task = celery_app.tasks["inbox.tasks.send_message"]
    assert task.acks_late is True and task.reject_on_worker_lost is True


# --- sweeper -------------------------------------------------------------------------------------


def aged(message: Message, seconds: int) -> Message:
    Message.objects.filter(pk=message.pk).update(queued_at=timezone.now() - timedelta(seconds=seconds))
    return message


@pytest.fixture
def sweep(django_capture_on_commit_callbacks):
    def run_sweep() -> int:
        with django_capture_on_commit_callbacks(execute=True):
            return sweep_queued_messages.apply().result

    return run_sweep


def test_sweeper_reenqueues_stuck_rows_and_leaves_fresh_ones(conversation, agent, no_real_enqueue, sweep):
    stuck = aged(reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="stuck"), 120)
    fresh = aged(reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="fresh"), 10)
    done = aged(reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="done"), 120)
    Message.objects.filter(pk=done.pk).update(status="accepted")
    no_real_enqueue.clear()

    assert sweep() == 1
    assert no_real_enqueue == [stuck.pk]
    assert fresh.pk not in no_real_enqueue

    # The sweeper's own lease keeps the next round from enqueuing the same row again.
    assert sweep() == 0
    assert no_real_enqueue == [stuck.pk]


def test_sweeper_leaves_rows_with_a_live_task(conversation, agent, no_real_enqueue, sweep):
    waiting = aged(reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="retry pending"), 120)
    sending = aged(reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="in flight"), 120)
    cache.set(outbox.scheduled_key(waiting.provider_message_id), 1, timeout=60)
    cache.set(outbox.in_flight_key(sending.provider_message_id), 1, timeout=60)
    no_real_enqueue.clear()
    assert sweep() == 0 and no_real_enqueue == []


def test_sweeper_respects_the_threshold_setting(conversation, agent, no_real_enqueue, sweep, settings):
    settings.OUTBOUND_STUCK_AFTER_SECONDS = 5
    message = aged(reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="x"), 10)
    no_real_enqueue.clear()
    assert sweep() == 1 and no_real_enqueue == [message.pk]


@responses.activate
def test_a_waiting_retry_is_not_swept(queued, no_real_enqueue, sweep, monkeypatch):
    """A retry waiting its countdown holds the scheduled key for longer than the countdown."""
    from celery.exceptions import Retry

    def no_eager_rerun(*args, **kwargs):
        raise Retry(when=kwargs["countdown"])

    monkeypatch.setattr(send_message, "retry", no_eager_rerun)
    responses.post(URL, status=502)
    run(queued)
    key = cache.make_and_validate_key(outbox.scheduled_key(queued.provider_message_id))
    ttl = cache._cache.get_client(key).ttl(key)  # Django's RedisCache has no ttl(); ask Redis
    assert ttl > django_settings.OUTBOUND_STUCK_AFTER_SECONDS
    aged(queued, 120)
    no_real_enqueue.clear()
    assert sweep() == 0


def test_beat_runs_the_sweeper_and_the_report_task():
    scheduled = {entry["task"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"inbox.tasks.sweep_queued_messages", "inbox.tasks.apply_parked_reports"} <= scheduled
    celery_app.loader.import_default_modules()  # what a worker does at start: the autodiscovered task modules
    assert scheduled <= set(celery_app.tasks)


@responses.activate
def test_replies_of_one_conversation_go_out_in_queue_order(conversation, agent, monkeypatch):
    from celery.exceptions import Retry

    from inbox.outbox import ORDER_WAIT_SECONDS

    older = reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="first")
    younger = reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="second")
    waits: list[dict] = []

    def wait_recorded(*args, **kwargs):
        waits.append(kwargs)
        raise Retry()

    with monkeypatch.context() as patch:
        patch.setattr(send_message, "retry", wait_recorded)
        run(younger)  # the older reply is still queued: wait, and send nothing
    assert len(responses.calls) == 0
    assert (waits[0]["countdown"], waits[0]["kwargs"]["waits"], waits[0]["kwargs"]["first_try_at"]) == (
        ORDER_WAIT_SECONDS,
        1,
        None,
    )  # a wait is not a try: the budget has not started

    responses.post(URL, json=ok(older))
    responses.post(URL, json=ok(younger))
    run(older)
    run(younger, waits=1)
    sent = [body["messages"][0]["content"]["text"] for body in sent_bodies()]
    assert sent == ["first", "second"]
    younger.refresh_from_db()
    assert younger.status == "accepted"
