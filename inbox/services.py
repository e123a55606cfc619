"""Writes of the contact center. Views, serializers, consumers and tasks call these, never .save()."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from inbox.errors import ApplicationError
from inbox.events import InboundMessage, StatusReport
from inbox.live import publish_on_commit
from inbox.models import AuditLog, Contact, Conversation, Inbox, Message

# Delivery status only moves up this ladder. `failed` sits below `delivered`: evidence that the
# user got the message beats a failure report, whatever order the reports arrive in.
STATUS_RANK = {
    Message.Status.QUEUED: 0,
    Message.Status.ACCEPTED: 1,
    Message.Status.FAILED: 2,
    Message.Status.DELIVERED: 3,
    Message.Status.SEEN: 4,
}


def inbox_get_or_create(*, name: str) -> Inbox:
    with transaction.atomic():
        inbox, _ = Inbox.objects.get_or_create(name=name)
    return inbox


def message_receive(*, inbox_id: int, event: InboundMessage) -> tuple[Message, bool]:
    """Store an inbound message once; returns (message, created).

    Upserts the contact, finds or opens the conversation (reopening a resolved one), and moves the
    conversation's last inbound time, which opens the reply window. A redelivered event (same
    provider message id) is caught by the database's unique constraint and changes nothing.
    """
    # savepoint=False: callers that batch results give each one its own savepoint already.
    with transaction.atomic(savepoint=False):
        contact, _ = Contact.objects.get_or_create(
            channel=event.channel,
            endpoint_id=event.endpoint_id,
            channel_user_id=event.channel_user_id,
            defaults={"first_seen_at": event.sent_at, "last_seen_at": event.sent_at},
        )
        conversation, conversation_created = Conversation.objects.select_for_update().get_or_create(
            inbox_id=inbox_id,
            contact=contact,
            defaults={"last_activity_at": event.sent_at, "provider_conversation_id": event.provider_conversation_id},
        )
        try:
            with transaction.atomic():
                message = Message.objects.create(
                    conversation=conversation,
                    direction=Message.Direction.IN,
                    channel=event.channel,
                    provider_message_id=event.provider_message_id,
                    provider_conversation_id=event.provider_conversation_id,
                    sent_at=event.sent_at,
                    type=event.type,
                    text=event.text,
                    media_url=event.media_url,
                    embed_url=event.embed_url,
                    reaction_emoji=event.reaction_emoji,
                    reaction_action=event.reaction_action,
                    quoted_provider_message_id=event.quoted_provider_message_id,
                    payload=event.payload,
                )
        except IntegrityError:
            existing = Message.objects.get(channel=event.channel, provider_message_id=event.provider_message_id)
            return existing, False

        before_status = conversation.status
        changed = ["version", "updated_at"]
        if conversation.last_inbound_at is None or event.sent_at > conversation.last_inbound_at:
            conversation.last_inbound_at = event.sent_at
            changed.append("last_inbound_at")
        if event.sent_at > conversation.last_activity_at:
            conversation.last_activity_at = event.sent_at
            changed.append("last_activity_at")
        if event.provider_conversation_id and event.provider_conversation_id != conversation.provider_conversation_id:
            conversation.provider_conversation_id = event.provider_conversation_id
            changed.append("provider_conversation_id")
        if event.referral:
            conversation.referral = event.referral
            changed.append("referral")
        if conversation.status == Conversation.Status.RESOLVED:
            conversation.status = Conversation.Status.OPEN
            changed.append("status")
        conversation.version += 1  # safe: the row is locked (select_for_update above)
        conversation.save(update_fields=changed)
        if contact.last_seen_at is None or event.sent_at > contact.last_seen_at:
            Contact.objects.filter(pk=contact.pk).update(last_seen_at=event.sent_at)

        if conversation.status != before_status:
            AuditLog.objects.create(
                actor_kind=AuditLog.ActorKind.PROVIDER,
                action="conversation.reopened",
                conversation=conversation,
                message=message,
                before={"status": before_status},
                after={"status": conversation.status},
            )
        if conversation_created:
            publish_on_commit(
                inbox_id=inbox_id,
                event={"type": "conversation.created", "conversation_id": conversation.pk, "version": 1},
            )
        publish_on_commit(
            inbox_id=inbox_id,
            event={
                "type": "message.created",
                "conversation_id": conversation.pk,
                "message_id": message.pk,
                "direction": message.direction,
                "version": conversation.version,
            },
        )
    return message, True


class StatusOutcome:
    APPLIED = "applied"
    STALE = "stale"  # the message is already at this status or further
    UNKNOWN = "unknown"  # no such outbound message (yet)


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
        row = messages.select_for_update().values("id", "status", "conversation_id", "conversation__inbox_id").first()
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
            event={
                "type": "message.status",
                "conversation_id": row["conversation_id"],
                "message_id": row["id"],
                "status": new,
                "at": report.at.isoformat(),
                "version": STATUS_RANK[new],
            },
        )
    return StatusOutcome.APPLIED


# --- Conversation actions by agents -------------------------------------------------------------


def _conversation_change(*, conversation_id: int, actor, action: str, changes: dict) -> Conversation:
    """Apply `changes` to a locked conversation, audit before/after, publish `conversation.updated`."""
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
        before = {field: _audit_value(getattr(conversation, field)) for field in changes}
        if all(getattr(conversation, field) == value for field, value in changes.items()):
            return conversation
        for field, value in changes.items():
            setattr(conversation, field, value)
        conversation.version += 1
        conversation.save(update_fields=[*changes, "version", "updated_at"])
        AuditLog.objects.create(
            actor=actor,
            actor_kind=AuditLog.ActorKind.AGENT if actor else AuditLog.ActorKind.SYSTEM,
            action=action,
            conversation=conversation,
            before=before,
            after={field: _audit_value(value) for field, value in changes.items()},
        )
        publish_on_commit(
            inbox_id=conversation.inbox_id,
            event={
                "type": "conversation.updated",
                "conversation_id": conversation.pk,
                "status": conversation.status,
                "priority": conversation.priority,
                "assignee_id": conversation.assignee_id,
                "version": conversation.version,
            },
        )
    return conversation


def _audit_value(value):
    return getattr(value, "pk", value)


def conversation_assign(*, conversation_id: int, assignee, actor) -> Conversation:
    """Assign to an agent who can see the conversation's inbox (a member, or an admin)."""
    inbox = Conversation.objects.select_related("inbox").get(pk=conversation_id).inbox
    allowed = assignee.is_superuser or inbox.members.filter(pk=assignee.pk).exists()
    if not (assignee.is_active and allowed):
        raise ApplicationError(
            "invalid_assignee",
            "that agent is not a member of this conversation's inbox",
            status=422,
            fields={"assignee": ["not a member of the inbox"]},
        )
    return _conversation_change(
        conversation_id=conversation_id, actor=actor, action="conversation.assigned", changes={"assignee": assignee}
    )


def conversation_unassign(*, conversation_id: int, actor) -> Conversation:
    return _conversation_change(
        conversation_id=conversation_id, actor=actor, action="conversation.unassigned", changes={"assignee": None}
    )


def conversation_set_status(*, conversation_id: int, status: str, actor) -> Conversation:
    return _conversation_change(
        conversation_id=conversation_id, actor=actor, action=f"conversation.{status}", changes={"status": status}
    )


def conversation_set_priority(*, conversation_id: int, priority: str, actor) -> Conversation:
    return _conversation_change(
        conversation_id=conversation_id, actor=actor, action="conversation.priority", changes={"priority": priority}
    )


def conversation_mark_read(*, conversation_id: int, actor) -> None:
    """Agents have read the thread up to now (drives unread counts). Not audited: it changes no state."""
    Conversation.objects.filter(pk=conversation_id).update(agent_last_seen_at=timezone.now())
