"""Inbound messages: the one place that decides what is new and how a conversation moves."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction

from inbox import live
from inbox.events import InboundMessage
from inbox.live import publish_on_commit
from inbox.models import AuditLog, Contact, Conversation, Message

logger = logging.getLogger(__name__)


def inbound_message(conversation: Conversation, event: InboundMessage) -> Message:
    """The (unsaved) row of an inbound message: the one mapping for the single-event and the batch path."""
    return Message(
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


def conversation_take_inbound(conversation: Conversation, event: InboundMessage) -> list[str]:
    """Move a (locked) conversation for a newly stored inbound message: the reply window and activity only
    forward, the reply address, the referral, a resolved conversation reopened. Returns the changed fields;
    the caller bumps the version, saves, and audits a reopening."""
    changed = []
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
    if conversation.status != Conversation.Status.OPEN:  # resolved, or pending (snoozed): the customer wrote
        conversation.status = Conversation.Status.OPEN
        changed.append("status")
    return changed


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
                message = inbound_message(conversation, event)
                message.save(force_insert=True)
        except IntegrityError:
            existing = Message.objects.get(channel=event.channel, provider_message_id=event.provider_message_id)
            return existing, False

        before_status = conversation.status
        changed = ["version", "updated_at", *conversation_take_inbound(conversation, event)]
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
            publish_on_commit(inbox_id=inbox_id, event=live.conversation_created(conversation.pk))
        publish_on_commit(
            inbox_id=inbox_id,
            event=live.message_created(
                conversation_id=conversation.pk,
                message_id=message.pk,
                direction=message.direction,
                version=conversation.version,
            ),
        )
    return message, True
