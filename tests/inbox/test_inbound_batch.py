"""The set-based inbound batch (inbox/services/inbound.py): what one batch decides and what it gives back."""

import gc
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections, transaction
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext

from inbox.events import InboundMessage
from inbox.models import AuditLog, Contact, Conversation, Message
from inbox.services import messages_receive

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def event(user: str, n: int, minutes: int, **kw) -> InboundMessage:
    return InboundMessage(
        channel="tiktok",
        endpoint_id="biz-1",
        channel_user_id=user,
        provider_message_id=f"m-{n}",
        provider_conversation_id=f"c-{user}",
        sent_at=T0 + timedelta(minutes=minutes),
        type="text",
        text=f"{user} {n}",
        provider="infobip",
        **kw,
    )


def test_one_batch_with_duplicates_inside_and_against_stored_rows_new_and_existing_contacts_and_a_reopen(inbox):
    [(stored, created)] = messages_receive([(inbox.pk, event("old", 1, 0))])
    assert created
    Conversation.objects.filter(pk=stored.conversation_id).update(status="resolved")
    old_contact = Contact.objects.get(channel_user_id="old")

    items = [
        (inbox.pk, event("old", 1, 0)),  # stored before
        (inbox.pk, event("old", 2, 5)),  # new: reopens
        (inbox.pk, event("new", 3, 6, referral={"source": "ad", "ad_id": "ad-1"})),
        (inbox.pk, event("new", 3, 6)),  # the same message again inside the batch
        (inbox.pk, event("new", 4, 2)),  # older than the previous one: the window does not move back
        (inbox.pk, event("sent", 5, 7, sent_outside=True)),
    ]
    received = messages_receive(items)

    assert [created for _, created in received] == [False, True, True, False, True, True]
    assert received[0][0].pk == stored.pk
    assert received[3][0].pk == received[2][0].pk
    assert Message.objects.count() == 5
    # The returned messages are the stored rows, every column (built without the ORM, so compared to it).
    for message, _ in received:
        assert model_to_dict(message) == model_to_dict(Message.objects.get(pk=message.pk))
        assert message.created_at == Message.objects.get(pk=message.pk).created_at
        assert not message._state.adding

    old = Conversation.objects.get(contact=old_contact)
    assert (old.status, old.version, old.unread_count) == ("open", 3, 2)
    assert old.last_inbound_at == T0 + timedelta(minutes=5) and old.last_message_preview == "old 2"
    assert AuditLog.objects.get(action="conversation.reopened").before == {"status": "resolved"}

    new = Conversation.objects.get(contact__channel_user_id="new")
    assert new.last_inbound_at == T0 + timedelta(minutes=6) and new.last_message_preview == "new 3"
    assert new.referral == {"source": "ad", "ad_id": "ad-1"} and new.unread_count == 2 and new.version == 3
    contact = Contact.objects.get(channel_user_id="new")
    assert contact.first_seen_at == T0 + timedelta(minutes=6) and contact.last_seen_at == T0 + timedelta(minutes=6)

    sent = Message.objects.get(provider_message_id="m-5")
    assert (sent.direction, sent.status, sent.accepted_at) == ("out", "accepted", T0 + timedelta(minutes=7))
    outside = Conversation.objects.get(contact__channel_user_id="sent")
    assert outside.last_inbound_at is None and outside.unread_count == 0


def test_last_seen_never_moves_back(inbox):
    messages_receive([(inbox.pk, event("u", 1, 10))])
    messages_receive([(inbox.pk, event("u", 2, 3))])
    assert Contact.objects.get(channel_user_id="u").last_seen_at == T0 + timedelta(minutes=10)
    messages_receive([(inbox.pk, event("u", 3, 12))])
    assert Contact.objects.get(channel_user_id="u").last_seen_at == T0 + timedelta(minutes=12)
    # A contact the batch creates: first seen at its first event, last seen at its latest.
    messages_receive([(inbox.pk, event("v", 4, 5)), (inbox.pk, event("v", 5, 9)), (inbox.pk, event("v", 6, 7))])
    v = Contact.objects.get(channel_user_id="v")
    assert (v.first_seen_at, v.last_seen_at) == (T0 + timedelta(minutes=5), T0 + timedelta(minutes=9))


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the set-based statements are PostgreSQL's (SQLite keeps the ORM path)"
)
def test_a_batch_costs_the_same_statements_for_one_event_and_for_two_hundred(inbox):
    with CaptureQueriesContext(connection) as one:
        messages_receive([(inbox.pk, event("a", 0, 0))])
    with CaptureQueriesContext(connection) as many:
        messages_receive([(inbox.pk, event(f"b{n}", 100 + n, n)) for n in range(200)])
    assert len(one) == len(many)
    assert Message.objects.count() == 201


@pytest.mark.skipif(connection.vendor != "postgresql", reason="ids are allocated from PostgreSQL's sequences")
def test_a_conversation_the_batch_opens_is_written_once_complete(inbox):
    with CaptureQueriesContext(connection) as queries:
        [(message, _), (second, _)] = messages_receive([(inbox.pk, event("n", 1, 0)), (inbox.pk, event("n", 2, 3))])
    writes = [q["sql"].split(" (")[0] for q in queries if '"inbox_conversation"' in q["sql"].split(" (")[0]]
    assert writes == ['INSERT INTO "inbox_conversation"']  # no UPDATE for the list row after it
    conversation = Conversation.objects.get(pk=message.conversation_id)
    assert (conversation.last_message_id, conversation.last_message_preview) == (second.pk, "n 2")
    assert (conversation.version, conversation.unread_count, conversation.provider) == (3, 2, "infobip")
    assert conversation.last_inbound_at == conversation.last_activity_at == T0 + timedelta(minutes=3)
    assert second.pk > message.pk and Message.objects.get(pk=second.pk).conversation_id == conversation.pk


def test_a_batch_and_its_subscribers_run_with_the_cyclic_collector_paused_then_restored(
    inbox, monkeypatch, django_capture_on_commit_callbacks
):
    """The batch's statements and every subscriber of its events run with Python's cyclic collector off (its
    collections, triggered by the batch's rows, walked the whole heap: 35–80 µs of an event's ~200); afterwards it
    is on again, also when the batch fails; a collector already off stays off."""
    from inbox import domain_events

    at_statements: list[bool] = []
    at_subscribers: list[bool] = []

    def record(execute, sql, params, many, context):
        at_statements.append(gc.isenabled())
        return execute(sql, params, many, context)

    def subscriber(events):
        at_subscribers.append(gc.isenabled())

    monkeypatch.setattr(domain_events, "_subscribers", [*domain_events._subscribers, subscriber])
    assert gc.isenabled()
    with connection.execute_wrapper(record), django_capture_on_commit_callbacks(execute=True):
        messages_receive([(inbox.pk, event(f"g{n}", n, n)) for n in range(20)])
    assert len(at_statements) >= 4 and not any(at_statements)
    assert at_subscribers == [False]
    assert gc.isenabled()
    with pytest.raises(Contact.DoesNotExist), transaction.atomic():
        messages_receive([(inbox.pk, event("h", 100, 0))])
        Contact.objects.get(channel_user_id="nobody")
    assert gc.isenabled()
    with pytest.raises(AttributeError), transaction.atomic():
        messages_receive([(inbox.pk, None)])  # fails inside the pause
    assert gc.isenabled()
    gc.disable()
    try:
        messages_receive([(inbox.pk, event("k", 200, 0))])
        assert not gc.isenabled()
    finally:
        gc.enable()


def _plan(sql: str, params: list, off=("enable_seqscan", "enable_bitmapscan")) -> str:
    with connection.cursor() as cursor:
        for option in off:  # the planner's other ways priced out: what remains says whether an index serves it
            cursor.execute(f"SET LOCAL {option} = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.skipif(connection.vendor != "postgresql", reason="index names and plans are PostgreSQL's")
def test_every_conversation_index_an_inbound_message_writes_is_one_no_other_index_could_stand_for(inbox):
    """Every inbound message's UPDATE of its conversation (the activity moves: no HOT update) writes one entry into
    each of the table's indexes. None may be the leading columns of another: the foreign keys' own indexes are
    folded into the indexes that lead with them (`contact` into the unique constraint, which leads with it), and the
    activity has no index of its own (every list reads it through the inbox's or the assignee's)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, i.indkey::int[], i.indpred IS NOT NULL FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'inbox_conversation'::regclass"
        )
        indexes = {name: (list(keys), partial) for name, keys, partial in cursor.fetchall()}
    full = {name: keys for name, (keys, partial) in indexes.items() if not partial}
    for name, keys in full.items():
        for other, other_keys in full.items():
            assert other == name or other_keys[: len(keys)] != keys, f"{name} is a prefix of {other}"
    assert "conversation_unique_contact_per_inbox" in full and len(indexes) == 6, sorted(indexes)

    # An inbox with many conversations, as the planner knows them: the inbox alone is not what finds one.
    messages_receive([(inbox.pk, event(f"u{n}", 100 + n, 0)) for n in range(300)] + [(inbox.pk, event("p", 1, 0))])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE inbox_conversation")
    contact = Contact.objects.get(channel_user_id="p")
    # A contact's conversations (its page, merging contacts, PROTECT on delete) by the unique constraint's index.
    sql, params = Conversation.objects.filter(contact=contact).values_list("pk").query.sql_with_params()
    assert "conversation_unique_contact_per_inbox" in _plan(sql, params)
    # The batch finds its conversations by the whole key: the same index, its every column a condition.
    sql = "SELECT id FROM inbox_conversation WHERE inbox_id = %s AND contact_id = %s AND kind = %s AND subject_id = %s"
    plan = _plan(sql, [inbox.pk, contact.pk, "message", ""])
    assert "Index Scan using conversation_unique_contact_per_inbox" in plan and "Filter" not in plan, plan


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent transactions need PostgreSQL")
def test_two_batches_opening_one_conversation_at_once_store_each_message_once(inbox, live_events):
    """The second batch finds no conversation, opens it too, waits at the unique key for the first to commit,
    and then applies itself again to the first one's conversation: one conversation, each message once."""
    for user in ("race", "other"):
        Contact.objects.create(
            channel="tiktok", endpoint_id="biz-1", channel_user_id=user, first_seen_at=T0, last_seen_at=T0
        )
    first_applied, release = threading.Event(), threading.Event()
    results: dict[str, list] = {}

    def batch(name: str, items, hold: bool) -> None:
        try:
            with transaction.atomic():
                results[name] = messages_receive(items)
                if hold:
                    first_applied.set()
                    release.wait(30)
        finally:
            connections.close_all()

    first = threading.Thread(
        target=batch, args=("first", [(inbox.pk, event("race", 1, 0)), (inbox.pk, event("race", 2, 1))], True)
    )
    second = threading.Thread(
        target=batch,
        args=(
            "second",
            # "other": a conversation only the second batch opens, inserted by the statement that lost the race —
            # deleted with it and opened again, not taken for a stored row and moved twice.
            [(inbox.pk, event("race", 2, 1)), (inbox.pk, event("race", 3, 2)), (inbox.pk, event("other", 4, 3))],
            False,
        ),
    )
    first.start()
    assert first_applied.wait(30)
    second.start()
    deadline = time.monotonic() + 20
    waiting = 0
    with connection.cursor() as cursor:
        while not waiting and time.monotonic() < deadline:  # the second batch waits for the first's conversation
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            waiting = cursor.fetchone()[0]
            time.sleep(0.01)
    assert waiting, "the second batch never waited for the first"
    release.set()
    first.join(30)
    second.join(30)

    assert [created for _, created in results["first"]] == [True, True]
    assert [created for _, created in results["second"]] == [False, True, True]
    assert results["second"][0][0].pk == results["first"][1][0].pk
    other = Conversation.objects.get(contact__channel_user_id="other")
    assert (other.version, other.unread_count, other.last_message_id) == (2, 1, results["second"][2][0].pk)
    conversation = Conversation.objects.get(contact__channel_user_id="race")
    assert Message.objects.filter(conversation=conversation).count() == 3
    assert (conversation.version, conversation.unread_count, conversation.last_message_preview) == (4, 3, "race 3")
    created = Counter((group, e["conversation_id"]) for group, e in live_events if e["type"] == "conversation.created")
    assert {pk for _, pk in created} == {conversation.pk, other.pk} and set(created.values()) == {1}  # each once


@pytest.mark.skipif(connection.vendor != "postgresql", reason="json_to_recordset is PostgreSQL's")
def test_a_record_set_carries_every_time_as_its_instant_repeated_or_not():
    """`recordset` writes each distinct time's ISO form once (a batch repeats its times): repeats, None, and one
    instant in two zones come back as the same instants, in order."""
    from zoneinfo import ZoneInfo

    from inbox.db import recordset

    later = T0 + timedelta(seconds=1, microseconds=5)
    same_instant_elsewhere = T0.astimezone(ZoneInfo("Asia/Tokyo"))
    times = [T0, later, None, T0, same_instant_elsewhere, later]
    table, payload = recordset({"n": ("integer", list(range(len(times)))), "at": ("timestamp with time zone", times)})
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT n, at FROM {table} ORDER BY n", [payload])  # noqa: S608 - our SQL
        assert [at for _, at in cursor.fetchall()] == times


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the record set is PostgreSQL's")
def test_a_record_set_keeps_each_column_s_type_nulls_and_order_and_a_too_long_value_is_refused_not_cut():
    """One JSON array per column, spread side by side: every row in order, SQL NULL for None (a jsonb column too, not
    JSON's null), nested JSON as it is, text with quotes and non-ASCII as it is; a value longer than its column is
    refused by the INSERT, as it was through `json_to_recordset`, never silently cut by a cast."""
    from django.db import DataError

    from inbox.db import insert_rows, recordset

    values = {
        "n": ("bigint", [1, 2, 3]),
        "flag": ("boolean", [True, False, None]),
        "label": ("varchar(5)", ['a "b"', None, "é✓"]),
        "doc": ("jsonb", [{"a": [1, {"b": None}]}, None, {}]),
    }
    table, payload = recordset(values)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT n, flag, label, doc IS NULL, doc::text FROM {table}", [payload])  # noqa: S608
        rows = cursor.fetchall()
    assert rows == [
        (1, True, 'a "b"', False, '{"a": [1, {"b": null}]}'),
        (2, False, None, True, None),
        (3, None, "é✓", False, "{}"),
    ]
    with pytest.raises(DataError), transaction.atomic():
        insert_rows(
            Contact,
            {"channel": ["c" * 33], "endpoint_id": ["e"], "channel_user_id": ["u"], "first_seen_at": [T0]},
        )


@pytest.mark.skipif(connection.vendor != "postgresql", reason="HOT updates and the statistics are PostgreSQL's")
def test_a_batch_moving_the_last_seen_of_every_contact_on_their_pages_updates_each_in_place(inbox):
    """Migration 0043: the contacts' pages are filled half, so a batch that moves `last_seen_at` of every contact of a
    page at once (the old versions are its own: nothing to prune yet) finds room for each new version on its page — a
    HOT update, no new index entries (the fill 0031 left, 80 %, gave room to about a quarter)."""
    users = [f"user-{n:04}" for n in range(300)]  # several pages of contacts
    messages_receive([(inbox.pk, event(user, n, 0)) for n, user in enumerate(users)])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_stat_get_xact_tuples_updated(c.oid), pg_stat_get_xact_tuples_hot_updated(c.oid)"
            " FROM pg_class c WHERE c.relname = 'inbox_contact'"
        )
        before = cursor.fetchone()
        messages_receive([(inbox.pk, event(user, 1000 + n, 5)) for n, user in enumerate(users)])
        cursor.execute(
            "SELECT pg_stat_get_xact_tuples_updated(c.oid), pg_stat_get_xact_tuples_hot_updated(c.oid)"
            " FROM pg_class c WHERE c.relname = 'inbox_contact'"
        )
        after = cursor.fetchone()
    updated, hot = after[0] - before[0], after[1] - before[1]
    assert updated == len(users)
    assert hot == updated
    assert Contact.objects.filter(last_seen_at=T0 + timedelta(minutes=5)).count() == len(users)
