"""Delivery status of outbound messages: the forward-only ladder, in one place.

`message_statuses_apply` is the implementation, for a webhook's batch as for one report
(`message_status_apply` is a batch of one), in a fixed number of statements per batch.
"""

from __future__ import annotations

import functools
import json
import logging
from collections import defaultdict

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from inbox import domain_events
from inbox.db import recordset, update_rows
from inbox.events import StatusReport
from inbox.models import AuditLog, Message
from inbox.services.common import (
    STATUS_RANK,
    StatusOutcome,
)

logger = logging.getLogger(__name__)


AT_FIELDS = {status: f"{status}_at" for status in STATUS_RANK if status != Message.Status.QUEUED}


def moves_up(current: str, new: str) -> bool:
    """The ladder's rule, for the Python side (outcomes, audits) of what `_write`'s UPDATE enforces in SQL."""
    return STATUS_RANK[new] > STATUS_RANK[current]


def message_statuses_apply(reports: list[StatusReport]) -> list[str]:
    """Move outbound messages' delivery status forward, never backward (see STATUS_RANK); returns per report
    a `StatusOutcome` (applied, stale: already there or further, unknown: no such message yet).

    A report scoped to `endpoint_ids` (the reporting connection's endpoints) sees only messages of
    conversations with those endpoints: another connection's message is unknown to it.

    Reports are applied in order. The messages' rows are locked (not their conversations': services that
    lock both take the conversation first, so locking it here in the other order could deadlock), and the
    UPDATE itself is guarded by the ladder. A report for a status already passed still records when that
    state was reached (except failure, which a delivered message never had). Each move is audited and
    published once the transaction commits.
    """
    if not reports:
        return []
    with transaction.atomic(savepoint=False):
        return _apply(reports)


def message_status_apply(*, report: StatusReport) -> str:
    """Apply one status report: a batch of one (`message_statuses_apply`). Returns a `StatusOutcome`."""
    [outcome] = message_statuses_apply([report])
    return outcome


_LOOKUP_FIELDS = ("id", "provider_message_id", "conversation_id", "attempt", "status", *AT_FIELDS.values())


def _locked(reports: list[StatusReport]) -> dict[tuple[str, str], dict]:
    """The reports' outbound messages as plain rows (with their conversation's inbox and contact endpoint), locked:
    one statement per channel (one in practice), no model instances."""
    by_channel: dict[str, set[str]] = defaultdict(set)
    for report in reports:
        by_channel[report.channel].add(report.provider_message_id)
    rows: dict[tuple[str, str], dict] = {}
    for channel, ids in by_channel.items():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(_lookup_sql(), [channel, sorted(ids)])
                locked = [dict(zip(_LOOKUP_NAMES, row, strict=True)) for row in cursor.fetchall()]
        else:
            locked = (
                Message.objects.select_for_update(of=("self",))
                .filter(channel=channel, provider_message_id__in=ids, direction=Message.Direction.OUT)
                .order_by("pk")
                .values(
                    *_LOOKUP_FIELDS,
                    inbox_id=F("conversation__inbox_id"),
                    contact_endpoint_id=F("conversation__contact__endpoint_id"),
                )
            )
        rows.update({(channel, row["provider_message_id"]): row for row in locked})
    return rows


_LOOKUP_NAMES = (*_LOOKUP_FIELDS, "inbox_id", "contact_endpoint_id")


@functools.cache
def _lookup_sql() -> str:
    """`_locked`'s statement on PostgreSQL, written once per process (the ORM compiled it for every batch: most of a
    single report's lookup); the ids as one array parameter. The same plan as the ORM's `IN`: the index
    `message_outbound_provider_id` (tests/inbox/test_status_lookup.py)."""
    message = Message._meta.db_table
    conversation = Message._meta.get_field("conversation").related_model._meta.db_table
    contact = (
        Message._meta.get_field("conversation").related_model._meta.get_field("contact").related_model._meta.db_table
    )
    columns = ", ".join(f'"{message}"."{Message._meta.get_field(name).column}"' for name in _LOOKUP_FIELDS)
    return (
        f'SELECT {columns}, "{conversation}"."inbox_id", "{contact}"."endpoint_id" '  # noqa: S608 - model names
        f'FROM "{message}" '
        f'INNER JOIN "{conversation}" ON ("{message}"."conversation_id" = "{conversation}"."id") '
        f'INNER JOIN "{contact}" ON ("{conversation}"."contact_id" = "{contact}"."id") '
        f'WHERE "{message}"."channel" = %s AND "{message}"."provider_message_id" = ANY(%s::text[]) '
        f'AND "{message}"."direction" = \'{Message.Direction.OUT}\' '
        f'ORDER BY "{message}"."id" FOR UPDATE OF "{message}"'
    )


def _apply(reports: list[StatusReport]) -> list[str]:
    rows = _locked(reports)
    outcomes: list[str] = []
    # Per message the batch writes: its final status (None: unchanged, only times of passed states filled), the
    # provider's status and error when a report set them (None: kept).
    written: dict[int, dict] = {}
    audits: list[dict] = []
    announced: list[domain_events.DomainEvent] = []
    for report in reports:
        row = rows.get((report.channel, report.provider_message_id))
        if (
            row is not None
            and report.endpoint_ids is not None
            and row["contact_endpoint_id"] not in report.endpoint_ids
        ):
            row = None  # another connection's message: not this reporter's to move
        if row is None:
            outcomes.append(StatusOutcome.UNKNOWN)
            continue
        new, at_field = report.status, AT_FIELDS[report.status]
        before = row["status"]
        if not moves_up(before, new):
            if new != Message.Status.FAILED and row[at_field] is None:
                row[at_field] = report.at
                written.setdefault(row["id"], {"status": None, "provider_status": None, "error": None, "row": row})
            outcomes.append(StatusOutcome.STALE)
            continue
        row["status"] = new
        row[at_field] = report.at
        change = written.setdefault(row["id"], {"status": None, "provider_status": None, "error": None, "row": row})
        change["status"] = new
        if report.provider_status:
            change["provider_status"] = report.provider_status
        if new == Message.Status.FAILED:
            change["error"] = report.error
        audits.append(
            {
                "message_id": row["id"],
                "conversation_id": row["conversation_id"],
                "before": {"status": before},
                "after": {"status": new, **({"error": report.error} if report.error else {})},
            }
        )
        announced.append(
            domain_events.MessageStatusChanged(
                inbox_id=row["inbox_id"],
                conversation_id=row["conversation_id"],
                message_id=row["id"],
                attempt=row["attempt"],
                status=new,
                previous_status=before,
                at=report.at,
            )
        )
        outcomes.append(StatusOutcome.APPLIED)
    if written:
        _write([written[pk] for pk in sorted(written)], audits)
    domain_events.emit(*announced)
    return outcomes


def _ladder_case(column: str) -> str:
    """SQL: the rank of the status in `column` (STATUS_RANK)."""
    ranks = " ".join(f"WHEN '{status}' THEN {rank}" for status, rank in STATUS_RANK.items())
    return f"CASE {column} {ranks} END"


# Per written message: its id, the status it moves to and that status's rank (both None: only times filled), its
# four state times as they now are, the provider's status and error (None: kept).
_TIMES = list(AT_FIELDS.values())


def _write(changes: list[dict], audits: list[dict]) -> None:
    """Write each changed message once, with everything the batch did to it, guarded by the ladder in the UPDATE
    itself; audit the moves the UPDATE made. PostgreSQL: one statement for the whole batch (the UPDATE in a CTE, the
    audit rows inserted for the messages it returned)."""
    now = timezone.now()
    if connection.vendor != "postgresql":
        _write_each(changes, audits, now)
        return
    message_table, audit_table = Message._meta.db_table, AuditLog._meta.db_table
    timestamp = "timestamp with time zone"
    changed, changed_payload = recordset(
        {
            "id": ("bigint", [change["row"]["id"] for change in changes]),
            "status": ("text", [change["status"] for change in changes]),
            "rank": (
                "integer",
                [None if change["status"] is None else STATUS_RANK[change["status"]] for change in changes],
            ),
            **{name: (timestamp, [change["row"][name] for change in changes]) for name in _TIMES},
            "provider_status": ("jsonb", [change["provider_status"] for change in changes]),
            "error": ("jsonb", [change["error"] for change in changes]),
        },
        alias="v",
    )
    audited, audit_payload = recordset(
        {
            "seq": ("integer", list(range(len(audits)))),
            "conversation_id": ("bigint", [audit["conversation_id"] for audit in audits]),
            "message_id": ("bigint", [audit["message_id"] for audit in audits]),
            "before": ("jsonb", [audit["before"] for audit in audits]),
            "after": ("jsonb", [audit["after"] for audit in audits]),
        },
        alias="a",
    )
    times = ", ".join(f"{name} = v.{name}" for name in _TIMES)
    sql = f"""
        WITH moved AS (
            UPDATE {message_table} AS t
            SET status = COALESCE(v.status, t.status), {times},
                provider_status = COALESCE(v.provider_status, t.provider_status), error = COALESCE(v.error, t.error)
            FROM {changed}
            WHERE t.id = v.id AND (v.rank IS NULL OR {_ladder_case("t.status")} < v.rank)
            RETURNING t.id
        )
        INSERT INTO {audit_table} (actor_id, actor_kind, action, conversation_id, message_id, before, after, created_at)
        SELECT NULL, %s, 'message.status', a.conversation_id, a.message_id, a.before, a.after, %s
        FROM {audited}
        WHERE a.message_id IN (SELECT id FROM moved)
        ORDER BY a.seq
    """  # noqa: S608 - the models' own table names
    with connection.cursor() as cursor:
        cursor.execute(sql, [changed_payload, AuditLog.ActorKind.PROVIDER, now, audit_payload])


def _write_each(changes: list[dict], audits: list[dict], now) -> None:
    """`_write` for SQLite (development): the same guarded UPDATE, one row at a time, then the audits of the rows it
    moved."""
    fields = {name: Message._meta.get_field(name) for name in _TIMES}
    times = ", ".join(f"{name} = %s" for name in _TIMES)
    sql = (
        f"UPDATE {Message._meta.db_table} SET status = COALESCE(%s, status), {times}, "  # noqa: S608
        "provider_status = COALESCE(%s, provider_status), error = COALESCE(%s, error) "
        f"WHERE id = %s AND (%s IS NULL OR {_ladder_case('status')} < %s)"
    )
    moved: set[int] = set()
    with connection.cursor() as cursor:
        for change in changes:
            row, status = change["row"], change["status"]
            rank = None if status is None else STATUS_RANK[status]
            cursor.execute(
                sql,
                [
                    status,
                    *(fields[name].get_db_prep_save(row[name], connection) for name in _TIMES),
                    None if change["provider_status"] is None else json.dumps(change["provider_status"]),
                    None if change["error"] is None else json.dumps(change["error"]),
                    row["id"],
                    rank,
                    rank,
                ],
            )
            if cursor.rowcount:
                moved.add(row["id"])
    AuditLog.objects.bulk_create(
        AuditLog(
            actor_kind=AuditLog.ActorKind.PROVIDER,
            action="message.status",
            conversation_id=audit["conversation_id"],
            message_id=audit["message_id"],
            before=audit["before"],
            after=audit["after"],
            created_at=now,
        )
        for audit in audits
        if audit["message_id"] in moved
    )


def message_send_failed(*, channel: str, provider_message_id: str, error: dict) -> str:
    """Mark a queued attempt failed because its send did not succeed: a batch of one
    (`messages_send_failed`). Returns a StatusOutcome."""
    [outcome] = messages_send_failed([(channel, provider_message_id, error)])
    return outcome


def messages_send_failed(failures: list[tuple[str, str, dict]]) -> list[str]:
    """Mark queued attempts failed because their send did not succeed (refused, or retries spent); each item is
    (channel, attempt's provider id, error). Returns a StatusOutcome per item, in a fixed number of statements.

    Only `queued` is replaced, in the UPDATE's WHERE: if a report already moved the attempt on, the provider has
    it. Keyed by the attempt's provider id, so a stale task cannot fail a newer attempt.
    """
    if not failures:
        return []
    now = timezone.now()
    by_channel: dict[str, set[str]] = defaultdict(set)
    for channel, provider_message_id, _ in failures:
        by_channel[channel].add(provider_message_id)
    with transaction.atomic(savepoint=False):
        rows: dict[tuple[str, str], dict] = {}
        for channel, ids in by_channel.items():
            locked = (
                Message.objects.filter(channel=channel, provider_message_id__in=ids, direction=Message.Direction.OUT)
                .select_for_update(of=("self",))  # the messages only: services lock conversation → message
                .order_by("pk")
                .values("id", "status", "attempt", "conversation_id", "conversation__inbox_id", "provider_message_id")
            )
            rows.update({(channel, row["provider_message_id"]): row for row in locked})
        outcomes: list[str] = []
        failed: dict[int, tuple[dict, dict]] = {}
        for channel, provider_message_id, error in failures:
            row = rows.get((channel, provider_message_id))
            if row is None:
                outcomes.append(StatusOutcome.UNKNOWN)
            elif row["status"] != Message.Status.QUEUED or row["id"] in failed:
                outcomes.append(StatusOutcome.STALE)
            else:
                failed[row["id"]] = (row, error)
                outcomes.append(StatusOutcome.APPLIED)
        if not failed:
            return outcomes
        update_rows(
            Message,
            ["status", "failed_at", "error"],
            [
                Message(pk=pk, status=Message.Status.FAILED, failed_at=now, error=error)
                for pk, (_, error) in sorted(failed.items())
            ],
            where=f"{connection.ops.quote_name('status')} = %s",
            params=[Message.Status.QUEUED],
        )
        AuditLog.objects.bulk_create(
            AuditLog(
                actor_kind=AuditLog.ActorKind.SYSTEM,
                action="message.send_failed",
                conversation_id=row["conversation_id"],
                message_id=row["id"],
                before={"status": row["status"]},
                after={"status": Message.Status.FAILED, "error": error},
            )
            for row, error in failed.values()
        )
        domain_events.emit(
            *(
                domain_events.MessageStatusChanged(
                    inbox_id=row["conversation__inbox_id"],
                    conversation_id=row["conversation_id"],
                    message_id=row["id"],
                    attempt=row["attempt"],
                    status=Message.Status.FAILED,
                    previous_status=row["status"],
                    at=now,
                )
                for row, _ in failed.values()
            )
        )
    return outcomes
