"""Report roll-ups: kept by the domain-event subscriber, equal to a rebuild from the raw rows on a mixed stream
(redeliveries, reopenings, out-of-order and failure reports, reassignment, conversions), in the inbox's time zone."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from importlib import import_module
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.apps import apps as django_apps
from django.core.management import call_command
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from inbox.automation.csat import csat_rate, survey_token
from inbox.automation.models import CsatSurvey, InboxRouting
from inbox.models import Inbox, ReportCycle, ReportDay, ReportHistogram, ReportHour, ReportMarkBatch, ReportState
from inbox.reports import rollups
from inbox.reports.models import ReportCsat
from tests.inbox.reports_helpers import AD, TIKTOK_ME, Stream

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_celery(monkeypatch):
    """The broker is the boundary: sends and conversion reports are only recorded, not delivered."""
    monkeypatch.setattr("inbox.outbox.schedule_send", lambda message_id, attempt_id=None: None)
    monkeypatch.setattr("inbox.outbox.schedule_conversion", lambda conversion_id: None)


def snapshot(inbox_ids=None) -> dict:
    scope = {} if inbox_ids is None else {"inbox_id__in": inbox_ids}
    fields = [f.attname for f in ReportDay._meta.concrete_fields if f.attname != "id"]
    cycle_fields = [f.attname for f in ReportCycle._meta.concrete_fields if f.attname != "id"]
    return {
        "days": sorted(tuple(row) for row in ReportDay.objects.filter(**scope).values_list(*fields)),
        "hours": sorted(
            ReportHour.objects.filter(**scope).values_list("inbox_id", "day", "hour", "agent_id", "opened")
        ),
        "cycles": sorted(tuple(row) for row in ReportCycle.objects.filter(**scope).values_list(*cycle_fields)),
        "csat": sorted(
            ReportCsat.objects.filter(**scope).values_list("inbox_id", "day", "agent_id", "rating", "responses")
        ),
        "histograms": sorted(
            ReportHistogram.objects.filter(**scope).values_list(
                "inbox_id", "metric", "day", "agent_id", "tenths", "samples"
            )
        ),
    }


def rate(s: Stream, conversation, rating: int) -> None:
    """The customer rates the latest survey of the conversation on the public page (the service behind it)."""
    survey = CsatSurvey.objects.filter(conversation=conversation).order_by("-created_at", "-pk").first()
    with s.commit(execute=True):
        csat_rate(token=survey_token(survey), rating=rating)


@pytest.fixture
def drains_scheduled(monkeypatch) -> list:
    """The deferred mode's Celery boundary: scheduled drains are recorded; the test drains when it wants."""
    scheduled: list = []
    monkeypatch.setattr(rollups, "schedule_drain", lambda: scheduled.append(1))
    return scheduled


@pytest.mark.parametrize("mode", ["inline", "deferred"])
def test_incremental_roll_ups_equal_a_rebuild_on_a_mixed_stream(
    django_user_model, django_capture_on_commit_callbacks, settings, drains_scheduled, mode
):
    settings.REPORTS_ROLLUPS = mode
    inbox = Inbox.objects.create(name="Support", time_zone="Europe/Berlin")
    InboxRouting.objects.create(inbox=inbox, csat_enabled=True)  # each resolution asks for a rating
    agent = django_user_model.objects.create_user("agent", password="pw")
    colleague = django_user_model.objects.create_user("colleague", password="pw")
    inbox.members.add(agent, colleague)
    s = Stream(inbox, django_capture_on_commit_callbacks, after=rollups.drain if mode == "deferred" else None)
    start = timezone.now().astimezone(ZoneInfo("Europe/Berlin")).replace(hour=9, minute=0, second=0, microsecond=0)
    start -= timedelta(days=5)

    with time_machine.travel(start, tick=False) as clock:
        alice = s.inbound("alice", 1, referral=AD, times=3)  # a webhook delivered three times
        bob = s.inbound("bob", 1, referral=TIKTOK_ME)
        clock.shift(timedelta(minutes=10))
        s.assign(conversation_id=alice.pk, assignee=agent, actor=agent)
        clock.shift(timedelta(minutes=10))
        r1 = s.reply(alice, agent)  # alice's first response: 20 minutes
        s.report(r1, "delivered")
        s.report(r1, "accepted", minutes_ago=1)  # overtaken: stale, changes nothing
        clock.shift(timedelta(minutes=10))
        r2 = s.reply(bob, colleague)
        s.report(r2, "failed")  # a failed reply is no response …
        s.report(r2, "delivered")  # … until a late delivery report proves it arrived
        s.inbound("bob", 2, sent_minutes_ago=90)  # sent before the reply, stored after it
        clock.shift(timedelta(minutes=30))
        s.status(conversation_id=alice.pk, status="resolved", actor=agent)

        clock.shift(timedelta(minutes=5))
        rate(s, alice, 4)  # alice rates her first resolution (the agent's) the same day

        clock.shift(timedelta(days=1, hours=-1, minutes=-5))  # the next day, 08:00 Berlin
        s.inbound("alice", 2, times=2)  # reopens (cycle 1), redelivered once
        carol = s.inbound("carol", 1)
        clock.shift(timedelta(minutes=5))
        s.conversion(conversation_id=alice.pk, author=agent, event="CompletePayment")
        clock.shift(timedelta(minutes=25))
        s.reply(alice, agent)
        r4 = s.reply(carol, colleague)
        s.report(r4, "failed")
        clock.shift(timedelta(minutes=30))
        s.status(conversation_id=alice.pk, status="resolved", actor=agent)
        s.assign(conversation_id=carol.pk, assignee=agent, actor=agent)  # reassigned before the retry
        s.retry(message_id=r4.pk, author=colleague)  # carol's first response is the retry, 60 minutes in

        clock.shift(timedelta(days=1))
        s.assign(conversation_id=bob.pk, assignee=colleague, actor=agent)
        s.status(conversation_id=bob.pk, status="resolved", actor=colleague)
        clock.shift(timedelta(minutes=15))
        s.status(conversation_id=bob.pk, status="open", actor=agent)  # reopened by hand
        clock.shift(timedelta(minutes=15))
        s.status(conversation_id=bob.pk, status="resolved", actor=colleague)
        frank = s.inbound("frank", 1)
        s.report(s.reply(frank, agent), "failed")  # the last event of frank's: the reply no longer counts
        clock.shift(timedelta(minutes=10))
        rate(s, bob, 2)  # bob's latest resolution: the colleague's
        rate(s, alice, 5)  # alice's second resolution, rated a day after it
        s.assign(conversation_id=alice.pk, assignee=colleague, actor=agent)  # later: the rating stays the agent's

    incremental = snapshot()
    assert bool(drains_scheduled) == (mode == "deferred") and not ReportMarkBatch.objects.exists()
    assert ReportState.objects.count() == 4
    assert rollups.rebuild() == 4
    assert snapshot() == incremental
    call_command("rebuild_reports", "--inbox", str(inbox.pk), stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert snapshot() == incremental
    # An upgrade: migration 0028 fills ReportDay.opened_resolved from the cycles kept before, 0029 the histograms.
    ReportHistogram.objects.all().delete()
    ReportDay.objects.update(opened_resolved=0)
    import_module("inbox.migrations.0028_report_histograms").fill_opened_resolved(
        SimpleNamespace(connection=connection)
    )
    import_module("inbox.migrations.0029_report_histogram_arrays").fill_from_cycles(
        django_apps, SimpleNamespace(connection=connection)
    )
    assert snapshot() == incremental
    assert ReportHistogram.objects.exists() and ReportDay.objects.filter(opened_resolved__gt=0).exists()

    # The figures themselves, read from the roll-ups.
    day0, day1, day2 = [(start + timedelta(days=n)).date() for n in range(3)]
    totals = ReportDay.objects.aggregate(
        opened=Sum("opened"), resolved=Sum("resolved"), inn=Sum("messages_in"), out=Sum("messages_out")
    )
    # opened: alice ×2, bob ×2 (a reopening by hand counts), carol, frank; redeliveries counted once; frank's
    # failed reply is not counted.
    assert totals == {"opened": 6, "resolved": 4, "inn": 6, "out": 4}  # CSAT questions are not agents' replies
    assert ReportCycle.objects.get(conversation_id=frank.pk).first_response_at is None
    alice_cycles = ReportCycle.objects.filter(conversation_id=alice.pk).order_by("seq")
    assert [(c.opened_day, c.first_response_seconds, c.resolved_day, c.resolution_seconds) for c in alice_cycles] == [
        (day0, 20 * 60, day0, 60 * 60),
        (day1, 30 * 60, day1, 60 * 60),
    ]
    assert {(c.source_kind, c.source_id, c.source_name) for c in alice_cycles} == {
        ("ad", "ad-7", "Winter sale"),
        ("organic", "", ""),
    }
    assert [c.agent_id for c in alice_cycles] == [agent.pk, agent.pk]
    bob_first = ReportCycle.objects.get(conversation_id=bob.pk, seq=0)
    assert (bob_first.source_kind, bob_first.source_id) == ("tiktok_me", "spring-promo")
    assert (bob_first.first_response_seconds, bob_first.responder_id) == (30 * 60, colleague.pk)
    assert (bob_first.agent_id, bob_first.resolved_day) == (colleague.pk, day2)
    carol_cycle = ReportCycle.objects.get(conversation_id=carol.pk)
    assert (carol_cycle.first_response_seconds, carol_cycle.agent_id) == (60 * 60, agent.pk)
    # The conversion happened in alice's second (organic) cycle, reported by the agent.
    assert list(ReportDay.objects.filter(conversions__gt=0).values_list("day", "agent_id", "source_kind")) == [
        (day1, agent.pk, "organic")
    ]
    assert ReportHour.objects.filter(day=day0, hour=9).aggregate(n=Sum("opened"))["n"] == 2
    # Ratings: on the day given, for the agent of the resolution rated; bob's first survey was never answered.
    assert CsatSurvey.objects.count() == 4 and CsatSurvey.objects.filter(rating__isnull=False).count() == 3
    assert snapshot()["csat"] == [
        (inbox.pk, day0, agent.pk, 4, 1),
        (inbox.pk, day2, agent.pk, 5, 1),
        (inbox.pk, day2, colleague.pk, 2, 1),
    ]


@pytest.mark.parametrize("mode", ["inline", "deferred"])
def test_a_message_sent_outside_the_inbox_alone_in_its_batch_is_counted_as_a_rebuild_counts_it(
    django_capture_on_commit_callbacks, settings, drains_scheduled, mode
):
    settings.REPORTS_ROLLUPS = mode
    inbox = Inbox.objects.create(name="Support")
    s = Stream(inbox, django_capture_on_commit_callbacks, after=rollups.drain if mode == "deferred" else None)
    s.inbound("dora", 1)
    s.inbound("dora", 2, sent_outside=True)  # answered from the TikTok app: its own webhook, its own batch
    incremental = snapshot()
    assert ReportDay.objects.aggregate(out=Sum("messages_out"))["out"] == 1
    assert rollups.rebuild() == 1
    assert snapshot() == incremental


def test_deferred_marks_each_conversation_once_and_a_drain_refreshes_it_once(
    django_capture_on_commit_callbacks, settings, drains_scheduled
):
    settings.REPORTS_ROLLUPS = "deferred"
    inbox = Inbox.objects.create(name="Burst")
    s = Stream(inbox, django_capture_on_commit_callbacks)
    for n in range(5):
        s.inbound("gina", n)
    s.inbound("hal", 1)
    # A mark batch per event batch; each conversation once in the marks, with all its new messages.
    assert ReportMarkBatch.objects.count() == 6 and len(drains_scheduled) == 6  # the task debounces itself
    assert sorted(len(messages) for _full, _opened, messages in rollups.marked().values()) == [1, 5]
    assert not ReportDay.objects.exists()  # nothing counted before the drain
    assert rollups.drain(chunk=1, marks=1, max_chunks=1) == 1  # one conversation's worth of marks: the oldest batch
    assert len(rollups.marked()) == 2 and ReportMarkBatch.objects.count() == 5
    assert rollups.drain() == 2  # one refresh per conversation, whatever its events
    assert ReportDay.objects.aggregate(n=Sum("messages_in"))["n"] == 6
    assert rollups.drain() == 0 and not ReportMarkBatch.objects.exists()
    before = snapshot()
    rollups.rebuild()
    assert snapshot() == before


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's DELETE plan (SQLite: the ORM)")
def test_a_chunk_takes_no_more_marks_than_its_size_whatever_the_plan(
    django_capture_on_commit_callbacks, settings, drains_scheduled
):
    """The plan CI once chose for `DELETE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)`: a semi join that
    rescans the subquery per row, whose LockRows then skips the rows the DELETE just took and offers the next ones
    (a chunk of 1 took every mark). Forced here; the drain picks its chunk once."""
    settings.REPORTS_ROLLUPS = "deferred"
    inbox = Inbox.objects.create(name="Plans")
    s = Stream(inbox, django_capture_on_commit_callbacks)
    for user in ("ida", "jon", "kim"):
        s.inbound(user, 1)
    assert ReportMarkBatch.objects.count() == 3
    with connection.cursor() as cursor:  # the test's transaction: undone after it
        for option in ("hashjoin", "mergejoin", "hashagg", "sort", "material"):
            cursor.execute(f"SET LOCAL enable_{option} = off")
    assert rollups.drain(chunk=1, marks=1, max_chunks=1) == 1
    assert ReportMarkBatch.objects.count() == 2
    assert rollups.drain(chunk=1, marks=2, max_chunks=1) == 2 and not ReportMarkBatch.objects.exists()


def test_the_celery_task_drains(django_capture_on_commit_callbacks, settings, drains_scheduled):
    from inbox.reports.tasks import refresh_report_rollups

    settings.REPORTS_ROLLUPS = "deferred"
    Stream(Inbox.objects.create(name="Task"), django_capture_on_commit_callbacks).inbound("jay", 1)
    assert refresh_report_rollups.apply().get() == 1  # run here, as the worker would
    assert ReportDay.objects.get().messages_in == 1 and not ReportMarkBatch.objects.exists()


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the fast path is PostgreSQL's")
def test_new_customer_messages_take_the_fast_path_and_a_double_count_is_caught(
    django_capture_on_commit_callbacks, settings, drains_scheduled
):
    settings.REPORTS_ROLLUPS = "deferred"
    inbox = Inbox.objects.create(name="Fast")
    s = Stream(inbox, django_capture_on_commit_callbacks)
    s.inbound("lea", 1)
    rollups.drain()
    s.inbound("lea", 2)
    s.inbound("lea", 3, times=2)  # the redelivery announces nothing
    [(conversation_id, (full, _opened, messages))] = rollups.marked().items()
    assert (full, len(messages)) == (False, 2)
    assert rollups.drain() == 1
    assert ReportDay.objects.get().messages_in == 3
    fast = snapshot()
    rollups.rebuild()
    assert snapshot() == fast

    # A recompute that already counted the new message (as a concurrent one would): the fast path sees the count
    # of customer messages is not the stored one plus the new ones, and recomputes instead of adding again.
    s.inbound("lea", 4)
    rollups.conversations_refresh([conversation_id])
    assert rollups.drain() == 1
    assert ReportDay.objects.get().messages_in == 4


def test_off_keeps_nothing_and_a_rebuild_catches_up(django_capture_on_commit_callbacks, settings):
    settings.REPORTS_ROLLUPS = "off"
    inbox = Inbox.objects.create(name="Quiet")
    Stream(inbox, django_capture_on_commit_callbacks).inbound("ivy", 1)
    assert not ReportDay.objects.exists() and not ReportMarkBatch.objects.exists()
    rollups.rebuild(inbox_ids=[inbox.pk])
    assert ReportDay.objects.get().messages_in == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="planner statistics are PostgreSQL's")
def test_a_rebuild_leaves_the_planner_statistics_of_what_it_wrote(django_capture_on_commit_callbacks, settings):
    """Right after a rebuild the planner must know the new rows (not wait for autoanalyze): without statistics it
    took the inbox's foreign-key index for the sources chart's name probe, ~300 ms at the bench's size."""
    settings.REPORTS_ROLLUPS = "off"
    inbox = Inbox.objects.create(name="Rebuilt")
    s = Stream(inbox, django_capture_on_commit_callbacks)
    for n in range(12):
        s.inbound(f"user-{n}", 1)
    tables = [model._meta.db_table for model in (ReportCycle, ReportDay, ReportState)]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE " + ", ".join(tables))  # the statistics of the empty tables: 0 rows
        rollups.rebuild(inbox_ids=[inbox.pk])
        cursor.execute("SELECT relname, reltuples FROM pg_class WHERE relname = ANY(%s)", [tables])
        estimated = dict(cursor.fetchall())
        cursor.execute(
            "SELECT count(*) FROM pg_stats WHERE tablename = %s AND attname = 'inbox_id'", [ReportCycle._meta.db_table]
        )
        (inbox_stats,) = cursor.fetchone()
    assert estimated == {
        ReportCycle._meta.db_table: ReportCycle.objects.count(),
        ReportDay._meta.db_table: ReportDay.objects.count(),
        ReportState._meta.db_table: ReportState.objects.count(),
    }
    assert ReportCycle.objects.count() == 12
    assert inbox_stats == 1


def test_days_and_hours_are_the_inbox_time_zone(django_user_model, django_capture_on_commit_callbacks):
    inbox = Inbox.objects.create(name="New York", time_zone="America/New_York")
    s = Stream(inbox, django_capture_on_commit_callbacks)
    # 02:30 UTC is still the evening before in New York.
    utc = timezone.now().astimezone(ZoneInfo("UTC")).replace(hour=2, minute=30, second=0, microsecond=0)
    with time_machine.travel(utc - timedelta(days=2), tick=False):
        s.inbound("dave", 1)
    local = (utc - timedelta(days=2)).astimezone(ZoneInfo("America/New_York"))
    row = ReportHour.objects.get()
    assert (row.day, row.hour) == (local.date(), local.hour)
    assert row.day == (utc - timedelta(days=3)).date()
    assert ReportDay.objects.get().messages_in == 1


def test_a_rebuild_after_a_time_zone_change_moves_the_days(django_user_model, django_capture_on_commit_callbacks):
    inbox = Inbox.objects.create(name="Tokyo")
    s = Stream(inbox, django_capture_on_commit_callbacks)
    utc = timezone.now().astimezone(ZoneInfo("UTC")).replace(hour=20, minute=0, second=0, microsecond=0)
    with time_machine.travel(utc - timedelta(days=1), tick=False):
        s.inbound("erin", 1)
    assert ReportHour.objects.get().hour == 20  # settings.TIME_ZONE: UTC
    Inbox.objects.filter(pk=inbox.pk).update(time_zone="Asia/Tokyo")
    rollups.rebuild(inbox_ids=[inbox.pk])
    assert ReportHour.objects.get().hour == 5  # 20:00 UTC is 05:00 the next morning in Tokyo


@pytest.mark.parametrize("mode", ["inline", "deferred"])
def test_changing_an_inbox_time_zone_moves_its_days(
    django_capture_on_commit_callbacks, settings, drains_scheduled, mode
):
    settings.REPORTS_ROLLUPS = mode
    inbox = Inbox.objects.create(name="Lisbon", time_zone="UTC")
    s = Stream(inbox, django_capture_on_commit_callbacks)
    utc = timezone.now().astimezone(ZoneInfo("UTC")).replace(hour=23, minute=30, second=0, microsecond=0)
    with time_machine.travel(utc - timedelta(days=1), tick=False):
        s.inbound("kim", 1)
    rollups.drain()
    assert ReportHour.objects.get().hour == 23
    inbox.time_zone = "Asia/Tokyo"
    with django_capture_on_commit_callbacks(execute=True):
        inbox.save()
    rollups.drain()
    row = ReportHour.objects.get()  # moved, not added: the old hour's row is gone
    assert (row.hour, row.day) == (8, (utc - timedelta(days=1)).date() + timedelta(days=1))
    moved = snapshot()
    rollups.rebuild()
    assert snapshot() == moved


def test_a_time_zone_must_be_an_iana_name():
    from django.core.exceptions import ValidationError

    inbox = Inbox(name="Moon", time_zone="Moon/Base")
    with pytest.raises(ValidationError, match="IANA"):
        inbox.full_clean()
    assert Inbox(name="Default").time_zone == "UTC"


def test_figures_of_a_conversation_are_a_function_of_its_rows():
    """The definitions on hand-made rows: a reply before the customer wrote does not stop the clock; a reopening
    starts a new cycle; a failed reply is not a response; the automation's CSAT question after a resolution opens
    nothing; a rating goes to the agent of the resolution it rates, on the day it was given."""
    t0 = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("UTC"))  # a pure function: any fixed date will do

    def at(minutes):
        return t0 + timedelta(minutes=minutes)

    conversation = {
        "pk": 1,
        "inbox_id": 1,
        "created_at": at(0),
        "referral": {},
        "assignee_id": None,
        "inbox__time_zone": "UTC",
    }
    messages = [
        (1, "in", at(0), None, "", {}),
        (2, "out", at(5), 9, "failed", {}),
        (3, "out", at(7), 9, "delivered", {}),
        (4, "in", at(100), None, "", AD),
        (5, "out", at(130), 8, "seen", {}),
        (6, "out", at(61), 77, "delivered", {}),  # the CSAT question, by the automation user (77)
    ]
    audits = [
        (1, "conversation.resolved", 9, None, {"status": "open"}, {"status": "resolved"}, at(60)),
        (2, "conversation.reopened", None, 4, {"status": "resolved"}, {"status": "open"}, at(100.01)),
    ]
    ratings = [(1, 3, at(60 * 24 + 1), at(60))]  # asked at the first resolution, rated the next day
    cycles, contributions = rollups.conversation_figures(conversation, messages, audits, [], ratings, automation_id=77)
    assert [(c.seq, c.first_response_seconds, c.responder_id, c.resolution_seconds) for c in cycles] == [
        (0, 7 * 60, 9, 60 * 60),
        (1, 30 * 60, 8, None),
    ]
    assert cycles[1].opened_at == at(100)  # the reopening message's time
    assert cycles[1].source_kind == "ad"
    assert cycles[0].agent_id == 9  # unassigned: the agent who resolved it
    days = {tuple(entry[:5]): entry[5] for entry in contributions["d"]}
    day = date(2026, 3, 2).isoformat()
    opened, replied = rollups.COUNT_INDEX["opened"], rollups.COUNT_INDEX["replied"]
    assert (days[(1, day, 0, "ad", "ad-7")][opened], days[(1, day, 0, "ad", "ad-7")][replied]) == (1, 1)
    assert days[(1, day, 8, "ad", "ad-7")][rollups.COUNT_INDEX["messages_out"]] == 1
    assert sum(counts[rollups.COUNT_INDEX["messages_out"]] for counts in days.values()) == 2  # not the question
    assert contributions["s"] == [[1, date(2026, 3, 3).isoformat(), 9, 3, 1]]
    without, _ = rollups.conversation_figures(conversation, messages, audits, [])  # were it an agent's reply …
    assert without[1].opened_at == at(61)  # … it would have reopened the conversation
