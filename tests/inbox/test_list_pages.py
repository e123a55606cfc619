"""The conversation list's page in plain SQL (inbox/pages.py, PostgreSQL) against its definition, the ORM queryset
(`selectors.conversation_list_queryset`): the same rows, in the same order, for every filter, ordering and cursor
step DRF's CursorPagination takes (`order_by`, a position `__lt` / `__gt` on the first key, a slice)."""

import itertools
from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from inbox.automation.models import ConversationSla, Team
from inbox.models import Contact, Conversation
from inbox.pages import ConversationPageQuery
from inbox.selectors import conversation_list, conversation_list_queryset, label_names_of
from inbox.services import conversation_set_labels, conversation_set_team, label_create, reply_queue
from tests.inbox.helpers import api, receive

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the SQL page is PostgreSQL's (SQLite: the ORM)"),
]

ORDERINGS = {
    "last_activity": ("-last_activity_at", "-id"),
    "window": ("window_rank", "id"),
    "sla": ("sla_rank", "id"),
}


def reverse(ordering: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(field[1:] if field.startswith("-") else f"-{field}" for field in ordering)


@pytest.fixture
def busy(world, django_user_model):
    """Conversations in every state a filter or a sort key tells apart, with ties in every sort key."""
    support, other, agent, colleague = world["support"], world["other"], world["agent"], world["colleague"]
    other.members.add(agent)  # the agent sees two inboxes
    made = []
    for n in range(14):
        conversation = receive(
            support if n % 3 else other,
            f"u{n}",
            1,
            text="a refund please" if n % 4 == 0 else f"hello {n}",
            minutes_ago=[5, 60, 60 * 30, 60 * 50, 60 * 100][n % 5],  # open windows, closing soon, closed
            **({"conversation_kind": "comment", "subject_id": f"v{n}"} if n % 7 == 3 else {}),
        )
        made.append(conversation)
    no_inbound = Conversation.objects.create(
        inbox=support, contact=made[0].contact, kind="comment", subject_id="silent", last_activity_at=timezone.now()
    )
    made.append(no_inbound)
    Conversation.objects.create(
        inbox=support, contact=made[1].contact, kind="comment", subject_id="silent-2", last_activity_at=timezone.now()
    )
    # Ties: the same last activity for three conversations (the cursor's offset steps over them).
    tie = timezone.now() - timedelta(minutes=7)
    Conversation.objects.filter(pk__in=[made[1].pk, made[2].pk, made[4].pk]).update(last_activity_at=tie)
    Conversation.objects.filter(pk=made[2].pk).update(status="resolved")
    Conversation.objects.filter(pk=made[5].pk).update(status="pending", snoozed_until=timezone.now() + timedelta(1))
    Conversation.objects.filter(pk__in=[made[1].pk, made[7].pk]).update(assignee=agent)
    Conversation.objects.filter(pk=made[8].pk).update(assignee=colleague)
    Contact.objects.filter(pk=made[10].contact_id).update(display_name="Max 50%_off")
    Contact.objects.filter(pk=made[11].contact_id).update(display_name="Max 50 percent off")
    for name in ("VIP", "later"):
        label_create(inbox_id=support.pk, name=name, color="#ff0000", actor=agent)
    conversation_set_labels(conversation_id=made[1].pk, names=["VIP", "later"], actor=agent)
    conversation_set_labels(conversation_id=made[4].pk, names=["VIP"], actor=agent)
    billing = Team.objects.create(inbox=support, name="Billing")
    conversation_set_team(conversation_id=made[1].pk, team=billing, actor=None)
    conversation_set_team(conversation_id=made[5].pk, team=billing, actor=None)
    due = timezone.now() + timedelta(minutes=30)
    for conversation, minutes in ((made[2], 30), (made[4], 30), (made[8], -10)):
        ConversationSla.objects.update_or_create(
            conversation_id=conversation.pk, defaults={"due_at": due + timedelta(minutes=minutes)}
        )
    reply_queue(conversation_id=made[1].pk, author=agent, type="text", text="on it")
    return {**world, "made": made, "billing": billing}


FILTERS = [
    {},
    {"status": "open"},
    {"status": "resolved"},
    {"assignee": "me"},
    {"assignee": "none"},
    {"assignee": "colleague"},
    {"inbox": "support"},
    {"kind": "comment"},
    {"label": "vip"},  # any case
    {"label": "nope"},
    {"team": "billing"},
    {"q": "refund"},  # message text
    {"q": "50%_"},  # a contact's name; % and _ are characters, not wildcards
    {"q": "U1"},  # a TikTok user id, any case
    {"status": "open", "assignee": "none", "q": "hello"},
]


CURSOR_FILTERS = [{}, {"status": "open", "assignee": "none", "q": "hello"}]


def resolve(busy, filters: dict) -> dict:
    names = {"colleague": str(busy["colleague"].pk), "support": busy["support"].pk, "billing": busy["billing"].pk}
    return {key: names.get(value, value) for key, value in filters.items()}


def rows_of(query, ordering, *, position=None, start=0, stop=None) -> list[dict]:
    query = query.order_by(*ordering)
    if position is not None:
        query = query.filter(**position)
    return list(query[start:stop])


@pytest.mark.parametrize("user", ["agent", "colleague", "admin", "outsider"])
def test_every_filter_and_ordering_gives_the_orm_rows_in_the_orm_order(busy, user):
    frozen = timezone.now()
    with time_machine.travel(frozen, tick=False):  # the sort keys' constants come from the clock
        for filters, (name, ordering) in itertools.product(FILTERS, ORDERINGS.items()):
            arguments = {"user": busy[user], **resolve(busy, filters)}
            sql, orm = conversation_list(**arguments), conversation_list_queryset(**arguments)
            assert isinstance(sql, ConversationPageQuery)
            for direction in (ordering, reverse(ordering)):
                expected = rows_of(orm, direction)
                got = rows_of(sql, direction)
                labels = label_names_of([row["id"] for row in expected])
                assert [row.pop("labels") for row in got] == [labels.get(row["id"], []) for row in expected]
                assert got == expected, (filters, name, direction)
                # A bounded read (what a page is), which an agent of several inboxes gets per inbox, then merged.
                bounded = rows_of(sql, direction, stop=len(expected) + 1)
                for row in bounded:
                    row.pop("labels")
                assert bounded == expected, (filters, name, direction)
                if filters not in CURSOR_FILTERS or user != "agent":
                    continue
                # Cursor steps: from rows' positions (ties among them), both ways, with an offset.
                key = direction[0].lstrip("-")
                for row, op, start in itertools.product(expected[::4], ("lt", "gt"), (0, 1)):
                    position = {f"{key}__{op}": str(row[key])}
                    want = rows_of(orm, direction, position=position, start=start, stop=start + 3)
                    have = rows_of(sql, direction, position=position, start=start, stop=start + 3)
                    for r in have:
                        r.pop("labels")
                    assert have == want, (filters, name, direction, position, start)
    if user == "agent":
        assert len(rows_of(conversation_list_queryset(user=busy[user]), ORDERINGS["last_activity"])) == 19


def walk(client, name: str) -> tuple[list[list[int]], list[list[int]]]:
    """The pages of an ordering: `next` to the end, then `previous` back to the start."""
    forward, url = [], f"/api/v1/conversations/?ordering={name}&page_size=3"
    while url:
        body = client.get(url).json()
        forward.append([item["id"] for item in body["results"]])
        url, previous = body["next"], body["previous"]
    back = []
    while previous:
        body = client.get(previous).json()
        back.append([item["id"] for item in body["results"]])
        previous = body["previous"]
    return forward, back


def test_the_api_walks_every_ordering_through_cursors_as_the_orm_does(busy, monkeypatch):
    """Next to the end and previous back, page by page, the same as with the ORM queryset (DRF's own cursor
    logic on both), and forward every conversation once, in the ORM's order."""
    from inbox import selectors

    client = api(busy["agent"])
    for name, ordering in ORDERINGS.items():
        with time_machine.travel(timezone.now(), tick=False):
            sql_walk = walk(client, name)
            with monkeypatch.context() as patched:
                patched.setattr(selectors, "conversation_list", selectors.conversation_list_queryset)
                orm_walk = walk(client, name)
            expected = [row["id"] for row in rows_of(conversation_list_queryset(user=busy["agent"]), ordering)]
        assert sql_walk == orm_walk, name
        assert list(itertools.chain(*sql_walk[0])) == expected, name


@pytest.mark.parametrize("position", ["abc", "2026-13-45 00:00:00", "9" * 30])
def test_a_forged_position_is_refused_as_the_orm_refuses_it(busy, position):
    query = conversation_list(user=busy["agent"]).order_by("-last_activity_at", "-id")
    with pytest.raises(ValidationError):
        query.filter(last_activity_at__lt=position)
    with pytest.raises(ValidationError):
        list(conversation_list_queryset(user=busy["agent"]).filter(last_activity_at__lt=position)[:1])


def test_only_the_cursor_s_lookups_are_understood(busy):
    query = conversation_list(user=busy["agent"])
    with pytest.raises(ValueError):
        query.order_by("contact__display_name")
    with pytest.raises(ValueError):
        query.filter(status="open")


def test_the_page_plans_one_relation_and_its_sla(busy):
    """What the planner is given: the conversation and its SLA row joined; everything else per page row."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert api(busy["agent"]).get("/api/v1/conversations/").status_code == 200
    page = next(q["sql"] for q in queries if 'FROM "inbox_conversation" c' in q["sql"])
    outer = page[page.rindex('FROM "inbox_conversation" c') :]
    assert outer.count(" JOIN ") == 1 and '"inbox_conversationsla"' in outer


def test_an_agent_of_one_inbox_gets_the_page_s_order_from_that_inbox_s_index(busy):
    """`inbox_id = ANY(array)` cannot take the page's order from the (inbox, activity, id) index: PostgreSQL walked
    the activity index of every inbox and filtered the others' conversations out (11 ms a page behind 37,000 newer
    ones). The planner's other ways are priced out here, so what remains says whether the index can give the order."""
    from django.test.utils import CaptureQueriesContext

    colleague = busy["colleague"]  # a member of one inbox
    with CaptureQueriesContext(connection) as queries:
        assert api(colleague).get("/api/v1/conversations/").status_code == 200
    page = next(q["sql"] for q in queries if 'FROM "inbox_conversation" c' in q["sql"])
    with connection.cursor() as cursor:
        for option in ("enable_seqscan", "enable_sort", "enable_incremental_sort", "enable_bitmapscan"):
            cursor.execute(f"SET LOCAL {option} = off")
        cursor.execute("EXPLAIN " + page)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    outer = plan.split("SubPlan")[0]  # the page itself, not the per-row subqueries
    # Every status: one branch per status by the (inbox, status, activity, id) index, their first rows merged (a
    # sort of at most a page per status); one status: that index alone, in its order.
    assert outer.count("conv_inbox_status_activity_id") == len(Conversation.Status.values), plan
    assert "Filter: (inbox_id" not in outer and "Filter: ((status" not in outer, plan
    with CaptureQueriesContext(connection) as queries:
        assert api(colleague).get("/api/v1/conversations/?status=open").status_code == 200
    page = next(q["sql"] for q in queries if 'FROM "inbox_conversation" c' in q["sql"])
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + page)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    outer = plan.split("SubPlan")[0]
    assert outer.count("conv_inbox_status_activity_id") == 1 and "UNION" not in page, plan
    assert "Sort" not in outer and "Filter: (inbox_id" not in outer, plan


def test_an_agent_of_several_inboxes_reads_each_inbox_s_page_by_its_index(busy):
    """The same for an agent of two inboxes: each inbox's first rows by its own index, merged (one small sort of at
    most a page per inbox), not the activity index of every inbox filtered."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert api(busy["agent"]).get("/api/v1/conversations/").status_code == 200
    page = next(q["sql"] for q in queries if 'FROM "inbox_conversation" c' in q["sql"])
    with connection.cursor() as cursor:
        for option in ("enable_seqscan", "enable_incremental_sort", "enable_bitmapscan"):
            cursor.execute(f"SET LOCAL {option} = off")
        cursor.execute("EXPLAIN " + page)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    outer = plan.split("SubPlan")[0]
    assert outer.count("conv_inbox_status_activity_id") == 2 * len(Conversation.Status.values), plan  # inbox × status
    assert "Filter: (inbox_id" not in outer, plan


def test_an_admin_reads_each_inbox_s_page_by_its_index_with_no_index_of_the_activity_alone(busy):
    """An admin sees every inbox: read as an agent of all of them, each inbox's first rows by its own index, merged.
    The conversation table keeps no index of the activity alone (every inbound message would write one more
    entry); without the merge, the admin's page would sort the whole table."""
    from django.test.utils import CaptureQueriesContext

    from inbox.models import Inbox

    admin = busy["admin"]
    assert admin.is_superuser and Inbox.objects.count() >= 2
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'inbox_conversation'")
        definitions = [row[0] for row in cursor.fetchall()]
    assert not [d for d in definitions if d.endswith("(last_activity_at)")], definitions
    for path, branches in (
        ("/api/v1/conversations/", Inbox.objects.count() * len(Conversation.Status.values)),
        ("/api/v1/conversations/?status=open", Inbox.objects.count()),
    ):
        with CaptureQueriesContext(connection) as queries:
            assert api(admin).get(path).status_code == 200
        page = next(q["sql"] for q in queries if 'FROM "inbox_conversation" c' in q["sql"])
        with connection.cursor() as cursor:
            for option in ("enable_seqscan", "enable_incremental_sort", "enable_bitmapscan"):
                cursor.execute(f"SET LOCAL {option} = off")
            cursor.execute("EXPLAIN " + page)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        outer = plan.split("SubPlan")[0]
        assert outer.count("Index Scan") >= Inbox.objects.count(), plan
        assert "Seq Scan" not in outer and "Filter: (inbox_id" not in outer, plan
        assert outer.count("conv_inbox_status_activity_id") == branches, plan
    with CaptureQueriesContext(connection) as queries:
        assert api(admin).get(f"/api/v1/conversations/?inbox={busy['other'].pk}").status_code == 200
    page = next(q["sql"] for q in queries if 'FROM "inbox_conversation" c' in q["sql"])
    # One inbox asked for: just that one, a branch per status.
    assert page.count("UNION ALL") == len(Conversation.Status.values) - 1, page


def test_the_thread_page_gives_the_orm_rows_for_every_order_type_and_cursor_step(busy):
    from inbox.pages import MessagePageQuery
    from inbox.selectors import thread_page, thread_values
    from inbox.services import note_add

    bob, agent = busy["bob"], busy["agent"]
    first = bob.messages.order_by("sent_at").first()
    receive(busy["support"], "bob", 2, type="image", text="", media_url="javascript:alert(1)")
    receive(busy["support"], "bob", 3, type="reaction", text="", reaction_emoji="❤", quoted_provider_message_id="bob-1")
    receive(busy["support"], "bob", 4, text="quoting a lost one", quoted_provider_message_id="gone")
    reply_queue(conversation_id=bob.pk, author=agent, type="text", text="yes", quoted_message_id=first.pk)
    note_add(conversation_id=bob.pk, author=agent, text="a note")
    # Ties on sent_at: the cursor's offset steps over them.
    bob.messages.filter(provider_message_id__in=["bob-2", "bob-3"]).update(sent_at=first.sent_at)
    for type in (None, "text", "image"):
        sql, orm = thread_page(bob.pk, type=type), thread_values(bob.pk)
        orm = orm.filter(type=type) if type else orm
        assert isinstance(sql, MessagePageQuery)
        for ordering in (("sent_at", "id"), ("-sent_at", "-id")):
            expected = rows_of(orm, ordering)
            assert rows_of(sql, ordering) == expected and expected, (type, ordering)
            for row, op, start in itertools.product(expected, ("lt", "gt"), (0, 1)):
                position = {f"sent_at__{op}": str(row["sent_at"])}
                want = rows_of(orm, ordering, position=position, start=start, stop=start + 2)
                assert rows_of(sql, ordering, position=position, start=start, stop=start + 2) == want
    rows = {row["provider_message_id"]: row for row in rows_of(thread_page(bob.pk), ("sent_at", "id"))}
    assert rows["bob-3"]["quoted_message_id"] == first.pk and rows["bob-4"]["quoted_message_id"] is None
    assert rows["bob-1"]["author_id"] is None


def test_the_thread_s_conversation_is_found_only_for_who_sees_it(busy):
    from inbox.selectors import thread_conversation

    bob, carol = busy["bob"], busy["carol"]
    assert thread_conversation(busy["agent"], bob.pk) == (bob.pk, "infobip", "message")
    assert thread_conversation(busy["outsider"], bob.pk) is None
    assert thread_conversation(busy["agent"], carol.pk) == (carol.pk, "infobip", "message")  # busy: a member now
    assert thread_conversation(busy["colleague"], carol.pk) is None
    assert thread_conversation(busy["admin"], carol.pk).id == carol.pk
    assert thread_conversation(busy["admin"], 2**63) is None
    response = api(busy["colleague"]).get(f"/api/v1/conversations/{2**64}/messages/")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_an_agent_of_no_inbox_sees_an_empty_list_not_an_error(busy, django_user_model):
    nobody = django_user_model.objects.create_user("nobody")
    response = api(nobody).get("/api/v1/conversations/")
    assert response.status_code == 200 and response.json()["results"] == []
    assert list(conversation_list(user=nobody)) == list(conversation_list_queryset(user=nobody)) == []
