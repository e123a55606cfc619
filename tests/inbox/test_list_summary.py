"""The list-row columns on the conversation (newest message, unread count) after every kind of write, compared
with a recomputation from the raw message rows (inbox/services/summary.py)."""

import importlib
import io
from datetime import timedelta

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inbox.events import InboundMessage, StatusReport
from inbox.models import Conversation, Inbox, Message
from inbox.services import (
    conversation_mark_read,
    message_receive,
    message_send_failed,
    message_status_apply,
    messages_receive,
    note_add,
    reply_queue,
)
from inbox.services.summary import PREVIEW_CHARS, SUMMARY_FIELDS, conversations_summary_rebuild
from tests.inbox.helpers import api

pytestmark = pytest.mark.django_db


def recomputed(conversation_id: int) -> dict:
    """The columns as the raw rows say, in Python: the newest message by (sent_at, id); inbound ones after the
    agents' last look (all of them if they never looked)."""
    conversation = Conversation.objects.get(pk=conversation_id)
    messages = sorted(Message.objects.filter(conversation_id=conversation_id), key=lambda m: (m.sent_at, m.pk))
    seen = conversation.agent_last_seen_at
    unread = sum(1 for m in messages if m.direction == "in" and (seen is None or m.sent_at > seen))
    if not messages:
        return dict(zip(SUMMARY_FIELDS, [None, None, "", "", "", unread], strict=True))
    last = messages[-1]
    return {
        "last_message_id": last.pk,
        "last_message_at": last.sent_at,
        "last_message_direction": last.direction,
        "last_message_type": last.type,
        "last_message_preview": last.text[:PREVIEW_CHARS],
        "unread_count": unread,
    }


def stored(conversation_id: int) -> dict:
    return Conversation.objects.filter(pk=conversation_id).values(*SUMMARY_FIELDS).get()


def assert_right(conversation_id: int) -> dict:
    columns = stored(conversation_id)
    assert columns == recomputed(conversation_id)
    return columns


def event(user: str, n: int, *, ago=timedelta(0), text="hello", **kw) -> InboundMessage:
    return InboundMessage(
        channel="tiktok",
        endpoint_id="biz-1",
        channel_user_id=user,
        provider_message_id=f"{user}-{n}",
        provider_conversation_id=user,
        sent_at=timezone.now() - ago,
        type=kw.pop("type", "text"),
        text=text,
        provider="infobip",
        **kw,
    )


@pytest.fixture
def inbox():
    return Inbox.objects.create(name="Support")


@pytest.fixture
def agent(django_user_model, inbox):
    user = django_user_model.objects.create_user("agent", password="pw")
    inbox.members.add(user)
    return user


def receive(inbox, e: InboundMessage) -> Message:
    message, _ = message_receive(inbox_id=inbox.pk, event=e)
    return message


def test_inbound_messages_move_the_preview_and_count_unread(inbox):
    first = receive(inbox, event("alice", 1, ago=timedelta(minutes=5), text="Where is my order?"))
    columns = assert_right(first.conversation_id)
    assert (columns["last_message_preview"], columns["last_message_direction"], columns["unread_count"]) == (
        "Where is my order?",
        "in",
        1,
    )
    second = receive(inbox, event("alice", 2, type="image", text=""))
    columns = assert_right(first.conversation_id)
    assert (columns["last_message_id"], columns["last_message_type"], columns["unread_count"]) == (
        second.pk,
        "image",
        2,
    )


def test_a_batch_keeps_every_conversation_right_whatever_the_order_and_repeats(inbox):
    now = timezone.now()
    events = [
        event("alice", 1, ago=timedelta(minutes=1), text="newest of alice"),
        event("bob", 1, ago=timedelta(minutes=9), text="bob early"),
        event("alice", 2, ago=timedelta(minutes=7), text="older, delivered later"),
        event("bob", 2, ago=timedelta(minutes=2), text="bob late"),
        event("alice", 1, ago=timedelta(minutes=1), text="newest of alice"),  # a repeat inside the batch
    ]
    received = messages_receive([(inbox.pk, e) for e in events])
    assert [created for _, created in received] == [True, True, True, True, False]
    alice, bob = received[0][0].conversation_id, received[1][0].conversation_id
    assert assert_right(alice)["last_message_preview"] == "newest of alice"
    assert assert_right(alice)["unread_count"] == 2
    assert assert_right(bob)["last_message_preview"] == "bob late"
    assert stored(bob)["last_message_at"] <= now


def test_single_and_batch_calls_give_the_same_columns(inbox):
    other = Inbox.objects.create(name="Other")
    stream = [
        ("carol", 1, timedelta(minutes=4)),
        ("carol", 3, timedelta(minutes=1)),
        ("carol", 2, timedelta(minutes=3)),
        ("dave", 1, timedelta(minutes=2)),
    ]
    one_by_one = [receive(inbox, event(u, n, ago=ago, text=f"{u}{n}")) for u, n, ago in stream]
    batch = messages_receive([(other.pk, event(u, n, ago=ago, text=f"{u}{n}")) for u, n, ago in stream])
    for single, (batched, _) in zip(one_by_one, batch, strict=True):
        a, b = stored(single.conversation_id), stored(batched.conversation_id)
        assert assert_right(single.conversation_id) and assert_right(batched.conversation_id)
        assert (a["last_message_preview"], a["unread_count"]) == (b["last_message_preview"], b["unread_count"])


def test_a_message_delivered_late_counts_unread_but_keeps_the_newer_preview(inbox):
    newer = receive(inbox, event("erin", 2, text="the newer one"))
    receive(inbox, event("erin", 1, ago=timedelta(hours=1), text="sent an hour ago"))
    columns = assert_right(newer.conversation_id)
    assert (columns["last_message_id"], columns["unread_count"]) == (newer.pk, 2)


def test_a_redelivered_event_changes_nothing(inbox):
    message = receive(inbox, event("frank", 1, text="once"))
    before = stored(message.conversation_id)
    again, created = message_receive(inbox_id=inbox.pk, event=event("frank", 1, text="once"))
    assert not created and again.pk == message.pk
    assert assert_right(message.conversation_id) == before


def test_replies_notes_and_reads(inbox, agent):
    conversation_id = receive(inbox, event("gina", 1, ago=timedelta(minutes=1), text="Hi?")).conversation_id
    reply = reply_queue(conversation_id=conversation_id, author=agent, type="text", text="Hello Gina")
    columns = assert_right(conversation_id)
    assert (columns["last_message_id"], columns["last_message_direction"], columns["unread_count"]) == (
        reply.pk,
        "out",
        1,
    )
    note = note_add(conversation_id=conversation_id, author=agent, text="VIP customer " * 40)
    columns = assert_right(conversation_id)
    assert (columns["last_message_id"], columns["last_message_direction"]) == (note.pk, "note")
    assert len(columns["last_message_preview"]) == PREVIEW_CHARS

    conversation_mark_read(conversation_id=conversation_id, actor=agent)
    assert assert_right(conversation_id)["unread_count"] == 0
    receive(inbox, event("gina", 2, text="Thanks"))
    assert assert_right(conversation_id)["unread_count"] == 1


def test_a_message_stamped_after_the_read_stays_unread(inbox, agent):
    """A sender's clock ahead of ours: the read covers what was sent until now, so the count is recounted."""
    ahead = receive(inbox, event("hugo", 1, ago=-timedelta(minutes=10), text="from the future"))
    receive(inbox, event("hugo", 2, text="now"))
    conversation_mark_read(conversation_id=ahead.conversation_id, actor=agent)
    assert assert_right(ahead.conversation_id)["unread_count"] == 1


def test_status_reports_and_failures_leave_the_row_right(inbox, agent):
    conversation_id = receive(inbox, event("ida", 1, text="Hi")).conversation_id
    first = reply_queue(conversation_id=conversation_id, author=agent, type="text", text="first")
    second = reply_queue(conversation_id=conversation_id, author=agent, type="text", text="second")
    before = stored(conversation_id)
    assert message_send_failed(channel="tiktok", provider_message_id=second.provider_message_id, error={"x": 1})
    report = StatusReport(
        channel="tiktok", provider_message_id=first.provider_message_id, status="failed", at=timezone.now()
    )
    assert message_status_apply(report=report) == "applied"
    assert assert_right(conversation_id) == before  # the preview shows no status: nothing to move


def test_echo_of_a_message_sent_outside_the_inbox_is_not_unread(inbox):
    conversation_id = receive(inbox, event("jack", 1, ago=timedelta(minutes=1), text="hi")).conversation_id
    echo = receive(inbox, event("jack", 2, text="sent from the app", sent_outside=True))
    columns = assert_right(conversation_id)
    assert (columns["last_message_id"], columns["last_message_direction"], columns["unread_count"]) == (
        echo.pk,
        "out",
        1,
    )


def test_rebuild_and_the_migration_recompute_from_the_raw_rows(inbox, agent):
    ids = [receive(inbox, event(u, 1, text=f"from {u}")).conversation_id for u in ("kim", "lea")]
    note_add(conversation_id=ids[0], author=agent, text="a note")
    conversation_mark_read(conversation_id=ids[1], actor=agent)
    empty = Conversation.objects.create(
        inbox=inbox,
        contact=Conversation.objects.get(pk=ids[0]).contact,
        kind="comment",
        subject_id="p1",
        last_activity_at=timezone.now(),
    )
    expected = {pk: stored(pk) for pk in [*ids, empty.pk]}
    fill = importlib.import_module("inbox.migrations.0026_conversation_list_row").fill
    for rebuild in (lambda: conversations_summary_rebuild(), lambda: fill(apps, None)):
        Conversation.objects.update(
            last_message_id=None, last_message_preview="stale", last_message_direction="", unread_count=7
        )
        rebuild()
        assert {pk: assert_right(pk) for pk in expected} == expected
    assert expected[empty.pk]["last_message_id"] is None and expected[empty.pk]["unread_count"] == 0


def test_the_list_reads_columns_not_subqueries_and_the_thread_skips_unshown_columns(inbox, agent):
    conversation_id = receive(
        inbox, event("max", 1, text="Do you ship to Berlin?", payload={"raw": "x" * 50})
    ).conversation_id
    client = api(agent)
    with CaptureQueriesContext(connection) as queries:
        item = client.get("/api/v1/conversations/").json()["results"][0]
    assert item["last_message"]["text"] == "Do you ship to Berlin?" and item["unread_count"] == 1
    page = next(q["sql"] for q in queries if 'FROM "inbox_conversation"' in q["sql"])
    assert page.count('"inbox_message"') == 1  # only the reply quota's count is left
    assert '"payload"' not in page and '"password"' not in page and '"notes"' not in page
    with CaptureQueriesContext(connection) as queries:
        [shown] = client.get(f"/api/v1/conversations/{conversation_id}/messages/").json()["results"]
    assert shown["text"] == "Do you ship to Berlin?"
    thread = next(q["sql"] for q in queries if 'FROM "inbox_message"' in q["sql"])
    assert '"payload"' not in thread and '"password"' not in thread


def test_unread_counts_per_view_read_the_column(inbox, agent):
    a = receive(inbox, event("ned", 1)).conversation_id
    receive(inbox, event("ola", 1))
    assert api(agent).get("/api/v1/conversations/unread-counts/", {"status": "open"}).json()["all"] == 2
    conversation_mark_read(conversation_id=a, actor=agent)
    assert api(agent).get("/api/v1/conversations/unread-counts/", {"status": "open"}).json()["all"] == 1


def test_the_command_rebuilds_one_inbox(inbox):
    other = Inbox.objects.create(name="Other")
    mine = receive(inbox, event("pia", 1, text="mine")).conversation_id
    theirs = receive(other, event("quin", 1, text="theirs")).conversation_id
    Conversation.objects.update(last_message_preview="stale", unread_count=5)
    out = io.StringIO()
    call_command("rebuild_list_rows", "--inbox", str(inbox.pk), stdout=out)
    assert "1 conversations" in out.getvalue()
    assert assert_right(mine)["last_message_preview"] == "mine"
    assert stored(theirs)["last_message_preview"] == "stale"


def test_the_list_rows_fast_representation_equals_the_declared_fields(inbox, agent, django_user_model):
    """ConversationOut builds a row by hand (the list's CPU): it must say what DRF's declared fields say."""
    from rest_framework import serializers as drf

    from inbox.api.serializers import ConversationOut
    from inbox.selectors import conversation_list
    from inbox.services import conversation_assign, conversation_set_labels, conversation_snooze, label_create

    agent.first_name = "Ann"
    agent.save()
    plain = receive(inbox, event("rob", 1, text="hi")).conversation_id
    comment = receive(
        inbox, event("sue", 1, conversation_kind="comment", subject_id="v1", subject={"url": "https://t.k/v1"})
    ).conversation_id
    old = receive(inbox, event("tom", 1, ago=timedelta(days=3), referral={"source": "ad", "ad_name": "Sale"}))
    conversation_assign(conversation_id=plain, assignee=agent, actor=agent)
    label_create(inbox_id=inbox.pk, name="vip", color="#ff0000", actor=agent)
    conversation_set_labels(conversation_id=plain, names=["vip"], actor=agent)
    conversation_snooze(conversation_id=comment, until=timezone.now() + timedelta(days=1), actor=agent)
    Conversation.objects.create(
        inbox=inbox, contact=old.conversation.contact, kind="comment", subject_id="v2", last_activity_at=timezone.now()
    )
    rows = list(conversation_list(user=agent))
    assert len(rows) == 4
    serializer = ConversationOut(rows, many=True)
    fast = serializer.data
    declared = [drf.ModelSerializer.to_representation(serializer.child, row) for row in rows]
    assert [dict(row) for row in fast] == [dict(row) for row in declared]
    assert {row["id"]: row["assignee"] for row in fast}[plain]["name"] == "Ann"
