"""Deferred webhook processing: the webhook stores and answers, the processor applies pending requests in batches.

A batch of many requests must leave exactly the state the same results applied one by one leave (each a batch of
one: the single-event services are one-item calls of the batch functions); the
equivalence test below plays one mixed stream both ways and compares everything an agent or Infobip could see.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inbox import processor
from inbox.models import (
    AuditLog,
    Contact,
    Conversation,
    Message,
    ParkedReport,
    ReportMarkBatch,
    WebhookEvent,
    WebhookWaiter,
)
from inbox.reports import rollups
from tests.tiktok_channel.webhooks import fixture, post
from tiktok_channel.infobip_webhooks import process_results
from tiktok_channel.sandbox import payloads as p

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def deferred(settings):
    settings.WEBHOOK_PROCESSING = "deferred"


def test_deferred_webhook_stores_answers_and_the_processor_applies(client, account, deferred):
    response = post(client, account, fixture("inbound_text"), kind="inbound", headers={"X-Request-Id": "r-1"})
    assert response.status_code == 200
    assert response.json() == {"status": "accepted", "results": 1}
    event = WebhookEvent.objects.get()
    assert event.verdict == "pending" and event.result_count == 1
    # Every column as the ORM would write it (on PostgreSQL the row comes from a hand-written statement).
    assert (event.provider, event.connection_id) == ("infobip", account.pk) and event.path_kind == "inbound"
    assert event.headers["X-Request-Id"] == "r-1" and "X-Hub-Signature" not in event.headers
    assert event.body == json.dumps(fixture("inbound_text"))
    assert abs((event.received_at - timezone.now()).total_seconds()) < 60
    assert event.summary == {} and event.error == "" and event.problems == [] and event.replayed_at is None
    assert not Message.objects.exists()

    assert processor.drain() == 1
    event.refresh_from_db()
    assert event.verdict == "processed" and event.summary == {"inbound": 1}
    assert Message.objects.get().text == "Hello!\nDo you ship to Berlin? 🚚"
    assert processor.drain() == 0


def test_deferred_webhook_still_refuses_bad_input_at_once(client, account, deferred):
    response = post(client, account, b'{"results": "nope"}')
    assert response.status_code == 400 and response.json()["code"] == "bad_payload"
    assert WebhookEvent.objects.get().verdict == "rejected"
    assert processor.drain() == 0


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ("messageId", "m" * 201),
        ("to", "b" * 201),
        ("conversationId", "c" * 201),
        ("emoji", "x" * 65),
        ("report", "r" * 201),
    ],
)
def test_a_value_longer_than_its_column_is_kept_unapplied_not_a_failed_request(client, account, where, value):
    """Found on PostgreSQL by the spec-driven fuzz test: a 201-character id failed the request in the database."""
    good = fixture("inbound_text")["results"][0]
    long = json.loads(json.dumps(fixture("inbound_image")["results"][0]))
    if where == "report":
        long = {"messageId": value, "seenAt": "2026-11-30T10:00:00.000+0000"}
    elif where in ("conversationId", "emoji"):
        long["message"][where] = value
    else:
        long[where] = value
    response = post(client, account, {"results": [good, long]})
    assert response.status_code == 200 and "error" not in response.json()
    event = WebhookEvent.objects.get()
    assert event.verdict == "partial" and event.problems[0]["index"] == 1
    assert "longer than" in event.problems[0]["reason"]
    assert list(Message.objects.values_list("provider_message_id", flat=True)) == ["in-text-1"]
    assert not ParkedReport.objects.exists()


@pytest.mark.parametrize("processing", ["inline", "deferred"])
def test_a_batch_whose_middle_result_is_malformed_is_answered_200_and_the_others_are_stored(
    client, account, admin_client, settings, processing
):
    settings.WEBHOOK_PROCESSING = processing
    good, other = fixture("inbound_text")["results"][0], fixture("inbound_image")["results"][0]
    malformed = {"message": {"type": "TEXT", "text": "no id"}, "sender": "user-1", "to": "biz-1"}
    response = post(client, account, {"results": [good, malformed, other]})
    assert response.status_code == 200
    processor.drain()
    event = WebhookEvent.objects.get()
    assert event.verdict == "partial" and event.summary == {"inbound": 2, "invalid": 1}
    assert event.problems == [{"index": 1, "reason": "messageId is required"}]
    stored = sorted(Message.objects.values_list("provider_message_id", flat=True))
    assert stored == ["in-image-1", "in-text-1"]

    # Kept whole, so it can be replayed (e.g. after a fix that understands it): the good ones are duplicates now.
    admin_client.post("/admin/inbox/webhookevent/", {"action": "replay", "_selected_action": [event.pk]})
    event.refresh_from_db()
    assert event.replayed_at is not None and event.verdict == "partial"
    assert event.summary == {"duplicate": 2, "invalid": 1} and event.problems[0]["index"] == 1
    assert Message.objects.count() == 2


def test_a_body_that_is_not_utf8_is_processed_inline(client, account, deferred):
    body = fixture("inbound_text")
    response = post(client, account, json.dumps(body).encode("utf-16"))
    assert response.status_code == 200 and response.json()["inbound"] == 1
    assert WebhookEvent.objects.get().verdict == "processed"


def test_batch_size_bounds_one_transaction(client, account, deferred):
    for n in range(5):
        post(
            client,
            account,
            p.inbound_event(p.inbound_result(user_id="u", business_id="biz-1", content=p.text_content(f"{n}"))),
        )
    assert processor.drain_once(2) == 2
    assert WebhookEvent.objects.filter(verdict="pending").count() == 3
    assert processor.drain() == 3
    assert list(Message.objects.order_by("sent_at", "id").values_list("text", flat=True)) == ["0", "1", "2", "3", "4"]


# --- the batch path leaves what the single-event path leaves --------------------------------------------------


def _stream(prefix: str, business_id: str) -> list[dict]:
    """One mixed stream of webhook bodies: new users, a redelivery, an old message arriving late, a referral,
    a reopened conversation, reports in and out of order, a failure, an unknown message, noise, a malformed
    result between two good ones."""

    def inbound(user: str, n: int, minutes: int, content: dict | None = None) -> dict:
        return p.inbound_result(
            user_id=f"{prefix}-{user}",
            business_id=business_id,
            content=content or p.text_content(f"{user} says {n}"),
            message_id=f"{prefix}-in-{n}",
            received_at=at(minutes),
        )

    def delivered(n: int, minutes: int, status=p.STATUS_DELIVERED, error=None) -> dict:
        return p.delivery_report(
            message_id=f"{prefix}-out-{n}",
            to=f"{prefix}-u2",
            sender=business_id,
            sent_at=p.infobip_time(at(0)),
            status=status,
            error=error,
            done_at=at(minutes),
        )

    def seen(n: int, minutes: int) -> dict:
        report = p.seen_report(
            message_id=f"{prefix}-out-{n}",
            business_id=business_id,
            user_id=f"{prefix}-u2",
            sent_at=p.infobip_time(at(0)),
        )
        report["seenAt"] = p.infobip_time(at(minutes))
        return report

    undeliverable_status, undeliverable_error = p.FAILURES["UNDELIVERABLE"]
    first = inbound("u1", 1, 1)
    return [
        p.inbound_event(first),
        p.inbound_event(inbound("u2", 2, 2), inbound("u1", 3, 3)),  # u2's conversation was resolved: reopened
        p.inbound_event(first),  # redelivered
        p.inbound_event(inbound("u1", 4, -5)),  # older than what we have: the window does not move back
        p.inbound_event(inbound("u3", 5, 4, p.referral_ad_content())),
        p.reports(delivered(1, 5), seen(1, 6)),
        p.reports(seen(2, 7), delivered(2, 6)),  # seen before delivered
        p.reports(delivered(3, 8, undeliverable_status, undeliverable_error)),
        p.reports(delivered(9, 8)),  # a message we do not have (yet)
        p.inbound_event(
            p.inbound_result(
                user_id=f"{prefix}-u4", business_id="nobody", content=p.text_content("?"), message_id=f"{prefix}-in-6"
            )
        ),
        {"results": [{"something": "else"}]},
        {"results": [inbound("u5", 10, 10), {"message": "?"}, inbound("u5", 11, 11)]},  # a malformed result between
        p.inbound_event(inbound("u1", 7, 9), inbound("u1", 7, 9)),  # the same message twice in one body
    ]


def _prepare(prefix: str, business_id: str, inbox) -> None:
    """u2 had a conversation, resolved, with three replies Infobip accepted."""
    contact = Contact.objects.create(
        channel="tiktok",
        endpoint_id=business_id,
        channel_user_id=f"{prefix}-u2",
        first_seen_at=at(-60),
        last_seen_at=at(-60),
    )
    conversation = Conversation.objects.create(
        provider="infobip",
        inbox=inbox,
        contact=contact,
        status="resolved",
        last_activity_at=at(-60),
        last_inbound_at=at(-60),
    )
    for n in (1, 2, 3):
        Message.objects.create(
            conversation=conversation,
            direction="out",
            type="text",
            text=f"reply {n}",
            channel="tiktok",
            provider_message_id=f"{prefix}-out-{n}",
            status="accepted",
            queued_at=at(-1),
            accepted_at=at(-1),
            sent_at=at(-1),
        )


def _state(prefix: str, events: list[tuple[str, dict]]) -> dict:
    def strip(value):
        return value.replace(f"{prefix}-", "") if isinstance(value, str) else value

    def mine(group_event):
        return group_event[1].get("conversation_id") in conversation_ids

    conversations = Conversation.objects.filter(contact__channel_user_id__startswith=f"{prefix}-")
    conversation_ids = set(conversations.values_list("pk", flat=True))
    user_of = dict(conversations.values_list("pk", "contact__channel_user_id"))
    return {
        "conversations": {
            strip(c.contact.channel_user_id): (
                c.status,
                c.last_inbound_at,
                c.last_activity_at,
                c.version,
                strip(c.provider_conversation_id),
                {k: v for k, v in c.referral.items() if k != "received_at"},
                # The list row the write path keeps (inbox/services/summary.py).
                (c.last_message_at, c.last_message_direction, c.last_message_type, strip(c.last_message_preview)),
                c.unread_count,
            )
            for c in conversations.select_related("contact")
        },
        "contacts": {
            strip(c.channel_user_id): (c.first_seen_at, c.last_seen_at)
            for c in Contact.objects.filter(channel_user_id__startswith=f"{prefix}-")
        },
        "inbound": sorted(
            (strip(m.provider_message_id), strip(m.conversation.contact.channel_user_id), m.text, m.sent_at, m.type)
            for m in Message.objects.filter(direction="in", conversation_id__in=conversation_ids).select_related(
                "conversation__contact"
            )
        ),
        "outbound": {
            strip(m.provider_message_id): (
                m.status,
                m.accepted_at,
                m.delivered_at,
                m.seen_at,
                m.failed_at,
                m.error,
                m.provider_status.get("name"),
            )
            for m in Message.objects.filter(direction="out", conversation_id__in=conversation_ids)
        },
        "audit": Counter(
            (a.action, str(a.before), str(a.after))
            for a in AuditLog.objects.filter(conversation_id__in=conversation_ids)
        ),
        "unmatched": sorted(
            (strip(r.provider_message_id), r.status)
            for r in ParkedReport.objects.filter(provider_message_id__startswith=f"{prefix}-")
        ),
        "live": Counter((e["type"], e.get("version"), e.get("status")) for _, e in filter(mine, events)),
        # REPORTS_ROLLUPS=deferred: the conversations marked for the roll-ups' refresh, and how.
        "marks": {  # a full refresh ignores the messages listed for the fast path: only those of a partial one
            strip(user_of[pk]): (
                full,
                []
                if full
                else sorted(
                    strip(m)
                    for m in Message.objects.filter(pk__in=messages).values_list("provider_message_id", flat=True)
                ),
            )
            for pk, (full, _opened, messages) in rollups.marked().items()
            if pk in conversation_ids
        },
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("rollups_mode", ["inline", "deferred"])
def test_one_batch_leaves_what_the_single_event_path_leaves(
    client, make_account, inbox, live_events, settings, monkeypatch, rollups_mode
):
    settings.REPORTS_ROLLUPS = rollups_mode
    drains: list = []
    monkeypatch.setattr(rollups, "schedule_drain", lambda: drains.append(1))  # the Celery boundary
    single_account, batch_account = make_account(sender_id="biz-single"), make_account(sender_id="biz-batch")
    _prepare("s", "biz-single", inbox)
    _prepare("b", "biz-batch", inbox)

    for body in _stream("s", "biz-single"):
        with transaction.atomic():
            process_results(single_account, body["results"])

    settings.WEBHOOK_PROCESSING = "deferred"
    for body in _stream("b", "biz-batch"):
        assert post(client, batch_account, body).status_code == 200
    assert processor.drain_once(100) == len(_stream("b", "biz-batch"))  # all of it in one transaction

    single, batch = _state("s", live_events), _state("b", live_events)
    for key in single:
        assert batch[key] == single[key], key
    # And the stream did what it says.
    assert single["conversations"]["u2"][0] == "open"
    assert single["outbound"]["out-2"][0] == "seen" and single["outbound"]["out-3"][0] == "failed"
    assert single["unmatched"] == [("out-9", "delivered")]
    assert len(single["inbound"]) == 8
    summaries = list(
        WebhookEvent.objects.filter(connection_id=batch_account.pk).order_by("pk").values_list("summary", flat=True)
    )
    assert summaries[2] == {"duplicate": 1} and summaries[-1] == {"inbound": 1, "duplicate": 1}
    assert summaries[9] == {"ignored_unknown_sender": 1} and summaries[10] == {"unrecognized": 1}
    assert summaries[11] == {"inbound": 2, "invalid": 1}
    if rollups_mode == "deferred":  # the batch's marks committed with it; the single path's after each commit
        assert single["marks"] and bool(drains)


@pytest.mark.django_db(transaction=True)
def test_a_single_result_batch_writes_its_roll_up_marks_in_its_own_transaction(client, account, deferred, settings):
    """The marks (domain_events.run_before_commit) are written before the batch's commit: one commit per batch."""
    settings.REPORTS_ROLLUPS = "deferred"
    assert post(client, account, fixture("inbound_text")).status_code == 200
    statements: list[tuple[str, bool]] = []

    def record(execute, sql, params, many, context):
        statements.append((sql, connection.in_atomic_block))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        assert processor.drain_once(1) == 1
    marks = [inside for sql, inside in statements if "INSERT INTO" in sql and ReportMarkBatch._meta.db_table in sql]
    assert marks == [True]
    assert list(rollups.marked()) == [Conversation.objects.get().pk]
    # Nothing after the commit touches the database: the mark was the only write of a subscriber.
    last_inside = max(i for i, (_, inside) in enumerate(statements) if inside)
    assert all("INSERT" not in sql and "UPDATE" not in sql for sql, _ in statements[last_inside + 1 :])


# --- the processor process's loop -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_loop_applies_a_request_as_soon_as_the_webhook_wakes_it(client, account, deferred):
    loop = processor.Processor(idle_wait=30.0)  # a poll would come far too late: only the wake-up can explain it
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        deadline = threading.Event()
        while not deadline.wait(0.05):  # listening once the first (empty) drain is over
            if loop.listening:
                break
        assert post(client, account, fixture("inbound_text")).status_code == 200
        for _ in range(100):
            if Message.objects.exists():
                break
            deadline.wait(0.05)
        assert Message.objects.count() == 1
        assert WebhookEvent.objects.get().verdict == "processed"
    finally:
        loop.stop()
        thread.join(timeout=5)
    assert not thread.is_alive()


@pytest.mark.django_db(transaction=True)
def test_the_loop_polls_when_no_wake_up_comes(client, account, deferred, monkeypatch):
    # Deaf to wake-ups (as when Redis or the listening connection is down): only the poll can find the request.
    monkeypatch.setattr(processor.Processor, "_wait", lambda self: self.stopping.wait(self.idle_wait))
    loop = processor.Processor(idle_wait=0.2)
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        assert post(client, account, fixture("inbound_text")).status_code == 200
        waited = threading.Event()
        for _ in range(100):
            if Message.objects.exists():
                break
            waited.wait(0.05)
        assert Message.objects.count() == 1
    finally:
        loop.stop()
        thread.join(timeout=5)


def _connect():
    import psycopg

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    return psycopg.connect(**params, autocommit=True)


def _waiters() -> set[int]:
    return set(WebhookWaiter.objects.values_list("pid", flat=True))


def _wake_ups_then(listener, marker: str) -> list[str]:
    """The wake-ups the listener got, up to a notification `marker` sent now: notifications arrive in commit
    order, so whatever a request stored before it sent is in the list (no wait for an absence)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [processor.NOTIFY_CHANNEL, marker])
    payloads = []
    for note in listener.notifies(timeout=10):
        if note.payload == marker:
            return payloads
        payloads.append(note.payload)
    raise AssertionError(f"the marker never arrived; got {payloads}")


def _idle_processor() -> processor.Processor:
    """A processor with its listening connection, waiting for nothing yet (the test moves its row by hand)."""
    idle = processor.Processor()
    idle.listener = _connect()
    return idle


@pytest.mark.django_db(transaction=True)
def test_a_stored_request_wakes_the_processors_only_while_one_waits(client, account, deferred):
    """The notification makes its commit wait for every other notifying commit's flush (a cluster-wide lock):
    while no processor waits (each busy one removed its row), the webhooks do not notify."""
    listener = _connect()
    first, second = _idle_processor(), _idle_processor()
    try:
        listener.execute(f"LISTEN {processor.NOTIFY_CHANNEL}")
        assert _waiters() == set()
        assert post(client, account, fixture("inbound_text")).status_code == 200
        assert _wake_ups_then(listener, "marker-1") == []
        first._set_waiting(True)
        second._set_waiting(True)
        assert _waiters() == {first.listener.info.backend_pid, second.listener.info.backend_pid}
        body = p.inbound_event(p.inbound_result(user_id="u2", business_id="biz-1", content=p.text_content("two")))
        assert post(client, account, body).status_code == 200
        assert _wake_ups_then(listener, "marker-2") == [""]
        # One of them takes a batch of several and stops waiting: the other still waits, and is still woken.
        first._set_waiting(False)
        assert _waiters() == {second.listener.info.backend_pid}
        body = p.inbound_event(p.inbound_result(user_id="u3", business_id="biz-1", content=p.text_content("three")))
        assert post(client, account, body).status_code == 200
        assert _wake_ups_then(listener, "marker-3") == [""]
        second._set_waiting(False)
        body = p.inbound_event(p.inbound_result(user_id="u4", business_id="biz-1", content=p.text_content("four")))
        assert post(client, account, body).status_code == 200
        assert _wake_ups_then(listener, "marker-4") == []
        assert WebhookEvent.objects.filter(verdict="pending").count() == 4  # stored either way
    finally:
        for connection_ in (listener, first.listener, second.listener):
            connection_.close()
        WebhookWaiter.objects.all().delete()


@pytest.mark.django_db(transaction=True)
def test_a_processor_that_starts_waiting_removes_the_rows_of_processors_gone(deferred):
    gone = _connect()
    gone_pid = gone.info.backend_pid
    gone.close()  # a processor killed while it waited: its backend ended, its row stayed
    WebhookWaiter.objects.create(pid=gone_pid, backend_start=timezone.now())
    alive = _idle_processor()
    try:
        alive._set_waiting(True)
        assert _waiters() == {alive.listener.info.backend_pid}
    finally:
        alive.listener.close()
        WebhookWaiter.objects.all().delete()


@pytest.mark.django_db(transaction=True)
def test_processors_of_different_database_roles_keep_each_others_waiting_rows(deferred):
    """A role without pg_read_all_stats sees another role's backends without their start time: the clean-up must
    not take that for a backend gone (the other processor would get no wake-ups until its next idle look)."""
    import uuid

    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")
        if not cursor.fetchone()[0]:
            pytest.skip("needs a database user that may create roles (CI's and the README's setup: postgres)")
        role, password = f"processor_{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
        cursor.execute(f"CREATE ROLE {role} LOGIN PASSWORD %s", [password])
        cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON inbox_webhookwaiter TO {role}")
    first = _idle_processor()
    second = processor.Processor()
    try:
        import psycopg

        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        second.listener = psycopg.connect(**{**params, "user": role, "password": password}, autocommit=True)
        first._set_waiting(True)
        second._set_waiting(True)
        assert _waiters() == {first.listener.info.backend_pid, second.listener.info.backend_pid}
    finally:
        for waiting in (first, second):
            if waiting.listener is not None:
                waiting.listener.close()
        WebhookWaiter.objects.all().delete()
        with connection.cursor() as cursor:
            cursor.execute(f"DROP OWNED BY {role}")
            cursor.execute(f"DROP ROLE {role}")


@pytest.mark.django_db(transaction=True)
def test_a_waiting_loop_is_woken_while_another_processor_works_under_load(client, account, deferred, monkeypatch):
    """The loop waits (its row written, its looks after writing it done); another processor waits, then takes a
    batch of several and removes its own row. A request stored now must still wake the loop: its 30 s poll cannot
    explain the request being applied."""
    looks = []
    looked_twice = threading.Event()
    pending_now = processor.Processor._pending_now

    def counted(self):
        looks.append(self)
        if len(looks) >= 2:
            looked_twice.set()
        return pending_now(self)

    monkeypatch.setattr(processor.Processor, "_pending_now", counted)
    loop = processor.Processor(idle_wait=30.0)
    other = _idle_processor()
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    waited = threading.Event()
    try:
        assert looked_twice.wait(10)  # the look right after writing its row and the one shortly after
        other._set_waiting(True)
        other._set_waiting(False)  # what a processor does after a batch of several
        assert _waiters() == {loop.listener.info.backend_pid}
        assert post(client, account, fixture("inbound_text")).status_code == 200
        for _ in range(100):
            if Message.objects.exists():
                break
            waited.wait(0.05)
        assert Message.objects.count() == 1
        assert len(looks) == 2  # woken by the notification, not found by a look
    finally:
        loop.stop()
        thread.join(timeout=5)
        other.listener.close()
    assert not thread.is_alive()
    assert _waiters() == set()  # a stopped processor's row is gone


@pytest.mark.django_db(transaction=True)
def test_after_a_batch_of_several_the_loop_is_woken_again(client, account, deferred):
    loop = processor.Processor(idle_wait=30.0)  # only wake-ups or the rechecks can explain what gets applied
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    waited = threading.Event()
    try:
        for _ in range(100):
            if loop.listening:
                break
            waited.wait(0.05)
        with transaction.atomic():  # three requests in one commit: one wake-up, one batch of three
            for n in range(3):
                result = p.inbound_result(user_id=f"u{n}", business_id="biz-1", content=p.text_content("x"))
                body = p.inbound_event(result)
                assert post(client, account, body).status_code == 200
        for _ in range(100):
            if Message.objects.count() == 3:
                break
            waited.wait(0.05)
        assert Message.objects.count() == 3
        # The batch of three removed the loop's row; waiting again writes it (and looks for what came meanwhile).
        # The next request is applied long before the 30 s poll: a wake-up, or the look right after writing it.
        assert post(client, account, fixture("inbound_text")).status_code == 200
        for _ in range(100):
            if Message.objects.count() == 4:
                break
            waited.wait(0.05)
        assert Message.objects.count() == 4
    finally:
        loop.stop()
        thread.join(timeout=5)
    assert not thread.is_alive()


def test_a_batch_stops_at_about_max_results_and_leaves_the_rest_pending(client, account, deferred):
    def body(n: int, size: int) -> dict:
        return p.inbound_event(
            *[
                p.inbound_result(user_id="u", business_id="biz-1", content=p.text_content(f"{n}-{i}"))
                for i in range(size)
            ]
        )

    for n in range(3):
        post(client, account, body(n, 4))
    assert processor.drain_once(10, max_results=6) == 1  # 4 + 4 > 6: one request
    assert processor.drain_once(10, max_results=8) == 2
    assert Message.objects.count() == 12
    post(client, account, body(9, 20))
    assert processor.drain_once(10, max_results=6) == 1  # a request larger than the cap still goes, alone
    assert Message.objects.count() == 32


# --- a batch costs a fixed number of statements ------------------------------------------------------------------


def _statements(account_id: int, results: list[dict]) -> int:
    from tiktok_channel.infobip_webhooks import apply_results

    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        apply_results([(account_id, results)])
    return len(queries)


def test_one_result_and_thirty_cost_the_same_statements(account):
    # Thirty: SQLite's bulk INSERT splits at 999 parameters (about 40 messages), PostgreSQL's does not.
    from tiktok_channel.infobip_webhooks import inbox_for_sender

    inbox_for_sender(account.pk, "biz-1")  # the sender lookup is cached per process: out of the count

    def inbound(prefix: str, n: int) -> dict:
        return p.inbound_result(
            user_id=f"{prefix}-user-{n}", business_id="biz-1", content=p.text_content("hi"), message_id=f"{prefix}-{n}"
        )

    def seen(prefix: str, n: int) -> dict:
        return p.seen_report(
            message_id=f"{prefix}-{n}", business_id="biz-1", user_id=f"{prefix}-user-{n}", sent_at=p.infobip_time()
        )

    def outbound(prefix: str, count: int) -> None:  # replies to report on, one per conversation
        for n in range(count):
            conversation = Message.objects.get(provider_message_id=f"{prefix}-{n}").conversation
            Message.objects.create(
                conversation=conversation,
                direction="out",
                type="text",
                text="re",
                channel="tiktok",
                provider_message_id=f"{prefix}-out-{n}",
                status="accepted",
                sent_at=timezone.now(),
            )

    one = _statements(account.pk, [inbound("a", 0)])
    thirty = _statements(account.pk, [inbound("b", n) for n in range(30)])
    assert one == thirty
    outbound("a", 1)
    outbound("b", 30)
    one = _statements(account.pk, [seen("a-out", 0)])
    thirty = _statements(account.pk, [seen("b-out", n) for n in range(30)])
    assert one == thirty
    assert Message.objects.filter(status="seen").count() == 31


def test_the_ledger_keeps_only_allow_listed_headers(client, account, deferred):
    """Unknown headers (a token a proxy adds, a cookie under another name) are not stored verbatim."""
    headers = {"X-Request-Id": "r-2", "User-Agent": "Infobip", "X-Api-Token": "s3cr3t", "X-Custom-Session": "abc"}
    assert post(client, account, fixture("inbound_text"), kind="inbound", headers=headers).status_code == 200
    stored = WebhookEvent.objects.get().headers
    assert stored["X-Request-Id"] == "r-2" and stored["User-Agent"] == "Infobip"
    assert stored["Content-Type"] == "application/json"
    assert "X-Api-Token" not in stored and "X-Custom-Session" not in stored and "X-Hub-Signature" not in stored


def test_the_claim_is_one_statement_and_builds_the_rows_the_orm_would(client, account, deferred):
    headers = {"X-Request-Id": "r-claim"}
    for name in ("inbound_text", "seen", "delivery_delivered"):
        assert post(client, account, fixture(name), headers=headers).status_code == 200
    expected = list(WebhookEvent.objects.filter(verdict="pending").order_by("pk"))
    fields = [field.attname for field in WebhookEvent._meta.concrete_fields]

    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        claimed = processor._claim_pending(2)
    assert len([q for q in queries if "inbox_webhookevent" in q["sql"]]) == 1
    # The JSON columns a batch never reads are not decoded; read anyway, each loads as the ORM's defer() would.
    assert claimed[0].get_deferred_fields() == set(processor.CLAIM_DEFERRED) == {"headers", "summary", "problems"}
    assert [[getattr(row, name) for name in fields] for row in claimed] == [
        [getattr(row, name) for name in fields] for row in expected[:2]
    ]
    assert claimed[0].headers["X-Request-Id"] == "r-claim" and claimed[0].summary == {}
    assert not claimed[0]._state.adding  # a stored row: saving it updates, as the ORM's would


def test_a_batch_reads_the_ledger_once(client, account, deferred):
    """The verdicts are written without loading the columns the claim left out (no query per row)."""
    for name in ("inbound_text", "seen", "delivery_delivered"):
        assert post(client, account, fixture(name)).status_code == 200
    reads = []

    def record(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("SELECT") and WebhookEvent._meta.db_table in sql:
            reads.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        assert processor.drain_once(10) == 3
    assert len(reads) == 1  # the claim
    summaries = list(WebhookEvent.objects.order_by("pk").values_list("verdict", "summary", "problems"))
    assert [row[0] for row in summaries] == ["processed"] * 3 and summaries[0][1:] == ({"inbound": 1}, [])


# --- a live tick's path through the processor (bench/README.md "Ticks") ------------------------------------------


def test_the_wait_after_a_batch_grows_with_the_batch():
    loop = processor.Processor(batch_size=200, linger=0.02)
    assert loop.linger_after(1) == 0.0  # a tick alone: at once
    assert 0.0 < loop.linger_after(2) < loop.linger_after(5) < 0.02  # a few that piled up: hardly any wait
    assert loop.linger_after(processor.LINGER_FULL_AT) == loop.linger_after(150) == 0.02  # load: the whole linger
    assert loop.linger_after(200) == 0.0  # a full batch: more is waiting


@pytest.mark.django_db(transaction=True)
def test_a_batch_commits_without_waiting_for_its_flush_and_the_setting_ends_with_it(
    client, account, deferred, monkeypatch
):
    """The processor's transaction is asynchronous-commit on PostgreSQL (its ledger rows stay pending if the commit
    is lost), only that transaction: the connection's next one is synchronous again."""
    from django.db import connection

    from inbox import providers

    backend = providers.get("infobip")
    seen: list[str | None] = []

    def setting() -> str | None:
        if connection.vendor != "postgresql":
            return None  # SQLite has no such setting: the processor sets nothing there
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('synchronous_commit'), current_setting('lock_timeout')")
            return "/".join(cursor.fetchone())

    original = backend.process_webhooks

    def process(rows):
        seen.append(setting())
        return original(rows)

    monkeypatch.setattr(backend, "process_webhooks", process)  # the real backend, observed from inside the batch
    assert post(client, account, fixture("inbound_text")).status_code == 200
    assert processor.drain_once(10) == 1
    postgres = connection.vendor == "postgresql"
    # Inside: asynchronous commit, and the claim's lock timeout already back to the default.
    assert seen == (["off/0"] if postgres else [None])
    with transaction.atomic():
        assert setting() == ("on/0" if postgres else None)
    assert Message.objects.count() == 1 and WebhookEvent.objects.get().verdict == "processed"


def test_a_batch_records_every_verdict_in_one_statement(client, account, deferred):
    good = p.inbound_event(p.inbound_result(user_id="u1", business_id="biz-1", content=p.text_content("hi")))
    odd = {"results": [{"message": {"type": "TEXT", "text": "no id"}, "sender": "user-1", "to": "biz-1"}]}
    for body in (good, odd, good):  # processed, partial (kept, not applied), processed (a duplicate)
        assert post(client, account, body).status_code == 200
    ledger = []

    def record(execute, sql, params, many, context):
        if sql.lstrip().startswith("UPDATE") and WebhookEvent._meta.db_table in sql:
            ledger.append(many)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        assert processor.drain_once(10) == 3
    assert ledger == [False]  # one statement, not one per request
    rows = list(WebhookEvent.objects.order_by("pk").values_list("verdict", "summary", "result_count", "problems"))
    assert [row[0] for row in rows] == ["processed", "partial", "processed"]
    assert rows[0][1] == {"inbound": 1} and rows[2][1] == {"duplicate": 1}
    assert rows[1][1:] == ({"invalid": 1}, 1, [{"index": 0, "reason": "messageId is required"}])


def _savepoints(statements: list[str]) -> list[str]:
    return [sql.split()[0] for sql in statements if sql.lstrip().upper().startswith(("SAVEPOINT", "ROLLBACK TO"))]


def test_a_batch_is_applied_all_together_without_a_savepoint(client, account, deferred):
    for n in range(3):
        body = p.inbound_event(p.inbound_result(user_id=f"u{n}", business_id="biz-1", content=p.text_content("x")))
        assert post(client, account, body).status_code == 200
    statements = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        assert processor.drain_once(10) == 3
    # The test's own transaction makes drain_once's atomic block a savepoint: that one, and no other.
    assert _savepoints(statements) == ["SAVEPOINT"]
    assert Message.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_batch_that_fails_is_rolled_back_and_redone_request_by_request(client, account, deferred, monkeypatch):
    import tiktok_channel.infobip_webhooks as infobip_webhooks

    real = infobip_webhooks.messages_receive

    def fails_on_boom(events):  # a bug that only one result triggers, after the batch's rows are written
        created = real(events)
        if any(event.text == "boom" for _, event in events):
            raise RuntimeError("cannot take boom")
        return created

    texts = ["first", "boom", "last"]
    for n, text in enumerate(texts):
        body = p.inbound_event(p.inbound_result(user_id=f"u{n}", business_id="biz-1", content=p.text_content(text)))
        assert post(client, account, body).status_code == 200
    monkeypatch.setattr(infobip_webhooks, "messages_receive", fails_on_boom)
    assert processor.drain_once(10) == 3
    rows = list(WebhookEvent.objects.order_by("pk").values_list("verdict", "summary", "error"))
    assert [row[0] for row in rows] == ["processed", "partial", "processed"]
    assert rows[0][1] == {"inbound": 1} and rows[2][1] == {"inbound": 1}
    assert rows[1][1] == {"error": 1} and "RuntimeError: cannot take boom" in rows[1][2]
    assert sorted(Message.objects.values_list("text", flat=True)) == ["first", "last"]  # nothing lost, nothing twice
    assert Contact.objects.count() == 2 and Conversation.objects.count() == 2  # the bulk try left nothing behind


def _plan(queryset) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny test table: show which index can serve the query
        sql, params = queryset.query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("SET LOCAL enable_seqscan = on")
    return plan


def test_the_ledgers_queries_have_their_index(client, account, deferred):
    """The ledger keeps four indexes (every request writes each one): the admin's pages, its verdict filter, the
    claim and the health page's waiting count must each still find one."""
    assert post(client, account, fixture("inbound_text")).status_code == 200
    # A ledger as it is in use (mostly processed rows), its statistics current: the plans do not then depend on
    # whether autoanalyze happened to see the tiny test table, or when.
    now = timezone.now()
    WebhookEvent.objects.bulk_create(
        WebhookEvent(
            provider="infobip",
            connection_id=account.pk,
            path_kind="any",
            received_at=now - timedelta(seconds=i),
            body="{}",
            verdict="processed",
        )
        for i in range(2000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE inbox_webhookevent")
    admin_page = WebhookEvent.objects.order_by("-received_at", "-id")[:100]
    assert "webhookevent_received_at" in _plan(admin_page)
    for verdict in ("failed", "partial", "rejected"):
        filtered = WebhookEvent.objects.filter(verdict=verdict).order_by("-received_at", "-id")[:100]
        assert "webhookevent_trouble" in _plan(filtered)
    waiting = WebhookEvent.objects.filter(
        verdict="pending", provider="infobip", connection_id=account.pk, received_at__lt=timezone.now()
    )
    assert "webhookevent_pending" in _plan(waiting)
    indexes = {index.name for index in WebhookEvent._meta.indexes}
    assert indexes == {"webhookevent_pending", "webhookevent_trouble"}  # a new one costs every request: say why


def _pages() -> list[int]:
    with connection.cursor() as cursor:  # the heap page of each ledger row (its ctid's block number)
        cursor.execute("SELECT (ctid::text::point)[0]::int FROM inbox_webhookevent ORDER BY id")
        return [row[0] for row in cursor.fetchall()]


def test_a_verdict_is_written_on_its_rows_own_page(client, account, deferred):
    """The ledger's pages are filled half by the INSERTs (migration 0040): each verdict's new row version then fits on
    the row's page, and its WAL record carries the changed bytes, not a copy of the whole body."""
    for n in range(12):  # rows of ~1 kB: a page filled to the brim would hold seven
        text = f"{n} " + "x" * 800
        body = p.inbound_event(p.inbound_result(user_id=f"u{n}", business_id="biz-1", content=p.text_content(text)))
        assert post(client, account, body).status_code == 200
    before = _pages()
    assert processor.drain_once(20) == 12
    assert set(WebhookEvent.objects.values_list("verdict", flat=True)) == {"processed"}
    assert _pages() == before
