"""Inbound messages: the one place that decides what is new and how a conversation moves.

`messages_receive` is the implementation, for a webhook's batch as for one event (`message_receive` is a
batch of one), in a fixed number of statements per batch instead of about ten per event: at a webhook's
volume the round trips and the ORM's per-statement cost were the whole price of an event (bench/README.md).

Concurrency: rows are locked in one order (conversations by id, after their contacts exist), and whether
a message is new is decided after its conversation is locked, so two batches carrying the same events
store each once; the unique constraint on (channel, provider message id) stands behind it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from inbox import domain_events
from inbox.db import update_rows
from inbox.events import InboundMessage
from inbox.models import AuditLog, Contact, Conversation, Message
from inbox.services.summary import SUMMARY_FIELDS, conversation_message_added

logger = logging.getLogger(__name__)

# (channel, endpoint_id, channel_user_id)
ContactKey = tuple[str, str, str]


def inbound_message(conversation: Conversation, event: InboundMessage) -> Message:
    """The (unsaved) row of an inbound message: the one mapping of an event to a message. An echo of the
    business's own message sent outside the inbox (`sent_outside`) is an outbound row, already accepted and
    never queued (no `queued_at`: that is how the thread tells it from the agents' replies)."""
    outside = {}
    if event.sent_outside:
        outside = {"status": Message.Status.ACCEPTED, "accepted_at": event.sent_at}
    return Message(
        conversation=conversation,
        direction=Message.Direction.OUT if event.sent_outside else Message.Direction.IN,
        **outside,
        channel=event.channel,
        endpoint_id=event.endpoint_id,
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
        referral=event.referral,
        other_author=event.other_author,
        public_state=event.public_state,
    )


def conversation_take_inbound(conversation: Conversation, event: InboundMessage) -> list[str]:
    """Move a (locked) conversation for a newly stored inbound message: the reply window and activity only
    forward, the reply address, the referral, a resolved conversation reopened. Returns the changed fields;
    the caller bumps the version, saves, and audits a reopening. The business's own message sent outside the
    inbox moves only the activity: it opens no reply window and reopens nothing."""
    changed = []
    if event.sent_outside:
        if event.sent_at > conversation.last_activity_at:
            conversation.last_activity_at = event.sent_at
            changed.append("last_activity_at")
        return changed
    if conversation.last_inbound_at is None or event.sent_at > conversation.last_inbound_at:
        conversation.last_inbound_at = event.sent_at
        changed.append("last_inbound_at")
    if event.sent_at > conversation.last_activity_at:
        conversation.last_activity_at = event.sent_at
        changed.append("last_activity_at")
    if event.provider_conversation_id and event.provider_conversation_id != conversation.provider_conversation_id:
        conversation.provider_conversation_id = event.provider_conversation_id
        changed.append("provider_conversation_id")
    if event.provider and event.provider != conversation.provider:
        conversation.provider = event.provider  # replies follow the connection the user wrote through last
        changed.append("provider")
    if event.referral:
        conversation.referral = event.referral
        changed.append("referral")
    if conversation.status != Conversation.Status.OPEN:  # resolved, or pending (snoozed): the customer wrote
        conversation.status = Conversation.Status.OPEN
        changed.append("status")
    return changed


def _contacts(events: list[InboundMessage]) -> dict[ContactKey, int]:
    """Contact ids by key, creating the missing ones (a concurrent batch creating the same is harmless)."""
    first_seen: dict[ContactKey, datetime] = {}
    for event in events:
        key = (event.channel, event.endpoint_id, event.channel_user_id)
        first_seen.setdefault(key, event.sent_at)  # the time of the first event that arrived
    by_endpoint: dict[tuple[str, str], list[str]] = defaultdict(list)
    for channel, endpoint_id, user_id in first_seen:
        by_endpoint[(channel, endpoint_id)].append(user_id)

    def lookup() -> dict[ContactKey, int]:
        found: dict[ContactKey, int] = {}
        for (channel, endpoint_id), users in by_endpoint.items():
            rows = Contact.objects.filter(channel=channel, endpoint_id=endpoint_id, channel_user_id__in=users)
            for pk, user_id in rows.values_list("pk", "channel_user_id"):
                found[(channel, endpoint_id, user_id)] = pk
        return found

    ids = lookup()
    missing = sorted(key for key in first_seen if key not in ids)
    if missing:
        Contact.objects.bulk_create(
            [
                Contact(
                    channel=channel,
                    endpoint_id=endpoint_id,
                    channel_user_id=user_id,
                    first_seen_at=first_seen[(channel, endpoint_id, user_id)],
                    last_seen_at=first_seen[(channel, endpoint_id, user_id)],
                )
                for channel, endpoint_id, user_id in missing
            ],
            ignore_conflicts=True,
        )
        ids = lookup()
    return ids


ConversationKey = tuple[int, int, str, str]  # inbox, contact, kind, subject


def _conversation_key(inbox_id: int, contact_id: int, event: InboundMessage) -> ConversationKey:
    return (inbox_id, contact_id, event.conversation_kind, event.subject_id)


def _conversations(pairs: dict[ConversationKey, InboundMessage]) -> tuple[dict[ConversationKey, Conversation], set]:
    """The conversations of (inbox_id, contact_id, kind, subject_id) keys, locked in id order, opening the missing
    ones.

    `pairs` maps each key to its first event (the defaults of a new conversation). Returns the
    conversations by key and the keys whose conversation this batch opened.
    """

    def lock(wanted) -> dict[ConversationKey, Conversation]:
        inbox_ids = {key[0] for key in wanted}
        contact_ids = {key[1] for key in wanted}
        rows = (
            Conversation.objects.select_for_update()
            .filter(inbox_id__in=inbox_ids, contact_id__in=contact_ids)
            .order_by("pk")
        )
        found = {}
        for c in rows:
            key = (c.inbox_id, c.contact_id, c.kind, c.subject_id)
            if key in wanted:
                found[key] = c
        return found

    found = lock(set(pairs))
    missing = sorted(pair for pair in pairs if pair not in found)
    if missing:
        Conversation.objects.bulk_create(
            [
                Conversation(
                    inbox_id=key[0],
                    contact_id=key[1],
                    kind=key[2],
                    subject_id=key[3],
                    subject=pairs[key].subject,
                    last_activity_at=pairs[key].sent_at,
                    provider_conversation_id=pairs[key].provider_conversation_id,
                )
                for key in missing
            ],
            ignore_conflicts=True,
        )
        found.update(lock(set(missing)))
    return found, set(missing)


def messages_receive(items: list[tuple[int, InboundMessage]]) -> list[tuple[Message, bool]]:
    """Store inbound messages once each; returns per item (message, created). A redelivered event (same
    provider message id, stored before or earlier in the batch) is not created again: its message is the
    stored one.

    `items` are (inbox_id, event). Upserts contacts, opens or reopens (audited) the conversations, moves their
    last inbound time (the reply window), activity, list row (newest message, unread count) and version, and
    publishes `conversation.created` / `message.created` once the transaction commits.
    """
    if not items:
        return []
    with transaction.atomic(savepoint=False):
        return _receive(items)


def message_receive(*, inbox_id: int, event: InboundMessage) -> tuple[Message, bool]:
    """Store one inbound message once: a batch of one (`messages_receive`). Returns (message, created)."""
    [(message, created)] = messages_receive([(inbox_id, event)])
    return message, created


def _receive(items: list[tuple[int, InboundMessage]]) -> list[tuple[Message, bool]]:
    contact_ids = _contacts([event for _, event in items])
    pairs: dict[ConversationKey, InboundMessage] = {}
    for inbox_id, event in items:
        contact_id = contact_ids[(event.channel, event.endpoint_id, event.channel_user_id)]
        pairs.setdefault(_conversation_key(inbox_id, contact_id, event), event)
    conversations, opened = _conversations(pairs)

    # Decided under the conversations' locks: a concurrent batch with the same events has committed or waits.
    by_channel: dict[str, list[str]] = defaultdict(list)
    for _, event in items:
        by_channel[event.channel].append(event.provider_message_id)
    # New or not is decided per (channel, endpoint, id): ids are unique only within one connection's endpoint.
    stored: dict[tuple[str, str, str], Message] = {
        (channel, message.endpoint_id, message.provider_message_id): message
        for channel, ids in by_channel.items()
        for message in Message.objects.filter(
            # Outbound too: echoes of the business's own messages (our replies' ids are ours, endpoint "").
            channel=channel,
            direction__in=(Message.Direction.IN, Message.Direction.OUT),
            provider_message_id__in=ids,
        )
    }

    received: list[tuple[Message, bool]] = []
    new: list[tuple[Conversation, InboundMessage, Message]] = []
    for inbox_id, event in items:
        key = (event.channel, event.endpoint_id, event.provider_message_id)
        if key in stored:
            received.append((stored[key], False))
            continue
        contact_id = contact_ids[(event.channel, event.endpoint_id, event.channel_user_id)]
        conversation = conversations[_conversation_key(inbox_id, contact_id, event)]
        message = inbound_message(conversation, event)
        stored[key] = message  # a repeat inside the batch is a duplicate too
        new.append((conversation, event, message))
        received.append((message, True))
    if not new:
        return received
    Message.objects.bulk_create([message for *_, message in new])

    now = timezone.now()
    to_announce = {conversations[pair].pk for pair in opened}
    touched: dict[int, Conversation] = {}
    last_seen: dict[int, datetime] = {}
    audits: list[AuditLog] = []
    announced: list[domain_events.DomainEvent] = []
    for conversation, event, message in new:
        touched[conversation.pk] = conversation
        status_before = conversation.status
        reopened = "status" in conversation_take_inbound(conversation, event)
        conversation_message_added(conversation, message)
        if reopened:
            audits.append(
                AuditLog(
                    actor_kind=AuditLog.ActorKind.PROVIDER,
                    action="conversation.reopened",
                    conversation=conversation,
                    message=message,
                    before={"status": status_before},
                    after={"status": Conversation.Status.OPEN},
                )
            )
        conversation.version += 1  # safe: the row is locked
        conversation.updated_at = now
        if conversation.pk in to_announce:
            to_announce.discard(conversation.pk)
            announced.append(
                domain_events.ConversationCreated(
                    inbox_id=conversation.inbox_id,
                    conversation_id=conversation.pk,
                    contact_id=conversation.contact_id,
                    provider=conversation.provider,
                )
            )
        if event.sent_outside:
            announced.append(
                domain_events.MessageSentOutside(
                    inbox_id=conversation.inbox_id,
                    conversation_id=conversation.pk,
                    message_id=message.pk,
                    sent_at=message.sent_at,
                    conversation_version=conversation.version,
                )
            )
            continue
        announced.append(
            domain_events.MessageReceived(
                inbox_id=conversation.inbox_id,
                conversation_id=conversation.pk,
                message_id=message.pk,
                message_type=message.type,
                sent_at=message.sent_at,
                conversation_version=conversation.version,
                reopened=reopened,
            )
        )
        contact_id = conversation.contact_id
        last_seen[contact_id] = max(last_seen.get(contact_id, event.sent_at), event.sent_at)

    update_rows(
        Conversation,
        [
            "last_inbound_at",
            "last_activity_at",
            "provider_conversation_id",
            "provider",
            "referral",
            "status",
            *SUMMARY_FIELDS,
            "version",
            "updated_at",
        ],
        sorted(touched.values(), key=lambda c: c.pk),
    )
    # Never backwards, whatever a concurrent batch wrote: the later of the stored and this time.
    at = connection.ops.adapt_datetimefield_value
    table, column = connection.ops.quote_name(Contact._meta.db_table), connection.ops.quote_name("last_seen_at")
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET {column} = %s WHERE id = %s AND ({column} IS NULL OR {column} < %s)",  # noqa: S608
            [(at(seen_at), contact_id, at(seen_at)) for contact_id, seen_at in sorted(last_seen.items())],
        )
    if audits:
        AuditLog.objects.bulk_create(audits)
    domain_events.emit(*announced)
    return received
