"""The list-row columns on the conversation (newest message, unread count) after every kind of write, compared
with a recomputation from the raw message rows (inbox/services/summary.py)."""

import dataclasses
import importlib
import io
import json
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


DIRECT_ACCOUNTS = ("rows-connected", "rows-reauth", "rows-disconnected", "rows-missing")


@pytest.fixture
def direct_accounts(inbox):
    """Direct TikTok connections in each state (the connection-state cache cleared around the test)."""
    from django.core.cache import cache

    from tiktok_channel.direct.backend import state_cache_key
    from tiktok_channel.direct.models import TikTokApp, TikTokConnection

    keys = [state_cache_key(account) for account in DIRECT_ACCOUNTS]
    cache.delete_many(keys)
    app = TikTokApp.objects.create(
        name="Rows app", client_key="rows-key", client_secret="rows-secret-0123456789", inbox=inbox
    )
    for account, state in zip(DIRECT_ACCOUNTS[:3], TikTokConnection.State.values, strict=True):
        TikTokConnection.objects.create(app=app, account_id=account, display_name=account, state=state)
    yield
    cache.delete_many(keys)


def test_the_list_rows_from_plain_values_equal_the_declared_fields(
    inbox, agent, django_user_model, direct_accounts, settings
):
    """The list builds its rows from `.values()` (no model instances): every field must say what ConversationOut's
    declared fields say of a model instance, byte for byte, for every lock reason, both providers, comments,
    assignees, teams, labels, snoozes, SLA and unread counts."""
    from rest_framework.renderers import JSONRenderer

    from inbox.api.serializers import ConversationOut, conversation_rows
    from inbox.automation.models import ConversationSla, ConversationTeam, Team
    from inbox.selectors import conversation_list, conversation_list_queryset, label_names_of, with_list_annotations
    from inbox.services import conversation_assign, conversation_set_labels, conversation_snooze, label_create

    settings.REPLY_QUOTA_PER_WINDOW = 1
    agent.first_name = "Ann"
    agent.save()
    both = django_user_model.objects.create_user("bo", first_name="Bo", last_name="Lee")
    bare = django_user_model.objects.create_user("cy")
    inbox.members.add(both, bare)

    def direct(user: str, n: int, account: str, **kw) -> int:
        e = dataclasses.replace(event(user, n, **kw), endpoint_id=account, provider="tiktok_direct")
        return receive(inbox, e).conversation_id

    plain = receive(inbox, event("rob", 1, text="hi")).conversation_id
    receive(inbox, event("rob", 2, text="again"))
    comment = receive(
        inbox, event("sue", 1, conversation_kind="comment", subject_id="v1", subject={"url": "https://t.k/v1"})
    ).conversation_id
    closed = receive(inbox, event("tom", 1, ago=timedelta(days=3), referral={"source": "ad", "ad_name": "Sale"}))
    quota = receive(inbox, event("una", 1, text="quick?")).conversation_id
    reply_queue(conversation_id=quota, author=agent, type="text", text="yes")
    unknown_provider = Conversation.objects.create(
        inbox=inbox,
        contact=closed.conversation.contact,
        kind="comment",
        subject_id="v2",
        last_activity_at=timezone.now(),
    ).pk
    direct_ok = direct("vic", 1, "rows-connected", referral={"source": "tiktok_me", "ref": "spring"})
    direct_comment = direct(
        "vic", 2, "rows-connected", conversation_kind="comment", subject_id="v3", subject={"url": "x"}
    )
    direct_reauth = direct("wes", 1, "rows-reauth")
    direct_off = direct("xia", 1, "rows-disconnected")
    direct_missing = direct("yan", 1, "rows-missing")

    conversation_assign(conversation_id=plain, assignee=agent, actor=agent)
    conversation_assign(conversation_id=direct_ok, assignee=both, actor=agent)
    conversation_assign(conversation_id=quota, assignee=bare, actor=agent)
    for name in ("vip", "a-first"):
        label_create(inbox_id=inbox.pk, name=name, color="#ff0000", actor=agent)
    conversation_set_labels(conversation_id=plain, names=["vip", "a-first"], actor=agent)
    conversation_set_labels(conversation_id=direct_reauth, names=["vip"], actor=agent)
    conversation_snooze(conversation_id=comment, until=timezone.now() + timedelta(days=1), actor=agent)
    ConversationTeam.objects.create(conversation_id=plain, team=Team.objects.create(inbox=inbox, name="Billing"))
    ConversationSla.objects.update_or_create(
        conversation_id=quota, defaults={"due_at": timezone.now() + timedelta(minutes=30)}
    )
    conversation_mark_read(conversation_id=direct_ok, actor=agent)

    response = api(agent).get("/api/v1/conversations/", {"page_size": 50})
    assert response.status_code == 200
    shown = response.json()["results"]
    ids = [row["id"] for row in shown]
    assert sorted(ids) == sorted(
        [plain, comment, closed.conversation_id, quota, unknown_provider]
        + [direct_ok, direct_comment, direct_reauth, direct_off, direct_missing]
    )
    instances = {c.pk: c for c in with_list_annotations(Conversation.objects.filter(pk__in=ids))}
    declared = [ConversationOut(instances[pk]).data for pk in ids]
    rows = list(conversation_list_queryset(user=agent).order_by("-last_activity_at", "-id"))
    fast = conversation_rows(rows, labels=label_names_of(ids), now=timezone.now())
    # The list's own path (plain SQL on PostgreSQL, tests/inbox/test_list_pages.py) gives the same items.
    page = list(conversation_list(user=agent).order_by("-last_activity_at", "-id"))
    page_labels = {row["id"]: row.pop("labels") for row in page} if connection.vendor == "postgresql" else None
    assert conversation_rows(page, labels=page_labels or label_names_of(ids), now=timezone.now()) == fast

    assert fast == declared and set(fast[0]) == set(ConversationOut.Meta.fields)
    assert JSONRenderer().render(fast) == JSONRenderer().render(declared)  # byte for byte, keys in order
    assert shown == json.loads(JSONRenderer().render(declared))  # what the API sends

    by_id = {row["id"]: row for row in fast}
    locks = {pk: (row["reply_lock"] or {}).get("code") for pk, row in by_id.items()}
    assert locks == {
        plain: None,
        comment: "no_user_message",  # Infobip declares nothing for comments: the DM rule, and a comment has no window
        closed.conversation_id: "reply_window_closed",
        quota: "reply_quota_used",
        unknown_provider: "no_user_message",
        direct_ok: None,
        direct_comment: None,
        direct_reauth: "channel_reauthorization_needed",
        direct_off: "channel_disconnected",
        direct_missing: "channel_disconnected",
    }
    assert by_id[direct_off]["reply_lock"]["message"] != by_id[direct_missing]["reply_lock"]["message"]
    assert by_id[direct_comment]["reply_max_chars"] == 150 and by_id[plain]["reply_max_chars"] == 6000
    assert [by_id[pk]["assignee"]["name"] for pk in (plain, direct_ok, quota)] == ["Ann", "Bo Lee", "cy"]
    assert by_id[plain]["labels"] == ["a-first", "vip"] and by_id[direct_reauth]["labels"] == ["vip"]
    assert by_id[plain]["team"]["name"] == "Billing" and by_id[comment]["team"] is None
    assert by_id[comment]["snoozed_until"] is not None and by_id[plain]["snoozed_until"] is None
    assert by_id[quota]["first_response_due_at"] is not None and by_id[quota]["replies_left"] == 0
    assert (by_id[plain]["unread_count"], by_id[direct_ok]["unread_count"]) == (2, 0)
    assert by_id[closed.conversation_id]["referral"]["label"] == "Sale"
    assert by_id[direct_ok]["referral"]["kind_label"] == "TikTok.me"
    assert by_id[comment]["subject"] == {"id": "v1", "url": "https://t.k/v1"}
    assert by_id[direct_comment]["subject"] == {"id": "v3"}  # not an http(s) URL: left out


def test_the_thread_rows_from_plain_values_equal_the_declared_fields(inbox, agent, direct_accounts):
    """The thread builds its messages from `.values()` rows: every field must say what MessageOut's declared
    fields say of a model instance, byte for byte: every type and direction, statuses and errors, quotes, unsafe
    URLs, notes' authors, echoes from outside the inbox, and a comment thread's hide / unhide / delete actions."""
    from rest_framework.renderers import JSONRenderer

    from inbox.api.serializers import MessageOut, message_rows
    from inbox.selectors import messages_of, thread_values

    agent.first_name, agent.last_name = "Ann", "Ash"
    agent.save()

    def thread(conversation_id: int) -> tuple[list, list, list]:
        conversation = Conversation.objects.get(pk=conversation_id)
        response = api(agent).get(f"/api/v1/conversations/{conversation_id}/messages/", {"page_size": 200})
        assert response.status_code == 200
        declared = [MessageOut(m).data for m in messages_of(conversation).order_by("sent_at", "id")]
        rows = list(thread_values(conversation).order_by("sent_at", "id"))
        fast = message_rows(rows, provider=conversation.provider, conversation_kind=conversation.kind)
        assert fast == declared and set(fast[0]) == set(MessageOut.Meta.fields)
        assert JSONRenderer().render(fast) == JSONRenderer().render(declared)
        assert response.json()["results"] == json.loads(JSONRenderer().render(declared))
        return fast, declared, response.json()["results"]

    # A DM thread through Infobip: every type, a quote, unsafe URLs, replies in each status, a note, an echo.
    first = receive(inbox, event("zoe", 1, ago=timedelta(minutes=9), text="Hi"))
    dm = first.conversation_id
    receive(inbox, event("zoe", 2, ago=timedelta(minutes=8), type="image", text="", media_url="javascript:alert(1)"))
    receive(inbox, event("zoe", 3, ago=timedelta(minutes=7), type="image", text="", media_url="https://cdn.x/a.png"))
    receive(inbox, event("zoe", 4, ago=timedelta(minutes=6), type="share_post", text="", embed_url="https://t.k/e"))
    receive(
        inbox,
        event(
            "zoe", 5, ago=timedelta(minutes=5), type="reaction", text="", reaction_emoji="❤", reaction_action="react"
        ),
    )
    receive(inbox, event("zoe", 6, ago=timedelta(minutes=4), text="see this", quoted_provider_message_id="zoe-1"))
    accepted = reply_queue(conversation_id=dm, author=agent, type="text", text="one", quoted_message_id=first.pk)
    failed = reply_queue(conversation_id=dm, author=agent, type="text", text="two")
    reply_queue(conversation_id=dm, author=agent, type="image", media_url="https://cdn.x/b.jpg")
    report = StatusReport(
        channel="tiktok",
        provider_message_id=accepted.provider_message_id,
        status="delivered",
        at=timezone.now(),
        provider_status={"name": "DELIVERED_TO_HANDSET"},
    )
    assert message_status_apply(report=report) == "applied"
    error = {"name": "EC_REJECTED", "description": "refused", "permanent": True, "raw": {"x": 1}}
    assert message_send_failed(channel="tiktok", provider_message_id=failed.provider_message_id, error=error)
    note_add(conversation_id=dm, author=agent, text="a note")
    receive(inbox, event("zoe", 7, text="sent from the app", sent_outside=True))
    fast, _, _ = thread(dm)
    assert [m["media_url"] for m in fast[1:3]] == ["", "https://cdn.x/a.png"]
    assert fast[4]["reaction"] == {"emoji": "❤", "action": "react"} and fast[5]["quoted_message_id"] == first.pk
    by_text = {m["text"]: m for m in fast}
    assert by_text["one"]["status"] == "delivered" and by_text["one"]["provider_status_name"] == "DELIVERED_TO_HANDSET"
    assert by_text["two"]["error"] == {"name": "EC_REJECTED", "description": "refused", "permanent": True}
    assert by_text["a note"]["author"]["name"] == "Ann Ash" and by_text["Hi"]["author"] is None
    assert by_text["sent from the app"]["sent_outside_inbox"] and by_text["Hi"]["can_quote"]
    assert all(m["actions"] == [] for m in fast)  # Infobip moderates nothing

    # A comment thread through TikTok directly: hide, unhide, delete, none while pending or once deleted.
    def comment(n: int, **kw) -> Message:
        e = event("ada", n, conversation_kind="comment", subject_id="v9", **kw)
        return receive(inbox, dataclasses.replace(e, endpoint_id="rows-connected", provider="tiktok_direct"))

    shown, hidden, pending, deleted = comment(1), comment(2), comment(3), comment(4)
    Message.objects.filter(pk=hidden.pk).update(public_state="hidden")
    Message.objects.filter(pk=pending.pk).update(action={"action": "hide", "state": "pending"})
    Message.objects.filter(pk=deleted.pk).update(
        public_state="deleted",
        action={"action": "delete", "state": "failed", "error": {"name": "E", "description": "d"}},
    )
    ours = reply_queue(conversation_id=shown.conversation_id, author=agent, type="text", text="thanks")
    Message.objects.filter(pk=ours.pk).update(status="accepted", provider_status={"messageId": "c-1"})
    fast, _, _ = thread(shown.conversation_id)
    actions = {m["id"]: m["actions"] for m in fast}
    assert actions == {shown.pk: ["hide"], hidden.pk: ["unhide"], pending.pk: [], deleted.pk: [], ours.pk: ["delete"]}
    assert {m["id"]: m["action"] for m in fast}[deleted.pk]["error"] == {"name": "E", "description": "d"}
