"""Delivery status of outbound messages: the forward-only ladder, in one place."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from inbox import live
from inbox.events import StatusReport
from inbox.live import publish_on_commit
from inbox.models import AuditLog, Message
from inbox.services.common import (
    STATUS_RANK,
    StatusOutcome,
    message_version,
)

logger = logging.getLogger(__name__)


def message_status_apply(*, report: StatusReport) -> str:
    """Move an outbound message's delivery status forward; never backward (see STATUS_RANK).

    Locks the row, and guards the UPDATE itself with the allowed previous statuses, so two reports
    applied concurrently cannot move a status down. A report for a status already passed still
    records when that state was reached (except failure, which a delivered message never had).
    """
    new = report.status
    lower = [status for status, rank in STATUS_RANK.items() if rank < STATUS_RANK[new]]
    at_field = f"{new}_at"
    with transaction.atomic(savepoint=False):
        messages = Message.objects.filter(
            channel=report.channel, provider_message_id=report.provider_message_id, direction=Message.Direction.OUT
        )
        # of=("self",): lock the message row only, never the joined conversation (services that lock
        # both take the conversation first; locking it here in the other order could deadlock).
        row = (
            messages.select_for_update(of=("self",))
            .values("id", "status", "attempt", "conversation_id", "conversation__inbox_id")
            .first()
        )
        if row is None:
            return StatusOutcome.UNKNOWN
        fields = {"status": new, at_field: report.at}
        if report.provider_status:
            fields["provider_status"] = report.provider_status
        if new == Message.Status.FAILED:
            fields["error"] = report.error
        if not Message.objects.filter(pk=row["id"], status__in=lower).update(**fields):
            if new != Message.Status.FAILED:
                Message.objects.filter(pk=row["id"], **{f"{at_field}__isnull": True}).update(**{at_field: report.at})
            return StatusOutcome.STALE
        AuditLog.objects.create(
            actor_kind=AuditLog.ActorKind.PROVIDER,
            action="message.status",
            conversation_id=row["conversation_id"],
            message_id=row["id"],
            before={"status": row["status"]},
            after={"status": new, **({"error": report.error} if report.error else {})},
        )
        publish_on_commit(
            inbox_id=row["conversation__inbox_id"],
            event=live.message_status(
                conversation_id=row["conversation_id"],
                message_id=row["id"],
                status=new,
                at=report.at,
                version=message_version(row["attempt"], new),
            ),
        )
    return StatusOutcome.APPLIED


def message_send_failed(*, channel: str, provider_message_id: str, error: dict) -> str:
    """Mark a queued attempt failed because its send did not succeed (refused, or retries spent).

    Only `queued` is replaced: if a report already moved the attempt on, the provider has it. Keyed by
    the attempt's provider id, so a stale task cannot fail a newer attempt. Returns a StatusOutcome.
    """
    now = timezone.now()
    with transaction.atomic(savepoint=False):
        row = (
            Message.objects.filter(
                channel=channel, provider_message_id=provider_message_id, direction=Message.Direction.OUT
            )
            .select_for_update(of=("self",))  # the message only: services lock conversation → message
            .values("id", "status", "attempt", "conversation_id", "conversation__inbox_id")
            .first()
        )
        if row is None:
            return StatusOutcome.UNKNOWN
        updated = Message.objects.filter(pk=row["id"], status=Message.Status.QUEUED).update(
            status=Message.Status.FAILED, failed_at=now, error=error
        )
        if not updated:
            return StatusOutcome.STALE
        AuditLog.objects.create(
            actor_kind=AuditLog.ActorKind.SYSTEM,
            action="message.send_failed",
            conversation_id=row["conversation_id"],
            message_id=row["id"],
            before={"status": row["status"]},
            after={"status": Message.Status.FAILED, "error": error},
        )
        publish_on_commit(
            inbox_id=row["conversation__inbox_id"],
            event=live.message_status(
                conversation_id=row["conversation_id"],
                message_id=row["id"],
                status=Message.Status.FAILED,
                at=now,
                version=message_version(row["attempt"], Message.Status.FAILED),
            ),
        )
    return StatusOutcome.APPLIED
