"""The deferred roll-ups' fast path (PostgreSQL): new customer messages added to the stored figures without
recomputing the conversation — when it is taken, when it must refuse, and against a concurrent full recompute.
Every case ends equal to a rebuild from the raw rows."""

from __future__ import annotations

import gc
import threading
import time
from dataclasses import replace
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection, connections
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inbox.events import InboundMessage
from inbox.models import Inbox, Message, ReportCycle, ReportDay, ReportMarkBatch, ReportState
from inbox.reports import rollups
from inbox.services import messages_receive
from tests.inbox.reports_helpers import AD, Stream
from tests.inbox.test_reports_rollups import snapshot

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the fast path is PostgreSQL's")


@pytest.fixture(autouse=True)
def _deferred(settings, monkeypatch):
    """Deferred roll-ups; the Celery boundary only records, the test drains when it wants (sends likewise)."""
    settings.REPORTS_ROLLUPS = "deferred"
    monkeypatch.setattr(rollups, "schedule_drain", lambda: None)
    monkeypatch.setattr("inbox.outbox.schedule_send", lambda message_id, attempt_id=None: None)


def drained() -> dict[str, int]:
    stats: dict[str, int] = {}
    rollups.drain(stats=stats)
    return stats


def messages_in() -> int:
    return ReportDay.objects.aggregate(n=Sum("messages_in"))["n"] or 0


def equals_a_rebuild() -> bool:
    before = snapshot()
    rollups.rebuild()
    return snapshot() == before


@pytest.mark.django_db
def test_new_customer_messages_take_the_fast_path(django_capture_on_commit_callbacks):
    s = Stream(Inbox.objects.create(name="Fast"), django_capture_on_commit_callbacks)
    conversation = s.inbound("mia", 1)
    # A conversation's first message: its figures computed from the message and the conversation's row.
    assert drained() == {"fast": 0, "opened": 1, "full": 0}
    state = ReportState.objects.get(conversation_id=conversation.pk).contributions
    inbound = Message.objects.filter(conversation=conversation, direction="in")
    assert (state["n"], state["m"]) == (1, inbound.get().pk)
    s.inbound("mia", 2)
    s.inbound("mia", 3)
    assert drained() == {"fast": 1, "opened": 0, "full": 0}  # one mark for both messages
    state = ReportState.objects.get(conversation_id=conversation.pk).contributions
    assert (state["n"], state["m"]) == (3, max(inbound.values_list("pk", flat=True)))
    assert messages_in() == 3
    assert equals_a_rebuild()


@pytest.mark.django_db
def test_the_fast_path_refuses_what_it_cannot_add(django_capture_on_commit_callbacks, django_user_model):
    inbox = Inbox.objects.create(name="Refusals")
    s = Stream(inbox, django_capture_on_commit_callbacks)
    agent = django_user_model.objects.create_user("agent", password="pw")
    inbox.members.add(agent)
    s.inbound("ned", 1)
    drained()
    s.inbound("ned", 2, referral=AD)  # a referral may change the cycle's source
    assert drained() == {"fast": 0, "opened": 0, "full": 1}
    conversation = s.inbound("ned", 3)
    s.reply(conversation, agent)  # not only customer messages since the last refresh
    assert drained() == {"fast": 0, "opened": 0, "full": 1}
    s.status(conversation_id=conversation.pk, status="resolved", actor=agent)
    drained()
    s.inbound("ned", 4)  # reopens: a new cycle
    assert drained() == {"fast": 0, "opened": 0, "full": 1}
    # A state stored before "m" was kept: recomputed once, then fast again.
    state = ReportState.objects.get(conversation_id=conversation.pk)
    state.contributions.pop("m")
    state.save()
    s.inbound("ned", 5)
    assert drained() == {"fast": 0, "opened": 0, "full": 1}
    s.inbound("ned", 6)
    assert drained() == {"fast": 1, "opened": 0, "full": 0}
    assert messages_in() == 6
    assert equals_a_rebuild()


@pytest.mark.django_db
def test_marks_arriving_out_of_order_never_count_a_message_twice_or_lose_one(
    django_capture_on_commit_callbacks, settings
):
    """Two processes commit a message each; the later one's mark is drained first (its subscriber ran first)."""
    s = Stream(Inbox.objects.create(name="Order"), django_capture_on_commit_callbacks)
    conversation = s.inbound("ola", 1)
    drained()
    settings.REPORTS_ROLLUPS = "off"  # the marks below are made by hand, in the other order
    s.inbound("ola", 2)
    s.inbound("ola", 3)
    settings.REPORTS_ROLLUPS = "deferred"
    second, third = Message.objects.filter(conversation=conversation, direction="in").order_by("pk")[1:]
    rollups.conversations_mark([conversation.pk], appended={conversation.pk: [third.pk]})
    assert drained() == {"fast": 1, "opened": 0, "full": 0}
    assert messages_in() == 2  # the second message is not counted yet: its mark is still to come
    rollups.conversations_mark([conversation.pk], appended={conversation.pk: [second.pk]})
    assert drained() == {"fast": 0, "opened": 0, "full": 1}  # below the highest id counted: recomputed, not added
    assert messages_in() == 3
    # A mark for a message a recompute already counted (a redelivered or late mark): refused, not added again.
    rollups.conversations_mark([conversation.pk], appended={conversation.pk: [third.pk]})
    assert drained() == {"fast": 0, "opened": 0, "full": 1}
    assert messages_in() == 3
    assert equals_a_rebuild()


@pytest.mark.django_db(transaction=True)
def test_a_fast_path_drain_waits_for_a_concurrent_recompute_and_does_not_count_twice():
    """A recompute (another drain's full mark, a rebuild) holds the conversation's state row and has counted the
    new message; the drain with that message's fast-path mark waits for it, then sees the message counted."""
    s = Stream(Inbox.objects.create(name="Race"))
    conversation = s.inbound("pia", 1)
    rollups.drain()
    s.inbound("pia", 2)  # marked for the fast path
    [(full, _opened, _messages)] = rollups.marked().values()
    assert full is False
    locked, release, stats, errors = threading.Event(), threading.Event(), {}, []

    def recompute() -> None:
        try:
            from django.db import transaction

            with transaction.atomic():
                rollups._refresh([conversation.pk])  # counts the second message, holds the state's row lock
                locked.set()
                release.wait(30)
        except Exception as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)
        finally:
            locked.set()
            connections.close_all()

    def drain() -> None:
        try:
            rollups.drain(stats=stats)
        except Exception as error:  # noqa: BLE001
            errors.append(error)
        finally:
            connections.close_all()

    first = threading.Thread(target=recompute)
    first.start()
    assert locked.wait(30)
    second = threading.Thread(target=drain)
    second.start()
    waiting = until(lambda: lock_waiters() > 0)  # until the drain waits on the state's row lock
    release.set()
    first.join(30)
    second.join(30)
    assert not errors and waiting
    assert stats == {"fast": 0, "opened": 0, "full": 1}
    assert messages_in() == 2
    assert equals_a_rebuild()


@pytest.mark.django_db(transaction=True)
def test_an_opening_waits_for_a_concurrent_recompute_and_is_recomputed_not_counted_twice():
    """A recompute (a rebuild, another drain's full mark) inserts the conversation's first state row and has not
    committed when the drain reads: the drain computes the opening's figures, its INSERT of the state waits for that
    row, finds it, and the conversation is recomputed in the same chunk from what the recompute stored."""
    s = Stream(Inbox.objects.create(name="Race to open"))
    conversation = s.inbound("quin", 1)
    [(_full, opened, _messages)] = rollups.marked().values()
    assert opened
    locked, release, stats, errors = threading.Event(), threading.Event(), {}, []

    def recompute() -> None:
        try:
            from django.db import transaction

            with transaction.atomic():
                rollups._refresh([conversation.pk])  # inserts the state row with the first message counted
                locked.set()
                release.wait(30)
        except Exception as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)
        finally:
            locked.set()
            connections.close_all()

    def drain() -> None:
        try:
            rollups.drain(stats=stats)
        except Exception as error:  # noqa: BLE001
            errors.append(error)
        finally:
            connections.close_all()

    first = threading.Thread(target=recompute)
    first.start()
    assert locked.wait(30)
    second = threading.Thread(target=drain)
    second.start()
    waiting = until(lambda: lock_waiters() > 0)  # until the drain's INSERT waits on the uncommitted row
    release.set()
    first.join(30)
    second.join(30)
    assert not errors and waiting
    assert stats == {"fast": 0, "opened": 0, "full": 1}
    assert messages_in() == 1
    assert ReportCycle.objects.filter(conversation=conversation).count() == 1
    assert equals_a_rebuild()


def inbound_event(user: str, n: int, **fields) -> InboundMessage:
    return InboundMessage(
        channel="tiktok",
        endpoint_id="biz-1",
        channel_user_id=user,
        provider_message_id=f"{user}-{n}",
        provider_conversation_id=user,
        sent_at=timezone.now(),
        type="text",
        text=f"message {n}",
        provider="infobip",
        **fields,
    )


@pytest.mark.django_db
def test_a_conversations_first_messages_are_computed_from_them_alone(
    django_capture_on_commit_callbacks, django_user_model
):
    """One webhook batch opens two conversations (one with two messages, one from an ad), adds a message to a
    counted one and touches a fourth otherwise: each takes its own path in one chunk, and all end as a rebuild."""
    inbox = Inbox.objects.create(name="Openings", time_zone="America/Los_Angeles")
    agent = django_user_model.objects.create_user("agent", password="pw")
    inbox.members.add(agent)
    s = Stream(inbox, django_capture_on_commit_callbacks)
    counted = s.inbound("cyd", 1)
    touched = s.inbound("dee", 1)
    assert drained() == {"fast": 0, "opened": 2, "full": 0}
    s.assign(conversation_id=touched.pk, assignee=agent, actor=agent)
    with django_capture_on_commit_callbacks(execute=True):
        messages_receive(
            [
                (inbox.pk, inbound_event("ada", 1)),
                (inbox.pk, inbound_event("ada", 2)),
                (inbox.pk, inbound_event("ben", 1, referral=AD)),
                (inbox.pk, inbound_event("cyd", 2)),
                (inbox.pk, inbound_event("dee", 2)),
            ]
        )
    marks = rollups.marked()
    ada, ben = (Message.objects.get(provider_message_id=f"{user}-1").conversation for user in ("ada", "ben"))
    assert (marks[ada.pk][1], marks[ada.pk][0], len(marks[ada.pk][2])) == (True, False, 2)
    assert (marks[counted.pk][1], marks[counted.pk][0]) == (False, False)
    assert marks[touched.pk][0]
    assert drained() == {"fast": 1, "opened": 2, "full": 1}
    ada_messages = Message.objects.filter(conversation=ada, direction="in")
    state = ReportState.objects.get(conversation_id=ada.pk).contributions
    assert (state["n"], state["m"]) == (2, max(ada_messages.values_list("pk", flat=True)))
    cycle = ReportCycle.objects.get(conversation=ben)
    assert (cycle.source_kind, cycle.source_id, cycle.source_name) == ("ad", "ad-7", "Winter sale")
    assert messages_in() == 7
    assert equals_a_rebuild()
    s.inbound("ada", 3)  # then on the ordinary fast path
    assert drained() == {"fast": 1, "opened": 0, "full": 0}
    assert messages_in() == 8
    assert equals_a_rebuild()


@pytest.mark.django_db
def test_an_opening_is_recomputed_when_more_than_its_messages_may_count(
    django_capture_on_commit_callbacks, django_user_model
):
    inbox = Inbox.objects.create(name="Fallbacks")
    agent = django_user_model.objects.create_user("agent", password="pw")
    inbox.members.add(agent)
    s = Stream(inbox, django_capture_on_commit_callbacks)
    # Assigned before the drain: the marks coalesce into a full one.
    conversation = s.inbound("eve", 1)
    s.assign(conversation_id=conversation.pk, assignee=agent, actor=agent)
    assert drained() == {"fast": 0, "opened": 0, "full": 1}
    assert ReportCycle.objects.get(conversation=conversation).agent_id == agent.pk
    # Figures stored meanwhile (a recompute ran first, e.g. a rebuild): the opening is not counted again.
    conversation = s.inbound("fay", 1)
    rollups.conversations_refresh([conversation.pk])
    [(_full, opened, _messages)] = rollups.marked().values()
    assert opened
    assert drained() == {"fast": 0, "opened": 0, "full": 1}
    assert messages_in() == 2
    # The batch that opened it did something else to it too (the business wrote from the app): not an opening.
    with django_capture_on_commit_callbacks(execute=True):
        messages_receive(
            [
                (inbox.pk, inbound_event("gus", 1)),
                (inbox.pk, replace(inbound_event("gus", 2), sent_outside=True)),
            ]
        )
    [(full, opened, _messages)] = rollups.marked().values()
    assert (full, opened) == (True, False)  # a message out touches the figures: recomputed whole
    assert drained() == {"fast": 0, "opened": 0, "full": 1}
    assert messages_in() == 3
    assert equals_a_rebuild()


@pytest.mark.django_db
def test_the_fast_path_adds_a_new_day_in_the_order_a_recompute_gives(django_capture_on_commit_callbacks):
    inbox = Inbox.objects.create(name="Days", time_zone="Asia/Tokyo")
    s = Stream(inbox, django_capture_on_commit_callbacks)
    start = (timezone.now() - timedelta(days=3)).astimezone(ZoneInfo("Asia/Tokyo")).replace(hour=9, minute=0)
    with time_machine.travel(start, tick=False) as clock:
        conversation = s.inbound("hal", 1)
        drained()
        for n, hours in ((2, 30), (3, 1), (4, 30)):  # 15:00 the next day, 16:00 the same day, 22:00 the day after
            clock.shift(timedelta(hours=hours))
            s.inbound("hal", n)
            assert drained() == {"fast": 1, "opened": 0, "full": 0}
    days = ReportState.objects.get(conversation_id=conversation.pk).contributions["d"]
    assert [entry[5][rollups.COUNT_INDEX["messages_in"]] for entry in days] == [1, 2, 1]
    assert equals_a_rebuild()
    assert ReportState.objects.get(conversation_id=conversation.pk).contributions["d"] == days


@pytest.mark.django_db
def test_the_fast_path_counts_a_message_on_its_inboxs_local_day(django_capture_on_commit_callbacks):
    """The day a fast-path message is counted on is its inbox's local day, each inbox's zone in one drain (the zones
    are read once per inbox beside the states): 10:00 and 20:00 in Los Angeles are one local day but two UTC days, and
    02:00 and 12:00 in Tokyo (the same instants) one local day too."""
    west = Stream(
        Inbox.objects.create(name="West", time_zone="America/Los_Angeles"), django_capture_on_commit_callbacks
    )
    east = Stream(
        Inbox.objects.create(name="East", time_zone="Asia/Tokyo"),
        django_capture_on_commit_callbacks,
        endpoint_id="biz-2",
    )
    start = (timezone.now() - timedelta(days=3)).astimezone(ZoneInfo("America/Los_Angeles")).replace(hour=10, minute=0)
    with time_machine.travel(start, tick=False) as clock:
        conversations = [west.inbound("lee", 1), east.inbound("kai", 1)]
        assert drained() == {"fast": 0, "opened": 2, "full": 0}
        clock.shift(timedelta(hours=10))
        west.inbound("lee", 2)
        east.inbound("kai", 2)
        assert drained() == {"fast": 2, "opened": 0, "full": 0}
    for conversation in conversations:
        days = ReportState.objects.get(conversation_id=conversation.pk).contributions["d"]
        assert [entry[5][rollups.COUNT_INDEX["messages_in"]] for entry in days] == [2]
    assert equals_a_rebuild()


def states() -> dict[int, dict]:
    return dict(ReportState.objects.values_list("conversation_id", "contributions"))


@pytest.mark.django_db
def test_the_fast_path_stores_each_state_as_a_rebuild_does(django_capture_on_commit_callbacks):
    """The fast path writes back only the keys it moves (the day entries, "n", "m"), merged into the stored document,
    for a day already counted or a new one, one message or several per drain. Every stored state must then be the
    document a rebuild computes: later refreshes subtract it."""
    inbox = Inbox.objects.create(name="States", time_zone="Asia/Tokyo")
    s = Stream(inbox, django_capture_on_commit_callbacks)
    start = (timezone.now() - timedelta(days=4)).astimezone(ZoneInfo("Asia/Tokyo")).replace(hour=9, minute=0)
    with time_machine.travel(start, tick=False) as clock:
        s.inbound("ivy", 1)
        s.inbound("jo", 1)
        assert drained() == {"fast": 0, "opened": 2, "full": 0}
        steps = [
            (1, [("ivy", 2)]),  # the same day
            (30, [("ivy", 3), ("jo", 2)]),  # a new day for both
            (1, [("jo", 3)]),  # the same day as jo's last ...
            (29, [("jo", 4), ("ivy", 4)]),  # ... and in the same drain a new day for jo (22:00); ivy's new day
            (1, [("ivy", 5), ("ivy", 6)]),  # two messages, one entry
        ]
        for hours, messages in steps:
            clock.shift(timedelta(hours=hours))
            for user, n in messages:
                s.inbound(user, n)
            if messages[0] == ("jo", 3):
                continue  # drained with the next step's messages
            stats = drained()
            assert stats["full"] == 0 and stats["opened"] == 0
            stored = states()
            assert equals_a_rebuild()
            assert states() == stored
    ivy = Message.objects.get(provider_message_id="ivy-1").conversation_id
    assert [entry[5][rollups.COUNT_INDEX["messages_in"]] for entry in stored[ivy]["d"]] == [2, 1, 3]


@pytest.mark.django_db
def test_a_chunk_costs_the_same_statements_whatever_its_size(django_capture_on_commit_callbacks):
    """New messages on counted conversations and conversations' first messages, 2 of each or 20: the same statements
    (the marks taken, the states read and locked, the messages read, one write per table, no recompute's reads)."""
    s = Stream(Inbox.objects.create(name="Statements"), django_capture_on_commit_callbacks)
    counts = []
    for size in (2, 20):
        for n in range(size):
            s.inbound(f"old-{size}-{n}", 1)
        drained()
        with django_capture_on_commit_callbacks(execute=True):
            messages_receive(
                [(s.inbox.pk, inbound_event(f"old-{size}-{n}", 2)) for n in range(size)]
                + [(s.inbox.pk, inbound_event(f"new-{size}-{n}", 1)) for n in range(size)]
            )
        with CaptureQueriesContext(connection) as queries:
            assert drained() == {"fast": size, "opened": size, "full": 0}
        counts.append([query["sql"].split()[0] for query in queries.captured_queries])
    assert counts[0] == counts[1]
    # The marks picked and locked, then deleted by key; the states' read, the messages', the new states' INSERT
    # (with their figures), the cycles' INSERT, the days' and hours' upserts, the stored states' UPDATE; then the
    # empty pick that ends the drain (and the savepoints around each).
    assert [sql for sql in counts[0] if sql not in ("SAVEPOINT", "RELEASE")] == [
        "SELECT",
        "DELETE",
        "WITH",
        "SELECT",
        "INSERT",
        "INSERT",
        "INSERT",
        "INSERT",
        "UPDATE",
        "SELECT",
    ]
    assert equals_a_rebuild()


@pytest.mark.django_db
def test_a_chunk_runs_with_the_garbage_collector_paused_then_restored(django_capture_on_commit_callbacks):
    """Every statement of a drain's chunks and of a recompute runs with Python's cyclic collector off (its full
    collections walked the whole heap: a quarter of the drain's client CPU); afterwards it is on again, and a
    collector already off (an embedding process's choice) stays off, even when the chunk fails."""
    s = Stream(Inbox.objects.create(name="Collector"), django_capture_on_commit_callbacks)
    s.inbound("gus", 1)
    drained()
    s.inbound("gus", 2)
    s.inbound("ida", 1)
    enabled_at_statements: list[bool] = []

    def record(execute, sql, params, many, context):
        enabled_at_statements.append(gc.isenabled())
        return execute(sql, params, many, context)

    assert gc.isenabled()
    ids = list(ReportState.objects.values_list("conversation_id", flat=True))
    with connection.execute_wrapper(record):
        assert drained() == {"fast": 1, "opened": 1, "full": 0}
        rollups.conversations_refresh(ids)
    assert len(enabled_at_statements) > 8
    assert not any(enabled_at_statements)
    assert gc.isenabled()
    gc.disable()
    try:
        with rollups.collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(ZeroDivisionError), rollups.collector_paused():
        1 / 0  # noqa: B018
    assert gc.isenabled()
    assert equals_a_rebuild()


def plan_nodes(plan: dict) -> list[str]:
    return [plan["Node Type"], *(node for child in plan.get("Plans", []) for node in plan_nodes(child))]


@pytest.mark.django_db
def test_the_marks_are_deleted_by_key_even_when_autoanalyze_saw_the_queue_empty(django_capture_on_commit_callbacks):
    """The usual statistics of a drained queue (ANALYZE of an empty ReportMarkBatch) once planned the marks' DELETE as a
    nested loop of every mark × the chunk (1.9 s per chunk at 4,000 marks): the marks' statements now join nothing,
    so their cost grows with the chunk, not with the queue."""
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {ReportMarkBatch._meta.db_table}")  # empty: the test's tables start so
    s = Stream(Inbox.objects.create(name="Queue"), django_capture_on_commit_callbacks)
    for n in range(12):
        s.inbound(f"q{n}", 1)
    statements: list[tuple[str, tuple]] = []

    def record(execute, sql, params, many, context):
        if ReportMarkBatch._meta.db_table in sql:
            statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        assert rollups.drain(chunk=5, marks=5, max_chunks=1) == 5
    assert len(rollups.marked()) == 7
    assert len(statements) == 2
    with connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            [[plan]] = cursor.fetchall()
            nodes = plan_nodes(rollups._loads(plan)[0]["Plan"])
            assert not {"Nested Loop", "Hash Join", "Merge Join", "CTE Scan"} & set(nodes), (sql, nodes)
    assert rollups.drain() == 7
    assert equals_a_rebuild()


def lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0]


def until(condition, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


class Beside:
    """Threads beside a drain held inside its transaction (after its chunk's writes, before its commit): each
    other step runs in its own thread and is let go on until it is done or waits on a lock."""

    def __init__(self, monkeypatch):
        self.held, self.release, self.errors, self.threads = threading.Event(), threading.Event(), [], []
        refresh, holder = rollups._refresh, []

        def held_refresh(ids, *, taken=None):
            refresh(ids, taken=taken)
            if threading.current_thread() is (holder or [None])[0]:
                holder.clear()  # its first chunk only
                self.held.set()
                self.release.wait(30)

        monkeypatch.setattr(rollups, "_refresh", held_refresh)
        self.holder = holder

    def run(self, step, *, hold: bool = False) -> None:
        def target() -> None:
            try:
                step()
            except Exception as error:  # noqa: BLE001 - reported by the test
                self.errors.append(error)
            finally:
                self.held.set()
                connections.close_all()

        thread = threading.Thread(target=target)
        waiting = lock_waiters()
        if hold:
            self.holder.append(thread)
        thread.start()
        self.threads.append(thread)
        if hold:
            assert self.held.wait(30)
        else:
            assert until(lambda: not thread.is_alive() or lock_waiters() > waiting)

    def finish(self) -> None:
        self.release.set()
        for thread in self.threads:
            thread.join(30)
        assert not self.errors and not any(thread.is_alive() for thread in self.threads)


@pytest.mark.django_db(transaction=True)
def test_two_drains_and_an_ingest_beside_a_held_drain_count_every_message_once(monkeypatch):
    """A drain holds a conversation (its state written, not committed); a new message for it is stored and a second
    drain runs meanwhile: whichever waits for whom, each message is counted once and the figures end as a rebuild."""
    s = Stream(Inbox.objects.create(name="Two drains"))
    conversation = s.inbound("rae", 1)
    other = s.inbound("sol", 1)
    rollups.drain()
    s.inbound("rae", 2)
    s.inbound("sol", 2)
    beside = Beside(monkeypatch)
    beside.run(rollups.drain, hold=True)
    beside.run(lambda: (s.inbound("rae", 3), s.inbound("tia", 1)))
    beside.run(rollups.drain)
    beside.finish()
    rollups.drain()
    assert not ReportMarkBatch.objects.exists()
    assert messages_in() == 6
    for pk, n in ((conversation.pk, 3), (other.pk, 2)):
        assert ReportState.objects.get(conversation_id=pk).contributions["n"] == n
    assert equals_a_rebuild()


@pytest.mark.django_db(transaction=True)
def test_a_resolution_and_a_reopening_beside_a_held_fast_path_drain(monkeypatch, django_user_model):
    """The drain adds a new message on the fast path and holds the conversation; meanwhile an agent resolves it and
    the customer writes again (a new cycle), and another drain runs: two cycles, every message once, as a rebuild."""
    inbox = Inbox.objects.create(name="Reopened beside")
    agent = django_user_model.objects.create_user("agent", password="pw")
    inbox.members.add(agent)
    s = Stream(inbox)
    conversation = s.inbound("uma", 1)
    rollups.drain()
    s.inbound("uma", 2)
    beside = Beside(monkeypatch)
    stats: dict[str, int] = {}
    beside.run(lambda: rollups.drain(stats=stats), hold=True)
    beside.run(lambda: (s.status(conversation_id=conversation.pk, status="resolved", actor=agent), s.inbound("uma", 3)))
    beside.run(rollups.drain)
    beside.finish()
    assert stats == {"fast": 1, "opened": 0, "full": 0}
    rollups.drain()
    assert not ReportMarkBatch.objects.exists()
    assert messages_in() == 3
    assert ReportCycle.objects.filter(conversation=conversation).count() == 2
    assert equals_a_rebuild()
