"""Delivery status of outbound messages: the forward-only ladder, in one place.

`message_statuses_apply` is the implementation, for a webhook's batch as for one report
(`message_status_apply` is a batch of one), in a fixed number of statements per batch.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from inbox import domain_events
from inbox.db import update_rows
from inbox.events import StatusReport
from inbox.models import AuditLog, Message
from inbox.services.common import (
    STATUS_RANK,
    StatusOutcome,
)

logger = logging.getLogger(__name__)


AT_FIELDS = {status: f"{status}_at" for status in STATUS_RANK if status != Message.Status.QUEUED}
# The fields a report may change, written together for every message a batch moves.
STATUS_FIELDS = ["status", "provider_status", "error", *AT_FIELDS.values()]


def moves_up(current: str, new: str) -> bool:
    """The ladder's rule, for the Python side (outcomes, audits) of what `_ladder_guard` enforces in SQL."""
    return STATUS_RANK[new] > STATUS_RANK[current]


def _ladder_guard() -> str:
    """SQL: the row's current status is below the rank given as the parameter (the status it moves to).

    Part of the UPDATE's WHERE, so no write can move a status down, whatever a concurrent writer did.
    """
    column = connection.ops.quote_name("status")
    ranks = " ".join(f"WHEN '{status}' THEN {rank}" for status, rank in STATUS_RANK.items())
    return f"CASE {column} {ranks} END < %s"


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


def _apply(reports: list[StatusReport]) -> list[str]:
    by_channel: dict[str, set[str]] = defaultdict(set)
    for report in reports:
        by_channel[report.channel].add(report.provider_message_id)
    rows: dict[tuple[str, str], Message] = {}
    for channel, ids in by_channel.items():
        locked = (
            Message.objects.select_for_update(of=("self",))
            .filter(channel=channel, provider_message_id__in=ids, direction=Message.Direction.OUT)
            .annotate(inbox_id=F("conversation__inbox_id"), contact_endpoint_id=F("conversation__contact__endpoint_id"))
            .only("pk", "provider_message_id", "conversation_id", "attempt", *STATUS_FIELDS)
            .order_by("pk")
        )
        rows.update({(channel, m.provider_message_id): m for m in locked})

    outcomes: list[str] = []
    moved: dict[int, Message] = {}
    filled: dict[int, Message] = {}  # times of passed states recorded, status unchanged
    filled_fields: set[str] = set()
    audits: list[AuditLog] = []
    announced: list[domain_events.DomainEvent] = []
    for report in reports:
        message = rows.get((report.channel, report.provider_message_id))
        if (
            message is not None
            and report.endpoint_ids is not None
            and message.contact_endpoint_id not in report.endpoint_ids
        ):
            message = None  # another connection's message: not this reporter's to move
        if message is None:
            outcomes.append(StatusOutcome.UNKNOWN)
            continue
        new, at_field = report.status, AT_FIELDS[report.status]
        if not moves_up(message.status, new):
            if new != Message.Status.FAILED and getattr(message, at_field) is None:
                setattr(message, at_field, report.at)
                filled[message.pk] = message
                filled_fields.add(at_field)
            outcomes.append(StatusOutcome.STALE)
            continue
        before = message.status
        message.status = new
        setattr(message, at_field, report.at)
        if report.provider_status:
            message.provider_status = report.provider_status
        if new == Message.Status.FAILED:
            message.error = report.error
        moved[message.pk] = message
        audits.append(
            AuditLog(
                actor_kind=AuditLog.ActorKind.PROVIDER,
                action="message.status",
                conversation_id=message.conversation_id,
                message_id=message.pk,
                before={"status": before},
                after={"status": new, **({"error": report.error} if report.error else {})},
            )
        )
        announced.append(
            domain_events.MessageStatusChanged(
                inbox_id=message.inbox_id,
                conversation_id=message.conversation_id,
                message_id=message.pk,
                attempt=message.attempt,
                status=new,
                previous_status=before,
                at=report.at,
            )
        )
        outcomes.append(StatusOutcome.APPLIED)
    if moved:
        # Each moved message once, with everything this batch did to it, guarded by the ladder.
        update_rows(
            Message,
            STATUS_FIELDS,
            sorted(moved.values(), key=lambda m: m.pk),
            where=_ladder_guard(),
            params=[lambda m: STATUS_RANK[m.status]],
        )
    unmoved = [message for pk, message in sorted(filled.items()) if pk not in moved]
    if unmoved:
        update_rows(Message, sorted(filled_fields), unmoved)
    if audits:
        AuditLog.objects.bulk_create(audits)
    domain_events.emit(*announced)
    return outcomes


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
