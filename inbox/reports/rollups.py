"""Report roll-ups: kept from the domain events, rebuilt from the raw rows, by the same code.

A conversation's figures (its cycles, the counts it adds to each day and hour, its CSAT ratings) are a pure
function of its raw rows: messages, audit log, conversions, rated surveys (`conversation_figures`). The
subscriber recomputes the conversations an event batch touched and applies to the roll-ups only the difference
to what they contributed before (kept in `ReportState`). So a redelivered webhook, a reopening, an out-of-order
status report or a reassignment moves the figures exactly as a rebuild would: `manage.py rebuild_reports` runs
the same function on every conversation, starting from empty tables (tests/inbox/test_reports_rollups.py proves
both equal).

Cost: one batch of events costs a fixed number of statements whatever its size (the conversations' rows are
read together, the differences written with one pipelined upsert per table). Definitions: README, "Reports".
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from inbox import domain_events as de
from inbox.automation.models import CsatSurvey
from inbox.collector import paused as collector_paused
from inbox.models import AuditLog, Conversation, Conversion, Message
from inbox.reports.models import (
    CSAT_COUNTS,
    CSAT_KEY,
    DAY_COUNTS,
    DAY_CYCLE_COUNTS,
    DAY_KEY,
    HOUR_COUNTS,
    HOUR_KEY,
    SOURCE_AD,
    SOURCE_ORGANIC,
    SOURCE_OTHER,
    SOURCE_TIKTOK_ME,
    ReportCsat,
    ReportCycle,
    ReportDay,
    ReportHistogram,
    ReportHour,
    ReportMarkBatch,
    ReportState,
)

logger = logging.getLogger(__name__)

CHUNK = 500
# Marks a drain's transaction takes at most (conversations, counted once per batch naming them): the conversations a
# transaction's batches name are refreshed once however many name them, so the larger, the fewer refreshes of a
# conversation with messages in many webhook batches (a refresh rewrites its state row); the transaction holds its
# conversations' state rows locked until it commits (only other refreshes wait for them).
MARKS_PER_TRANSACTION = 20 * CHUNK
RESOLVED = Conversation.Status.RESOLVED
COUNT_INDEX = {name: index for index, name in enumerate(DAY_COUNTS)}

# Events after which a conversation's figures may differ. Delivery reports matter only into or out of
# `failed` (a failed reply is no reply); the other status reports cost nothing.
_TOUCHING = (
    de.ConversationCreated,
    de.MessageReceived,
    de.MessageQueued,
    de.MessageSentOutside,  # counted as a message out (and a response) by `conversation_figures`
    de.MessageRetried,
    de.ConversationAssigned,
    de.ConversationStatusChanged,
    de.ConversionUpdated,
    de.CsatRated,
)


def touches_figures(event: de.DomainEvent) -> bool:
    if isinstance(event, de.MessageStatusChanged):
        return Message.Status.FAILED in (event.status, event.previous_status)
    return isinstance(event, _TOUCHING)


DRAIN_DELAY_SECONDS = 1
DRAIN_SCHEDULED_KEY = "reports:rollups:drain-scheduled"


def on_domain_events(events: list[de.DomainEvent]) -> None:
    """The subscriber after commit (registered in InboxConfig.ready): refresh the conversations these events
    touched, now (REPORTS_ROLLUPS = "inline"), or ("deferred", the default) schedule the Celery task that refreshes
    the ones `mark_touched` marked."""
    mode = settings.REPORTS_ROLLUPS
    if mode == "off" or not any(touches_figures(event) for event in events):
        return
    if mode == "inline":
        conversations_refresh(sorted({event.conversation_id for event in events if touches_figures(event)}))
        return
    schedule_drain()


def mark_touched(events: list[de.DomainEvent]) -> None:
    """The subscriber before commit (REPORTS_ROLLUPS = "deferred"): mark the conversations these events touched,
    one statement; in the webhook processor's batch it commits with the batch (domain_events.run_before_commit),
    one commit instead of two."""
    if settings.REPORTS_ROLLUPS != "deferred":
        return
    ids = sorted({event.conversation_id for event in events if touches_figures(event)})
    if not ids:
        return
    appended: dict[int, list[int]] = {}
    full: set[int] = set()
    created: set[int] = set()
    other: set[int] = set()  # any other event (e.g. a message sent outside the inbox): not opened by messages alone
    for event in events:
        if isinstance(event, de.MessageReceived) and not event.reopened:
            appended.setdefault(event.conversation_id, []).append(event.message_id)
        elif isinstance(event, de.ConversationCreated):
            created.add(event.conversation_id)  # full unless messages were appended (see `appended` below)
        elif touches_figures(event):
            full.add(event.conversation_id)
        else:
            other.add(getattr(event, "conversation_id", None))
    appended = {pk: ids_ for pk, ids_ in appended.items() if pk not in full}
    conversations_mark(ids, appended=appended, opened={pk for pk in created if pk in appended and pk not in other})


def on_inbox_saving(sender, instance, **kwargs) -> None:
    """pre_save of Inbox: a new time zone moves its conversations' days and hours, so they are refreshed (each
    subtracts what it added under the old zone) once the change commits."""
    if instance.pk is None:
        return
    before = type(instance).objects.filter(pk=instance.pk).values_list("time_zone", flat=True).first()
    if before is not None and before != instance.time_zone:
        transaction.on_commit(lambda: inbox_refresh(instance.pk))


def inbox_refresh(inbox_id: int) -> None:
    """Refresh every conversation of an inbox (as REPORTS_ROLLUPS says: now, or marked for the task)."""
    if settings.REPORTS_ROLLUPS == "off":
        return
    ids = list(Conversation.objects.filter(inbox_id=inbox_id).order_by("pk").values_list("pk", flat=True))
    if settings.REPORTS_ROLLUPS == "inline":
        conversations_refresh(ids)
        return
    for start in range(0, len(ids), CHUNK):
        conversations_mark(ids[start : start + CHUNK])
    schedule_drain()


def conversations_mark(
    ids: list[int], *, appended: dict[int, list[int]] | None = None, opened: set[int] | None = None
) -> None:
    """Mark conversations to refresh: one row for the batch, whatever its size (`ReportMarkBatch`).

    `appended`: the conversations whose only change is these new customer messages (PostgreSQL: the drain may then
    add them to the stored figures instead of recomputing the conversation; any other mark makes it full).
    `opened`: those of them these messages opened (the batch created the conversation and did nothing else to it):
    the drain computes their figures from the conversation's row and these messages, without reading the rest."""
    appended = appended or {}
    opened = opened or set()
    entries = [[pk, pk not in appended, pk in opened and pk in appended, appended.get(pk, [])] for pk in sorted(ids)]
    if not entries:
        return
    table = connection.ops.quote_name(ReportMarkBatch._meta.db_table)
    # One JSON document written by the C encoder (psycopg dumps a list parameter element by element in Python).
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (marked_at, size, conversations) VALUES (%s, %s, %s)",  # noqa: S608
            [timezone.now(), len(entries), _dumps(entries)],
        )


def marks_merged(batches: Iterable[list[list]]) -> dict[int, tuple[bool, bool, list[int]]]:
    """The marks of these batches' `conversations` by conversation: (full, opened, new customer message ids). A
    conversation several batches name is full if any says so, opened if any says so, with all their messages."""
    merged: dict[int, list] = {}
    for entries in batches:
        for pk, full, opened, messages in entries:
            seen = merged.get(pk)
            if seen is None:
                merged[pk] = [full, opened, list(messages)]
            else:
                seen[0], seen[1] = seen[0] or full, seen[1] or opened
                seen[2].extend(messages)
    return {pk: (full, opened, messages) for pk, (full, opened, messages) in merged.items()}


def marked() -> dict[int, tuple[bool, bool, list[int]]]:
    """Every conversation marked and not drained yet: (full, opened, new customer message ids)."""
    return marks_merged(ReportMarkBatch.objects.order_by("pk").values_list("conversations", flat=True))


_scheduled_until = 0.0  # time.monotonic() until which this process knows a drain task is scheduled


def schedule_drain() -> None:
    """At most one drain task per DRAIN_DELAY_SECONDS: every mark made meanwhile is drained by it (the marks are
    rows, so a lost task only delays them until beat's run). A process that scheduled one itself does not ask Redis
    again until that task's time: a webhook batch per few milliseconds paid a Redis round trip each otherwise."""
    global _scheduled_until
    from inbox.reports.tasks import refresh_report_rollups

    if time.monotonic() < _scheduled_until:
        return
    try:
        if cache.add(DRAIN_SCHEDULED_KEY, 1, timeout=DRAIN_DELAY_SECONDS):
            # Half the delay: a mark made just before the task runs (early timers, a busy worker) may miss it.
            _scheduled_until = time.monotonic() + DRAIN_DELAY_SECONDS / 2
            refresh_report_rollups.apply_async(countdown=DRAIN_DELAY_SECONDS)
    except Exception:  # noqa: BLE001 - the marks are stored: beat's run drains them
        logger.warning("could not schedule the report roll-ups' refresh; beat's run will", exc_info=True)


def drain(
    *,
    chunk: int = CHUNK,
    marks: int | None = None,
    max_chunks: int | None = None,
    stats: dict[str, int] | None = None,
) -> int:
    """Refresh every marked conversation: per transaction (at most `max_chunks`), the oldest mark batches naming at
    most `marks` conversations together (MARKS_PER_TRANSACTION unless given; at least one batch), their conversations
    refreshed `chunk` at a time; returns how many were refreshed (a conversation several batches of one transaction
    name, once).

    Concurrency: the states' row locks decide, not the marks. A drain that finds the oldest batches held by another
    drain ends (that one goes on to the rest); a mark made while its conversation is being refreshed is a new row that
    does not wait, and a drain that takes it waits for the conversation's state row, then reads what the first stored
    (the fast path refuses a message the stored figures may have counted: `_append`).

    `stats` (if given) is counted into: "fast" conversations added to on the fast path, "opened" computed from the
    messages that opened them (no reads), "full" recomputed."""
    table = connection.ops.quote_name(ReportMarkBatch._meta.db_table)
    budget = marks or MARKS_PER_TRANSACTION
    refreshed = 0
    for _ in range(max_chunks) if max_chunks is not None else itertools.count():
        with collector_paused(), transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    # Whole batches, oldest first, as many as fit in `budget` (at least one), picked and locked once
                    # (skipping those another drain holds: only those it took are locked, no row lock is spent on the
                    # rest), then deleted by their keys (a literal array). The batches that fit are chosen by an init
                    # plan (`ARRAY(…)`, run once: as `IN (SELECT … LIMIT n)` under FOR UPDATE SKIP LOCKED the planner
                    # may rescan it per row), not by a join whose plan a table autoanalyze saw empty (a drained queue,
                    # the usual case) once made a nested loop over every mark. As one JSON document (one decoding in C).
                    cursor.execute(
                        f"""SELECT coalesce(json_agg(json_build_array(id, conversations) ORDER BY id), '[]')
                            FROM (SELECT id, conversations FROM {table} WHERE id = ANY(ARRAY(
                                    SELECT id FROM (SELECT id, size, sum(size) OVER (ORDER BY id) AS upto
                                                    FROM (SELECT id, size FROM {table} ORDER BY id LIMIT %s) AS head
                                                   ) AS running
                                    WHERE upto <= %s OR upto = size))
                                  ORDER BY id FOR UPDATE SKIP LOCKED) AS picked""",  # noqa: S608
                        [budget, budget],
                    )
                    batches = _loads(cursor.fetchone()[0])
                    if batches:
                        cursor.execute(
                            f"DELETE FROM {table} WHERE id = ANY(%s::bigint[])",  # noqa: S608
                            [_array(pk for pk, _ in batches)],
                        )
                merged = marks_merged(entries for _, entries in batches)
                if not merged and batches:
                    continue  # batches that named no conversation (none are written so): the next ones
                ids = sorted(merged)
                appended = {pk: messages for pk, (full, _, messages) in merged.items() if not full}
                opened = {pk for pk, (full, opened, _) in merged.items() if opened and not full}
            else:  # SQLite (make run's zero-setup default): one writer at a time anyway; no fast path
                picked, taken_size = [], 0
                for pk, size in ReportMarkBatch.objects.order_by("pk").values_list("pk", "size")[:budget]:
                    if picked and taken_size + size > budget:
                        break
                    picked.append(pk)
                    taken_size += size
                batches = ReportMarkBatch.objects.filter(pk__in=picked).values_list("conversations", flat=True)
                ids = sorted(marks_merged(list(batches)))
                ReportMarkBatch.objects.filter(pk__in=picked).delete()
                appended, opened = {}, set()
            if not ids:
                return refreshed
            for start in range(0, len(ids), chunk):  # in id order, as every refresh takes the states' locks
                part = ids[start : start + chunk]
                _drain_part(part, {pk: appended[pk] for pk in part if pk in appended}, opened, stats)
        refreshed += len(ids)
    return refreshed


def _drain_part(ids: list[int], appended: dict[int, list[int]], opened: set[int], stats: dict | None) -> None:
    """One chunk of a drain's conversations: the fast paths, then the recompute of the rest (a fixed number of
    statements whatever the chunk's size)."""
    taken = _append(appended, opened) if appended else Appended()
    recomputed = sorted(set(ids) - set(appended) | taken.full)
    _refresh(recomputed, taken=taken)
    if stats is not None:
        full = len(set(recomputed) | taken.full)  # with openings a concurrent refresh stored first
        stats["fast"] = stats.get("fast", 0) + len(ids) - full - len(taken.conversations)
        stats["opened"] = stats.get("opened", 0) + len(taken.conversations)
        stats["full"] = stats.get("full", 0) + full


@dataclass
class Appended:
    """What the fast path took from a chunk; its writes join the recomputed conversations' (one statement per
    table for the chunk)."""

    full: set[int] = field(default_factory=set)  # refused: recomputed whole
    # Opened by their marked messages, as conversation_figures takes them:
    conversations: list[dict] = field(default_factory=list)
    messages: dict[int, list[tuple]] = field(default_factory=dict)  # theirs, likewise
    figures: dict[int, tuple] = field(default_factory=dict)  # theirs, once their state rows are inserted with them
    day_delta: dict[tuple, list[int]] = field(default_factory=dict)  # the other conversations' new messages
    parts: list[list] = field(default_factory=list)  # [conversation id, the keys of its state to replace, 1]


def _append(appended: dict[int, list[int]], opened: set[int]) -> Appended:
    """The fast path (PostgreSQL): add new customer messages to the stored figures of conversations nothing else
    changed in, without reading them again. Refuses (to the full recompute): no stored figures yet (unless opened),
    the last cycle resolved or without a customer message yet, a message with a referral or stored before the cycle
    began, or a message whose id is not above every customer message the stored figures counted ("m": it may be
    counted already, e.g. by a concurrent recompute, or an older one was not counted yet). Its result is exactly
    the full recompute's.

    Why "m" suffices: the stored figures count only customer messages with ids up to "m", so messages above it are
    not counted yet; one below it is refused, and a message the figures have not counted always gets its own mark
    (after its commit), which then finds it below "m" or adds it. Only the parts it moves are read and written
    ("d", "n", "m" of the contributions), with one JSON document per statement (psycopg escapes a text[] of JSON
    element by element: that escaping was most of the old fast path's own time).

    A conversation `opened` by its marked messages (the batch that created it did nothing else to it) has no other
    rows the figures read: if it has no state row yet (otherwise it goes the way above), its figures are
    `conversation_figures` of the conversation's row and these messages — the recompute's own function, without its
    reads of messages, audit log, conversions and surveys — and `_insert_opened` inserts its state row with them.
    A row those messages' batch did not write gets its own mark after its commit, which then finds the stored
    figures."""
    ids = sorted(appended)
    state_table = connection.ops.quote_name(ReportState._meta.db_table)
    taken = Appended()
    with connection.cursor() as cursor:
        # The stored states locked in id order: the same locks a recompute takes; the opened conversations without
        # one are read (their state rows are inserted with their figures, `_insert_opened`). A stored state's inbox
        # is that of its day entries (a conversation never changes inbox; one with no day entries has no customer
        # message and is refused below): a join with the conversations cost more than the rest; the inboxes' time
        # zones come once per inbox, beside the states (a join per state and a jsonb built of its parts per state
        # cost the server ~2 µs a state: bench/README.md, tenth session). The opened
        # conversations' rows are read once, by their ids (joining to inbox_conversation otherwise was planned as a
        # hash join over all of its rows).
        cursor.execute(
            f"""WITH opened AS MATERIALIZED (
                  SELECT c.id, c.inbox_id, i.time_zone, c.created_at,
                         CASE WHEN c.referral = '{{}}'::jsonb THEN NULL ELSE c.referral END AS referral, c.assignee_id
                  FROM inbox_conversation c JOIN inbox_inbox i ON i.id = c.inbox_id WHERE c.id = ANY(%s::bigint[])),
                locked AS (
                  SELECT s.conversation_id, s.contributions -> 'c' -> -1 AS c, s.contributions -> 'd' AS d,
                         s.contributions -> 'n' AS n, s.contributions -> 'm' AS m
                  FROM {state_table} s
                  WHERE s.conversation_id = ANY(%s::bigint[]) ORDER BY s.conversation_id FOR UPDATE OF s)
                SELECT json_build_array(
                  (SELECT coalesce(json_agg(json_build_array(conversation_id, c, d, n, m)), '[]') FROM locked),
                  (SELECT coalesce(json_object_agg(id, time_zone), '{{}}') FROM inbox_inbox
                   WHERE id IN (SELECT (d -> 0 ->> 0)::bigint FROM locked)),
                  (SELECT coalesce(json_agg(json_build_array(o.id, o.inbox_id, o.time_zone, {us("o.created_at")},
                                                             o.referral, o.assignee_id)), '[]')
                   FROM opened o WHERE NOT EXISTS (SELECT FROM locked WHERE locked.conversation_id = o.id)))""",  # noqa: S608
            [_array(pk for pk in ids if pk in opened), _array(ids)],
        )
        # One JSON document (one decoding in C; a document per row cost a decoding and a row each).
        stored, zones_of, fresh = _loads(cursor.fetchone()[0])
        found = {}
        for pk, last, days, counted, highest in stored:
            inbox_id = days[0][0] if days and str(days[0][0]) in zones_of else None  # a deleted inbox: None
            found[pk] = (last, days, counted, highest, inbox_id, zones_of.get(str(inbox_id)))
        created = {
            pk: {
                "pk": pk,
                "inbox_id": inbox_id,
                "created_at": _at(created_at),
                "referral": referral or {},
                "assignee_id": assignee_id,
                "inbox__time_zone": tz,
            }
            for pk, inbox_id, tz, created_at, referral, assignee_id in fresh
        }
        cursor.execute(
            f"""SELECT conversation_id, id, {us("created_at")}, author_id, status,
                       CASE WHEN referral = '{{}}'::jsonb THEN NULL ELSE referral END
                FROM inbox_message WHERE id = ANY(%s::bigint[]) AND direction = 'in'""",  # noqa: S608
            [_array(sorted({pk for messages in appended.values() for pk in messages}))],
        )
        new_messages = defaultdict(dict)
        for conversation_id, pk, created_at, author_id, status, referral in cursor.fetchall():
            new_messages[conversation_id][pk] = (_at(created_at), author_id, status, referral)
    full = taken.full
    day_delta: dict[tuple, list[int]] = defaultdict(lambda: [0] * len(DAY_COUNTS))
    index = COUNT_INDEX["messages_in"]
    zones: dict[str, ZoneInfo] = {}
    for pk in ids:
        wanted = set(appended[pk])
        if set(new_messages[pk]) != wanted or (pk not in found and pk not in created):
            full.add(pk)  # a created state row is then filled by the recompute, in this transaction
            continue
        if pk in created:
            taken.conversations.append(created[pk])
            taken.messages[pk] = [
                (message, Message.Direction.IN, at, author_id, status, _loads(referral))
                for message, (at, author_id, status, referral) in sorted(new_messages[pk].items())
            ]
            continue
        last, days, counted, highest, inbox_id, tz = found[pk]
        if not last or inbox_id is None or counted is None or highest is None or min(wanted) <= highest:
            full.add(pk)
            continue
        cycle = _CYCLE_INDEX  # the last cycle's values after inbox and conversation: see CYCLE_FIELDS
        if last[cycle["resolved_at"]] is not None or last[cycle["first_inbound_at"]] is None:
            full.add(pk)
            continue
        opened_at = datetime.fromisoformat(last[cycle["opened_at"]])
        first_in = datetime.fromisoformat(last[cycle["first_inbound_at"]])
        messages = new_messages[pk].values()
        if any(referral is not None or at <= opened_at or at < first_in for at, _, _, referral in messages):
            full.add(pk)
            continue
        zone = zones.get(tz) or zones.setdefault(tz, ZoneInfo(tz or settings.TIME_ZONE))
        key = [inbox_id, None, last[cycle["agent_id"]], last[cycle["source_kind"]], last[cycle["source_id"]]]
        for at, *_ in messages:
            day = at.astimezone(zone).date()
            key[1] = day.isoformat()
            # In place: the stored entries are in the order conversation_figures gives them (a new day re-sorts).
            entry = next((entry for entry in days if entry[:5] == key), None)
            if entry is None:
                entry = [*key, [0] * len(DAY_COUNTS)]
                days.append(entry)
                days.sort(key=lambda entry: _sort_key((entry[:5],)))
            entry[5][index] += 1
            day_delta[(inbox_id, day, *key[2:])][index] += 1
        taken.parts.append([pk, {"d": days, "n": counted + len(wanted), "m": max(wanted)}, 1])
    taken.day_delta = day_delta
    return taken


# --- The figures of one conversation --------------------------------------------------------------------------


CYCLE_FIELDS = [
    "inbox_id",
    "conversation_id",
    "seq",
    "opened_at",
    "opened_day",
    "agent_id",
    "source_kind",
    "source_id",
    "source_name",
    "first_inbound_at",
    "first_response_at",
    "first_response_day",
    "first_response_seconds",
    "responder_id",
    "resolved_at",
    "resolved_day",
    "resolution_seconds",
]


@dataclass
class CycleRow:
    """A ReportCycle row as computed (written with one INSERT per batch, not through model instances)."""

    inbox_id: int
    conversation_id: int
    seq: int
    opened_at: datetime
    opened_day: date
    agent_id: int
    source_kind: str
    source_id: str
    source_name: str
    first_inbound_at: datetime | None = None
    first_response_at: datetime | None = None
    first_response_day: date | None = None
    first_response_seconds: int | None = None
    responder_id: int = 0
    resolved_at: datetime | None = None
    resolved_day: date | None = None
    resolution_seconds: int | None = None

    def values(self) -> list:
        return [getattr(self, name) for name in CYCLE_FIELDS]

    def stored(self) -> list:
        """The values after inbox and conversation as JSON keeps them (the contributions' "c"; dates as ISO text),
        written field by field: the generic conversion per value was a tenth of an opened conversation's cost."""
        return [
            self.seq,
            self.opened_at.isoformat(),
            self.opened_day.isoformat(),
            self.agent_id,
            self.source_kind,
            self.source_id,
            self.source_name,
            _iso_or_none(self.first_inbound_at),
            _iso_or_none(self.first_response_at),
            _iso_or_none(self.first_response_day),
            self.first_response_seconds,
            self.responder_id,
            _iso_or_none(self.resolved_at),
            _iso_or_none(self.resolved_day),
            self.resolution_seconds,
        ]


def _iso_or_none(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass
class Cycle:
    seq: int
    opened_at: datetime
    resolved_at: datetime | None = None
    resolver_id: int = 0
    inbound: list[tuple] = field(default_factory=list)
    replies: list[tuple] = field(default_factory=list)  # by an agent, not failed
    referral: dict | None = None


def source_of(referral: dict | None) -> tuple[str, str, str]:
    """(kind, id, name) of a referral as the channel normalized it (see Message.referral)."""
    if not referral:
        return SOURCE_ORGANIC, "", ""
    kind = referral.get("source")
    if kind == SOURCE_AD:
        source_id = referral.get("ad_id") or referral.get("source_id") or ""
        name = referral.get("ad_name") or referral.get("source_name") or ""
    elif kind == SOURCE_TIKTOK_ME:
        source_id = referral.get("ref") or referral.get("tracking_ref") or referral.get("source_id") or ""
        name = referral.get("source_name") or source_id
    else:
        kind = SOURCE_OTHER
        source_id = referral.get("source_id") or ""
        name = referral.get("source_name") or ""
    return kind, str(source_id)[:200], str(name)[:300]


def conversation_figures(
    conversation: dict,
    messages: list[tuple],
    audits: list[tuple],
    conversions: list[tuple],
    ratings: Iterable[tuple] = (),
    *,
    automation_id: int | None = None,
):
    """The cycles (ReportCycle rows to write) and roll-up contributions of one conversation, from its raw rows.

    `conversation`: pk, inbox_id, created_at, referral, assignee_id, inbox__time_zone. `messages`: (pk, direction,
    at, author_id, status, referral) — `at` is when we stored an inbound message, when a reply's current attempt
    was queued; `audits`: (pk, action, actor_id, message_id, before, after, created_at); `conversions`: (pk,
    author_id, occurred_at), not failed; `ratings`: (pk, rating, rated_at, asked_at) of the CSAT surveys rated.
    All are the server's times: one clock for every boundary. Messages by `automation_id` (the automation user:
    CSAT questions, out-of-hours replies, rules' canned responses) are not agents' replies and open nothing.
    """
    tz = ZoneInfo(conversation["inbox__time_zone"] or settings.TIME_ZONE)
    inbox_id = conversation["inbox_id"]
    messages = sorted(messages, key=lambda m: (m[2], m[0]))
    audits = sorted(audits, key=lambda a: (a[6], a[0]))
    message_times = {m[0]: m[2] for m in messages}

    resolutions: list[tuple[datetime, int]] = []
    reopenings: list[datetime] = []
    assignments: list[tuple[datetime, int]] = []
    for _pk, action, actor_id, message_id, before, after, created_at in audits:
        before, after = before or {}, after or {}
        if action in ("conversation.assigned", "conversation.unassigned"):
            assignments.append((created_at, after.get("assignee") or 0))
        elif "status" in after and before.get("status") != after["status"]:
            if after["status"] == RESOLVED:
                resolutions.append((created_at, actor_id or 0))
            elif before.get("status") == RESOLVED:
                # A customer's message reopens at the time it was stored; an agent's change when it was made.
                reopenings.append(message_times.get(message_id, created_at))
    resolved_times = [at for at, _ in resolutions]

    def cycle_of(at: datetime) -> int:
        return bisect_left(resolved_times, at)  # resolutions strictly before `at`

    cycles = [Cycle(seq=0, opened_at=conversation["created_at"])]
    for seq, (at, actor_id) in enumerate(resolutions):
        cycles[seq].resolved_at, cycles[seq].resolver_id = at, actor_id
        cycles.append(Cycle(seq=seq + 1, opened_at=at))
    started = [False] * len(cycles)  # a cycle after a resolution exists once something reopened it
    started[0] = True

    def start(seq: int, at: datetime) -> None:
        cycle = cycles[seq]
        if not started[seq] or at < cycle.opened_at:
            cycle.opened_at = at
        started[seq] = True

    for at in reopenings:
        start(cycle_of(at), at)
    any_referral = False
    for pk, direction, created_at, author_id, status, referral in messages:
        if automation_id is not None and author_id == automation_id:
            continue  # e.g. the CSAT question sent after a resolution would otherwise start a cycle
        seq = cycle_of(created_at)
        start(seq, created_at)
        cycle = cycles[seq]
        if direction == Message.Direction.IN:
            cycle.inbound.append((pk, created_at))
            if referral:
                any_referral = True
                if cycle.referral is None:
                    cycle.referral = referral
        elif status != Message.Status.FAILED:
            cycle.replies.append((pk, created_at, author_id or 0))
    if not any_referral and conversation["referral"]:
        cycles[0].referral = conversation["referral"]  # rows from before messages kept their referral
    last = max(seq for seq, was in enumerate(started) if was)
    cycles = cycles[: last + 1]
    for seq in range(1, len(cycles)):
        if not started[seq]:  # a resolution without a reopening before it: only possible in hand-made rows
            started[seq] = True

    def assignee_at(at: datetime) -> int:
        current = 0
        for assigned_at, assignee in assignments:
            if assigned_at > at:
                break
            current = assignee
        return current

    days: dict[tuple, list[int]] = defaultdict(lambda: [0] * len(DAY_COUNTS))
    hours: dict[tuple, int] = defaultdict(int)
    rows: list[CycleRow] = []

    def local(at: datetime) -> datetime:
        return at.astimezone(tz)

    def add(at: datetime, agent: int, source: tuple, count: str, value: int = 1) -> None:
        days[(inbox_id, local(at).date(), agent, source[0], source[1])][COUNT_INDEX[count]] += value

    sources = []
    for cycle in cycles:
        source = source_of(cycle.referral)
        sources.append(source)
        if cycle.resolved_at is not None:
            agent = assignee_at(cycle.resolved_at) or cycle.resolver_id
        else:
            agent = conversation["assignee_id"] or 0
        add(cycle.opened_at, agent, source, "opened")
        opened_local = local(cycle.opened_at)
        hours[(inbox_id, opened_local.date(), opened_local.hour, agent)] += 1
        if cycle.replies:
            add(cycle.opened_at, agent, source, "replied")
        for _pk, at in cycle.inbound:
            add(at, agent, source, "messages_in")
        for _pk, at, author in cycle.replies:
            add(at, author, source, "messages_out")
        row = CycleRow(
            inbox_id=inbox_id,
            conversation_id=conversation["pk"],
            seq=cycle.seq,
            opened_at=cycle.opened_at,
            opened_day=opened_local.date(),
            agent_id=agent,
            source_kind=source[0],
            source_id=source[1],
            source_name=source[2],
        )
        if cycle.inbound:
            first_in = cycle.inbound[0][1]
            row.first_inbound_at = first_in
            response = next(((at, author) for _pk, at, author in cycle.replies if author and at >= first_in), None)
            if response is not None:
                seconds = int((response[0] - first_in).total_seconds())
                row.first_response_at, row.responder_id = response
                row.first_response_day = local(response[0]).date()
                row.first_response_seconds = seconds
                add(response[0], response[1], source, "first_response_count")
                add(response[0], response[1], source, "first_response_seconds", seconds)
        if cycle.resolved_at is not None:
            seconds = int((cycle.resolved_at - cycle.opened_at).total_seconds())
            row.resolved_at, row.resolved_day, row.resolution_seconds = (
                cycle.resolved_at,
                local(cycle.resolved_at).date(),
                seconds,
            )
            add(cycle.resolved_at, agent, source, "resolved")
            add(cycle.resolved_at, agent, source, "resolution_count")
            add(cycle.resolved_at, agent, source, "resolution_seconds", seconds)
        rows.append(row)
    for _pk, author_id, occurred_at in conversions:
        seq = min(cycle_of(occurred_at), len(cycles) - 1)
        add(occurred_at, author_id or 0, sources[seq], "conversions")
    # A rating is of the resolution that asked for it (the last one at or before the survey was created: the
    # survey is made right after the resolution commits), so it goes to that cycle's agent; on the day it was given.
    csat: dict[tuple, int] = defaultdict(int)
    for _pk, rating, rated_at, asked_at in ratings:
        seq = min(max(bisect_right(resolved_times, asked_at) - 1, 0), len(rows) - 1)
        csat[(inbox_id, local(rated_at).date(), rows[seq].agent_id, rating)] += 1
    contributions = {
        "d": _entries(days),
        "h": _entries(hours),
        "c": [row.stored() for row in rows],  # to write only the cycles that changed
        "s": _entries(csat),
        # The customer messages counted, and the highest id among them (the fast path checks it).
        "n": sum(len(cycle.inbound) for cycle in cycles),
        "m": max((pk for cycle in cycles for pk, _stored_at in cycle.inbound), default=0),
    }
    return rows, contributions


def _entries(items: dict[tuple, object]) -> list[list]:
    """A roll-up key → value map as the contributions store it: [*key, value], the key's day (its second value, in
    every roll-up's key) as ISO text, in `_sort_key`'s order (str of a date is its ISO text)."""
    entries = [[key[0], key[1].isoformat(), *key[2:], value] for key, value in items.items()]
    if len(entries) > 1:
        entries.sort(key=_entry_order)
    return entries


def _entry_order(entry: list) -> tuple:
    return tuple(str(value) for value in entry[:-1])


def _sort_key(item):
    return tuple(str(value) for value in item[0])


def _as_dict(contributions: dict, part: str) -> dict[tuple, list[int]]:
    found = {}
    for entry in contributions.get(part) or []:
        *key, counts = entry
        key[1] = date.fromisoformat(key[1])
        found[tuple(key)] = counts if isinstance(counts, list) else [counts]
    return found


# --- Keeping the roll-ups -------------------------------------------------------------------------------------


def conversations_refresh(conversation_ids: Iterable[int]) -> None:
    """Recompute these conversations' figures and move the roll-ups by the difference (in chunks)."""
    ids = sorted(set(conversation_ids))
    for start in range(0, len(ids), CHUNK):
        with collector_paused(), transaction.atomic():
            _refresh(ids[start : start + CHUNK])


def _refresh(ids: list[int], *, taken: Appended | None = None) -> None:
    """One chunk, in a fixed number of statements: lock and read the states with their conversations, read the
    raw rows, write the differences (with what the fast path `taken` from the chunk, if given)."""
    taken = taken or Appended()
    if taken.conversations:
        ids = sorted({*ids, *_insert_opened(taken)})
    if not ids:
        conversations, states, messages = [], {}, defaultdict(list)
        loaded = (defaultdict(list), defaultdict(list), defaultdict(list))
        automation_id = None  # the opened conversations' messages are customers'
    else:
        conversations, states, messages, *loaded = (
            _load_postgresql(ids) if connection.vendor == "postgresql" else _load_portable(ids)
        )
        automation_id = _automation_id()
    for conversation in taken.conversations:
        conversations.append(conversation)
        states[conversation["pk"]] = {}
        messages[conversation["pk"]] = taken.messages[conversation["pk"]]
    _refresh_loaded(
        conversations,
        states,
        messages,
        *loaded,
        automation_id=automation_id,
        fresh={conversation["pk"] for conversation in taken.conversations},
        figures=taken.figures,
        day_delta=taken.day_delta,
        parts=taken.parts,
    )


def _insert_opened(taken: Appended) -> list[int]:
    """The opened conversations' figures, and their state rows inserted with them (one row write each, not an empty
    row then its UPDATE): the row is the conversation's lock, so one a concurrent refresh inserted meanwhile (waited
    for, then left alone) is taken out of `taken` and returned, to be recomputed in this chunk."""
    for conversation in taken.conversations:
        pk = conversation["pk"]
        taken.figures[pk] = conversation_figures(conversation, taken.messages[pk], [], [])
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {connection.ops.quote_name(ReportState._meta.db_table)}
                  (conversation_id, contributions, updated_at)
                SELECT (v.value ->> 0)::bigint, v.value -> 1, now() FROM jsonb_array_elements(%s::jsonb) AS v
                ORDER BY 1 ON CONFLICT (conversation_id) DO NOTHING RETURNING conversation_id""",  # noqa: S608
            [_dumps([[pk, contributions] for pk, (_rows, contributions) in taken.figures.items()])],
        )
        inserted = {pk for (pk,) in cursor.fetchall()}
    refused = [pk for pk in taken.figures if pk not in inserted]
    taken.full.update(refused)
    taken.conversations = [c for c in taken.conversations if c["pk"] in inserted]
    for pk in refused:
        del taken.figures[pk], taken.messages[pk]
    return refused


def _automation_id() -> int | None:
    """The automation user's id (None before it first acted)."""
    from django.contrib.auth import get_user_model

    from inbox.automation.rules import AUTOMATION_USERNAME

    return get_user_model().objects.filter(username=AUTOMATION_USERNAME).values_list("pk", flat=True).first()


def _load_portable(ids: list[int]):
    """The same reads through the ORM, for SQLite (make run's and make test's zero-setup default)."""
    existing = set(ReportState.objects.filter(conversation_id__in=ids).values_list("conversation_id", flat=True))
    found = list(Conversation.objects.filter(pk__in=ids).values_list("pk", flat=True))
    ReportState.objects.bulk_create(
        [ReportState(conversation_id=pk, contributions={}) for pk in found if pk not in existing],
        ignore_conflicts=True,
    )
    states = dict(
        ReportState.objects.select_for_update()
        .filter(conversation_id__in=found)
        .order_by("conversation_id")
        .values_list("conversation_id", "contributions")
    )
    conversations = list(
        Conversation.objects.filter(pk__in=states)
        .order_by("pk")
        .values("pk", "inbox_id", "created_at", "referral", "assignee_id", "inbox__time_zone")
    )
    messages, audits, conversions = defaultdict(list), defaultdict(list), defaultdict(list)
    for conversation_id, pk, direction, created_at, queued_at, author_id, status, referral in Message.objects.filter(
        conversation_id__in=states, direction__in=[Message.Direction.IN, Message.Direction.OUT]
    ).values_list("conversation_id", "pk", "direction", "created_at", "queued_at", "author_id", "status", "referral"):
        at = queued_at if direction == Message.Direction.OUT and queued_at else created_at
        messages[conversation_id].append((pk, direction, at, author_id, status, referral or None))
    for conversation_id, *row in AuditLog.objects.filter(
        conversation_id__in=states, action__startswith="conversation."
    ).values_list("conversation_id", "pk", "action", "actor_id", "message_id", "before", "after", "created_at"):
        audits[conversation_id].append(tuple(row))
    for conversation_id, *row in (
        Conversion.objects.filter(conversation_id__in=states)
        .exclude(status=Conversion.Status.FAILED)
        .values_list("conversation_id", "pk", "author_id", "occurred_at")
    ):
        conversions[conversation_id].append(tuple(row))
    ratings = defaultdict(list)
    for conversation_id, *row in CsatSurvey.objects.filter(
        conversation_id__in=states, rating__isnull=False, rated_at__isnull=False
    ).values_list("conversation_id", "pk", "rating", "rated_at", "created_at"):
        ratings[conversation_id].append(tuple(row))
    states = {pk: value or {} for pk, value in states.items()}
    return conversations, states, messages, audits, conversions, ratings


def _load_postgresql(ids: list[int]):
    table = {model: connection.ops.quote_name(model._meta.db_table) for model in (ReportState, ReportCycle)}
    csat = connection.ops.quote_name(CsatSurvey._meta.db_table)
    with connection.cursor() as cursor:
        # The state rows are the conversations' locks (taken in id order): two refreshes of one conversation
        # run one after the other, and the second reads what the first committed.
        cursor.execute(
            f"""WITH locked AS (
                  INSERT INTO {table[ReportState]} (conversation_id, contributions, updated_at)
                  SELECT id, '{{}}'::jsonb, now() FROM inbox_conversation WHERE id = ANY(%s::bigint[]) ORDER BY id
                  ON CONFLICT (conversation_id) DO UPDATE SET updated_at = EXCLUDED.updated_at
                  RETURNING conversation_id, contributions)
                SELECT c.id, c.inbox_id, {us("c.created_at")}, c.referral, c.assignee_id, i.time_zone,
                       locked.contributions
                FROM locked JOIN inbox_conversation c ON c.id = locked.conversation_id
                JOIN inbox_inbox i ON i.id = c.inbox_id ORDER BY c.id""",  # noqa: S608 - our table names
            [_array(ids)],
        )
        conversations, states = [], {}
        for pk, inbox_id, created_at, referral, assignee_id, time_zone, contributions in cursor.fetchall():
            conversations.append(
                {
                    "pk": pk,
                    "inbox_id": inbox_id,
                    "created_at": _at(created_at),
                    "referral": _loads(referral) or {},
                    "assignee_id": assignee_id,
                    "inbox__time_zone": time_zone,
                }
            )
            states[pk] = _loads(contributions) or {}
        found = list(states)
        messages = defaultdict(list)
        # A reply counts from when its current attempt was queued (a retry sends it again, later).
        cursor.execute(
            f"""SELECT conversation_id, id, direction,
                      {us("CASE WHEN direction = 'out' AND queued_at IS NOT NULL THEN queued_at ELSE created_at END")},
                      author_id, status, CASE WHEN referral = '{{}}'::jsonb THEN NULL ELSE referral END
               FROM inbox_message WHERE conversation_id = ANY(%s::bigint[])
                 AND direction IN ('in', 'out')""",  # noqa: S608
            [_array(found)],
        )
        for conversation_id, pk, direction, at, author_id, status, referral in cursor.fetchall():
            messages[conversation_id].append((pk, direction, _at(at), author_id, status, _loads(referral)))
        audits, conversions = defaultdict(list), defaultdict(list)
        cursor.execute(
            f"""SELECT 'a', conversation_id, id, action, actor_id, message_id, before, after, {us("created_at")}
               FROM inbox_auditlog WHERE conversation_id = ANY(%s::bigint[]) AND action LIKE 'conversation.%%'
               UNION ALL
               SELECT 'c', conversation_id, id, '', author_id, NULL, NULL, NULL, {us("occurred_at")}
               FROM inbox_conversion WHERE conversation_id = ANY(%s::bigint[]) AND status <> 'failed'
               UNION ALL
               SELECT 'r', conversation_id, id, '', rating, {us("created_at")}, NULL, NULL, {us("rated_at")}
               FROM {csat} WHERE conversation_id = ANY(%s::bigint[]) AND rating IS NOT NULL
                 AND rated_at IS NOT NULL""",  # noqa: S608 - a rating: (rating, asked at, rated at) in those columns
            [_array(found)] * 3,
        )
        ratings = defaultdict(list)
        for kind, conversation_id, pk, action, actor_id, message_id, before, after, at in cursor.fetchall():
            if kind == "a":
                row = (pk, action, actor_id, message_id, _loads(before), _loads(after), _at(at))
                audits[conversation_id].append(row)
            elif kind == "r":
                ratings[conversation_id].append((pk, actor_id, _at(at), _at(message_id)))
            else:
                conversions[conversation_id].append((pk, actor_id, _at(at)))
    return conversations, states, messages, audits, conversions, ratings


def _refresh_loaded(
    conversations,
    states,
    messages,
    audits,
    conversions,
    ratings,
    *,
    automation_id=None,
    fresh: set[int] = frozenset(),
    day_delta: dict[tuple, list[int]] | None = None,
    parts: list[list] = (),
    figures: dict[int, tuple] | None = None,
) -> None:
    """Write the differences. `fresh`: conversations whose state row this transaction created (no cycles to
    delete); `day_delta` and `parts` (PostgreSQL): the fast path's day counts and the state keys it replaces;
    `figures`: conversations whose figures are computed and whose state row was inserted with them."""
    figures = figures or {}
    table = {model: connection.ops.quote_name(model._meta.db_table) for model in (ReportState, ReportCycle)}
    day_delta: dict[tuple, list[int]] = defaultdict(lambda: [0] * len(DAY_COUNTS), day_delta or {})
    hour_delta: dict[tuple, int] = defaultdict(int)
    csat_delta: dict[tuple, int] = defaultdict(int)
    cycle_day_delta: dict[tuple, int] = defaultdict(int)
    histogram_delta: dict[tuple, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    cycles: list[CycleRow] = []
    cycle_values: list[list] = []  # the same as JSON values (PostgreSQL's INSERT): from the stored "c"
    rewritten: list[int] = []
    new_states: list[tuple[int, dict]] = []
    for conversation in conversations:
        pk = conversation["pk"]
        if pk in figures:
            rows, contributions = figures[pk]
        else:
            rows, contributions = conversation_figures(
                conversation, messages[pk], audits[pk], conversions[pk], ratings[pk], automation_id=automation_id
            )
        old = states[pk]
        if contributions == old:
            continue
        for key, counts in _as_dict(contributions, "d").items():
            day_delta[key] = [a + b for a, b in zip(day_delta[key], counts, strict=True)]
        for key, counts in _as_dict(old, "d").items():
            day_delta[key] = [a - b for a, b in zip(day_delta[key], counts, strict=True)]
        for key, counts in _as_dict(contributions, "h").items():
            hour_delta[key] += counts[0]
        for key, counts in _as_dict(old, "h").items():
            hour_delta[key] -= counts[0]
        for key, counts in _as_dict(contributions, "s").items():
            csat_delta[key] += counts[0]
        for key, counts in _as_dict(old, "s").items():  # none in a state stored before CSAT was counted
            csat_delta[key] -= counts[0]
        if contributions["c"] != old.get("c"):
            if pk not in fresh:
                rewritten.append(pk)
            cycles.extend(rows)
            cycle_values.extend([conversation["inbox_id"], pk, *stored] for stored in contributions["c"])
            for sign, state in ((1, contributions), (-1, old)):
                resolved, histograms = cycle_contributions(conversation["inbox_id"], state.get("c") or [])
                for key, n in resolved.items():
                    cycle_day_delta[key] += sign * n
                for key, counts in histograms.items():
                    for tenths, n in counts.items():
                        histogram_delta[key][tenths] += sign * n
        if pk not in figures:
            new_states.append((pk, contributions))

    if rewritten and connection.vendor != "postgresql":
        ReportCycle.objects.filter(conversation_id__in=rewritten).delete()
    elif rewritten:  # the ORM's IN of 500 parameters cost more than the DELETE itself
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table[ReportCycle]} WHERE conversation_id = ANY(%s::bigint[])",  # noqa: S608
                [_array(rewritten)],
            )
    if cycles and connection.vendor != "postgresql":
        ReportCycle.objects.bulk_create(
            [ReportCycle(**dict(zip(CYCLE_FIELDS, row.values(), strict=True))) for row in cycles]
        )
    elif cycles:
        # One statement for the chunk, the rows as one JSON document (executemany sent a statement per cycle: a
        # fifth of a rebuild's time at 100,000 conversations; arrays per column were dumped element by element).
        with connection.cursor() as cursor:
            columns = ", ".join(connection.ops.quote_name(name) for name in CYCLE_FIELDS)
            select, document = _json_rows([_CYCLE_TYPES[name] for name in CYCLE_FIELDS], cycle_values)
            cursor.execute(f"INSERT INTO {table[ReportCycle]} ({columns}) {select}", [document])  # noqa: S608
    # The cycles' counts join the day entries' in one upsert: a row is dropped only when all of them are zero.
    zeros = [0] * len(DAY_COUNTS)
    day_rows = {
        key: [*day_delta.get(key, zeros), cycle_day_delta.get(key, 0)] for key in {*day_delta, *cycle_day_delta}
    }
    _apply(ReportDay, DAY_KEY, DAY_COUNTS + DAY_CYCLE_COUNTS, {k: v for k, v in day_rows.items() if any(v)})
    _apply(ReportHour, HOUR_KEY, HOUR_COUNTS, {k: [v] for k, v in hour_delta.items() if v})
    _apply(ReportCsat, CSAT_KEY, CSAT_COUNTS, {k: [v] for k, v in csat_delta.items() if v})
    _apply_histograms(histogram_delta)
    if new_states and connection.vendor != "postgresql":
        for pk, contributions in new_states:
            ReportState.objects.filter(conversation_id=pk).update(contributions=contributions)
    elif new_states or parts:
        with connection.cursor() as cursor:
            # One JSON document, not a text[] of them (psycopg escapes every quote of every element in Python):
            # [id, contributions] replaces a state, [id, keys, 1] (the fast path's) replaces only those keys. (Setting
            # only the one day entry that moved, with jsonb_set, made the client's document smaller but cost the server
            # more than it saved: bench/README.md, eighth session.)
            cursor.execute(
                f"""UPDATE {table[ReportState]} s SET contributions = CASE WHEN jsonb_array_length(v.value) > 2
                      THEN s.contributions || (v.value -> 1) ELSE v.value -> 1 END
                    FROM jsonb_array_elements(%s::jsonb) AS v
                    WHERE s.conversation_id = (v.value ->> 0)::bigint""",  # noqa: S608
                [_dumps([*new_states, *parts])],
            )


_CYCLE_INDEX = {name: index for index, name in enumerate(CYCLE_FIELDS[2:])}  # a cycle of the contributions' "c"


def shown_tenths(seconds: int) -> int:
    """A duration as the reports show it, in tenths of a minute: minutes with one decimal, round(seconds / 60, 1)
    (Python's rounding of the float, so the figure shown is the one the page always showed)."""
    return round(round(seconds / 60, 1) * 10)


def cycle_contributions(inbox_id: int, cycles: list[list]) -> tuple[dict[tuple, int], dict[tuple, dict[int, int]]]:
    """What a conversation's cycles (its contributions' "c") add to ReportDay's `opened_resolved` (by the day each
    cycle opened) and to the histograms (ReportHistogram keys → {tenths of a minute: samples}).

    Derived from "c", not stored beside it: a state written before these counts existed has its cycles, so the
    difference to apply is right for it too (migration 0028 counted its cycles into the tables)."""
    at = _CYCLE_INDEX
    resolved: dict[tuple, int] = defaultdict(int)
    histograms: dict[tuple, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for cycle in cycles:
        seconds = cycle[at["first_response_seconds"]]
        if seconds is not None:
            day = date.fromisoformat(cycle[at["first_response_day"]])
            key = (inbox_id, ReportHistogram.FIRST_RESPONSE, day, cycle[at["responder_id"]])
            histograms[key][shown_tenths(seconds)] += 1
        seconds = cycle[at["resolution_seconds"]]
        if cycle[at["resolved_at"]] is not None and seconds is not None:
            opened_day = date.fromisoformat(cycle[at["opened_day"]])
            agent = cycle[at["agent_id"]]
            resolved[(inbox_id, opened_day, agent, cycle[at["source_kind"]], cycle[at["source_id"]])] += 1
            key = (inbox_id, ReportHistogram.RESOLUTION, date.fromisoformat(cycle[at["resolved_day"]]), agent)
            histograms[key][shown_tenths(seconds)] += 1
    return resolved, histograms


def _apply_histograms(deltas: dict[tuple, dict[int, int]]) -> None:
    """Add `deltas` ({key: {tenths: samples}}) to the histograms (created as needed), in key order; entries that
    fall to zero go, and rows left empty are dropped (PostgreSQL: one upsert merging the arrays in SQL; SQLite: read,
    merge, write)."""
    ordered = []
    for key, counts in sorted(deltas.items(), key=_sort_key):
        counts = {tenths: n for tenths, n in counts.items() if n}
        if counts:
            ordered.append((key, counts))
    if not ordered:
        return
    if connection.vendor != "postgresql":
        _apply_histograms_portable(ordered)
        return
    table = connection.ops.quote_name(ReportHistogram._meta.db_table)
    columns = [list(column) for column in zip(*[key for key, _ in ordered], strict=True)]
    # The entries flat, each with its key's position: (position, tenths, samples).
    entries = [(i, tenths, n) for i, (_, counts) in enumerate(ordered, 1) for tenths, n in sorted(counts.items())]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {table} AS h (inbox_id, metric, day, agent_id, tenths, samples)
                SELECT k.inbox_id, k.metric, k.day, k.agent_id, array_agg(e.t ORDER BY e.t), array_agg(e.n ORDER BY e.t)
                FROM unnest(%s::bigint[], %s::text[], %s::date[], %s::bigint[])
                  WITH ORDINALITY AS k(inbox_id, metric, day, agent_id, i)
                JOIN unnest(%s::bigint[], %s::integer[], %s::integer[]) AS e(i, t, n) ON e.i = k.i
                GROUP BY k.i, k.inbox_id, k.metric, k.day, k.agent_id ORDER BY k.i
                ON CONFLICT (inbox_id, metric, day, agent_id) DO UPDATE SET (tenths, samples) = (
                  SELECT coalesce(array_agg(t ORDER BY t), '{{}}'), coalesce(array_agg(n ORDER BY t), '{{}}')
                  FROM (SELECT t, sum(n)::integer AS n FROM (
                          SELECT * FROM unnest(h.tenths, h.samples)
                          UNION ALL SELECT * FROM unnest(EXCLUDED.tenths, EXCLUDED.samples)) AS u(t, n)
                        GROUP BY t) AS merged
                  WHERE n <> 0)""",  # noqa: S608 - the model's table
            [*columns, *(list(column) for column in zip(*entries, strict=True))],
        )
        shrunk = [key for key, counts in ordered if any(n < 0 for n in counts.values())]
        if shrunk:
            cursor.execute(
                f"""DELETE FROM {table} h USING unnest(%s::bigint[], %s::text[], %s::date[], %s::bigint[])
                      AS v(inbox_id, metric, day, agent_id)
                    WHERE h.inbox_id = v.inbox_id AND h.metric = v.metric AND h.day = v.day
                      AND h.agent_id = v.agent_id AND cardinality(h.tenths) = 0""",  # noqa: S608
                [list(column) for column in zip(*shrunk, strict=True)],
            )


def _apply_histograms_portable(ordered: list[tuple[tuple, dict[int, int]]]) -> None:
    """SQLite (make run's zero-setup default; one writer at a time): read the rows, merge in Python, write."""
    rows = {
        (row.inbox_id, row.metric, row.day, row.agent_id): row
        for row in ReportHistogram.objects.filter(
            inbox_id__in={key[0] for key, _ in ordered}, day__in={key[2] for key, _ in ordered}
        )
    }
    for key, counts in ordered:
        row = rows.get(key) or ReportHistogram(inbox_id=key[0], metric=key[1], day=key[2], agent_id=key[3])
        merged = defaultdict(int, row.counts)
        for tenths, n in counts.items():
            merged[tenths] += n
        kept = sorted((tenths, n) for tenths, n in merged.items() if n)
        row.tenths, row.samples = [t for t, _ in kept], [n for _, n in kept]
        if not kept:
            if row.pk is not None:
                row.delete()
        else:
            row.save()


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def us(column: str) -> str:
    """SQL: a timestamp as integer microseconds since the epoch (exact; parsing thousands of ISO timestamps was
    a third of a refresh's time)."""
    return f"(extract(epoch FROM {column}) * 1000000)::bigint"


def _at(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def _loads(value):
    """jsonb from a raw cursor: Django has psycopg hand it over as text (its JSONField decodes it)."""
    return json.loads(value) if isinstance(value, str) else value


def _dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def _json_rows(types: list[str], rows: Iterable[list]) -> tuple[str, str]:
    """A SELECT of typed columns from one JSON document of rows (in their order), and that document: the C encoder
    writes it, where psycopg dumps a list parameter element by element in Python."""
    select = ", ".join(f"(v.value ->> {i})::{kind}" for i, kind in enumerate(types))
    # Dates (the roll-ups' keys) by `str`, their ISO text: a builtin, no Python frame per value.
    document = json.dumps(list(rows), separators=(",", ":"), default=str)
    sql = f"SELECT {select} FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS v ORDER BY v.ordinality"  # noqa: S608
    return sql, document


def _array(values: Iterable[int | bool]) -> str:
    """A PostgreSQL array literal of numbers or booleans (cast it in the SQL): psycopg dumps a list element by
    element in Python, a measurable share of a drain's client time."""
    return "{" + ",".join(("t" if v else "f") if isinstance(v, bool) else str(int(v)) for v in values) + "}"


def _apply(model, key_fields: list[str], count_fields: list[str], deltas: dict[tuple, list[int]]) -> None:
    """Add `deltas` to the roll-up rows (created as needed), in key order; drop rows that fell to all zeros."""
    if not deltas:
        return
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    keys = [quote(model._meta.get_field(name).column) for name in key_fields]
    counts = [quote(name) for name in count_fields]
    columns = ", ".join(keys + counts)
    placeholders = ", ".join(["%s"] * (len(keys) + len(counts)))
    updates = ", ".join(f"{c} = {table}.{c} + EXCLUDED.{c}" for c in counts)
    upsert = (
        f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) "  # noqa: S608 - identifiers from the model
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
    )
    drop = (
        f"DELETE FROM {table} WHERE "  # noqa: S608
        + " AND ".join(f"{k} = %s" for k in keys)
        + " AND "
        + " AND ".join(f"{c} = 0" for c in counts)
    )
    ordered = sorted(deltas.items(), key=_sort_key)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One statement for the whole chunk, the rows as one JSON document (executemany's per-row statement
            # was most of a fast-path drain; arrays per column were dumped element by element).
            types = [_SQL_TYPES[model._meta.get_field(name).get_internal_type()] for name in key_fields]
            types += ["bigint"] * len(count_fields)
            select, document = _json_rows(types, [[*key, *values] for key, values in ordered])
            cursor.execute(
                f"INSERT INTO {table} ({columns}) {select} "  # noqa: S608
                f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}",
                [document],
            )
        else:
            cursor.executemany(upsert, [[*key, *values] for key, values in ordered])
        dropped = [list(key) for key, values in ordered if any(v < 0 for v in values)]
        if dropped:
            cursor.executemany(drop, dropped)


_CYCLE_TYPES = {
    name: {
        "ForeignKey": "bigint",
        "BigIntegerField": "bigint",
        "PositiveIntegerField": "integer",
        "DateTimeField": "timestamptz",
        "DateField": "date",
        "CharField": "text",
    }[ReportCycle._meta.get_field(name).get_internal_type()]
    for name in CYCLE_FIELDS
}

_SQL_TYPES = {
    "ForeignKey": "bigint",
    "BigIntegerField": "bigint",
    "DateField": "date",
    "CharField": "text",
    "PositiveSmallIntegerField": "integer",
}


def rebuild(*, inbox_ids: list[int] | None = None) -> int:
    """Recreate the roll-ups from the raw rows (all inboxes, or these); returns the conversations counted.

    The tables are emptied under an exclusive lock on the states, so a subscriber running meanwhile either
    finished before (and is wiped) or starts after (and finds no state: it adds its conversation whole).
    """
    conversations = Conversation.objects.all()
    if inbox_ids is not None:
        conversations = conversations.filter(inbox_id__in=inbox_ids)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {connection.ops.quote_name(ReportState._meta.db_table)} IN EXCLUSIVE MODE")
        scope = {} if inbox_ids is None else {"inbox_id__in": inbox_ids}
        ReportState.objects.filter(conversation__in=conversations).delete()
        for model in (ReportCycle, ReportDay, ReportHour, ReportCsat, ReportHistogram):
            model.objects.filter(**scope).delete()
    ids = list(conversations.order_by("pk").values_list("pk", flat=True))
    conversations_refresh(ids)
    _analyze_rebuilt()
    return len(ids)


REBUILT_MODELS = (ReportState, ReportCycle, ReportDay, ReportHour, ReportCsat, ReportHistogram)


def _analyze_rebuilt() -> None:
    """Give the planner the rewritten tables' statistics now (PostgreSQL), not when autoanalyze next comes by.

    Right after a rebuild the tables hold all-new rows and no statistics of them: the planner then estimated one
    cycle per inbox and walked the inbox's whole foreign-key index for each source of the sources chart (~300 ms
    at 100,000 conversations, 0.15 ms with statistics; bench/README.md, "The quiet full runs, ninth session").
    ANALYZE samples a bounded number of rows, so this costs well under a second at that size."""
    if connection.vendor != "postgresql":
        return
    tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in REBUILT_MODELS)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {tables}")
