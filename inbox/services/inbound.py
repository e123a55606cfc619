"""Inbound messages: the one place that decides what is new and how a conversation moves.

`messages_receive` is the implementation, for a webhook's batch as for one event (`message_receive` is a
batch of one), in a fixed number of statements per batch instead of about ten per event: at a webhook's
volume the round trips and the ORM's per-statement cost were the whole price of an event (bench/README.md).

Concurrency: rows are locked in one order (conversations by id, after their contacts exist), and whether
a message is new is decided after its conversation is locked — or, for a conversation the batch opens, before
its INSERT, which waits at the unique key for a concurrent batch opening it too and, having lost, applies the
batch again — so two batches carrying the same events store each once; the unique constraint on (channel,
provider message id) stands behind it.
"""

from __future__ import annotations

import functools
import json
import logging
from collections import defaultdict
from datetime import datetime
from operator import attrgetter, itemgetter
from types import SimpleNamespace

from django.db import connection, transaction
from django.utils import timezone

from inbox import collector, domain_events
from inbox.db import (
    allocate_ids,
    insert_rows,
    is_postgresql,
    model_defaults,
    recordset,
    stored_instance,
    times_in_c,
    update_from,
)
from inbox.events import InboundMessage
from inbox.models import AuditLog, Contact, Conversation, Message
from inbox.services.summary import SUMMARY_FIELDS, conversation_message_added

logger = logging.getLogger(__name__)

# (channel, endpoint_id, channel_user_id)
ContactKey = tuple[str, str, str]


def inbound_message_fields(event: InboundMessage) -> dict:
    """The columns of an inbound message's row: the one mapping of an event to a message. An echo of the
    business's own message sent outside the inbox (`sent_outside`) is an outbound row, already accepted and
    never queued (no `queued_at`: that is how the thread tells it from the agents' replies)."""
    return {
        "direction": Message.Direction.OUT if event.sent_outside else Message.Direction.IN,
        "status": Message.Status.ACCEPTED if event.sent_outside else "",
        "accepted_at": event.sent_at if event.sent_outside else None,
        "channel": event.channel,
        "endpoint_id": event.endpoint_id,
        "provider_message_id": event.provider_message_id,
        "provider_conversation_id": event.provider_conversation_id,
        "sent_at": event.sent_at,
        "type": event.type,
        "text": event.text,
        "media_url": event.media_url,
        "embed_url": event.embed_url,
        "reaction_emoji": event.reaction_emoji,
        "reaction_action": event.reaction_action,
        "quoted_provider_message_id": event.quoted_provider_message_id,
        "payload": event.payload,
        "referral": event.referral,
        "other_author": event.other_author,
        "public_state": event.public_state,
    }


def inbound_message(conversation: Conversation, event: InboundMessage) -> Message:
    """The (unsaved) row of an inbound message (`inbound_message_fields`)."""
    return Message(conversation=conversation, **inbound_message_fields(event))


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


def _contacts(events: list[InboundMessage]) -> tuple[dict[ContactKey, int], dict[int, datetime]]:
    """Contact ids by key, creating the missing ones (a concurrent batch creating the same is harmless): a lookup,
    an `INSERT … ON CONFLICT DO NOTHING RETURNING` of the missing, and a lookup of what a concurrent batch
    created meanwhile (rare). Also the last seen time each contact this batch inserted was stored with."""
    first_seen: dict[ContactKey, datetime] = {}
    for event in events:
        key = (event.channel, event.endpoint_id, event.channel_user_id)
        first_seen.setdefault(key, event.sent_at)  # the time of the first event that arrived
    ids = _contacts_find(list(first_seen))
    missing = sorted(key for key in first_seen if key not in ids)
    if missing:
        created = insert_rows(
            Contact,
            {
                "channel": [key[0] for key in missing],
                "endpoint_id": [key[1] for key in missing],
                "channel_user_id": [key[2] for key in missing],
                "first_seen_at": [first_seen[key] for key in missing],
                "last_seen_at": [first_seen[key] for key in missing],
            },
            returning=("id", "channel", "endpoint_id", "channel_user_id"),
            ignore_conflicts=True,
        )
        ids.update({(channel, endpoint_id, user_id): pk for pk, channel, endpoint_id, user_id in created})
        inserted = {pk: first_seen[(channel, endpoint_id, user_id)] for pk, channel, endpoint_id, user_id in created}
        if len(created) < len(missing):
            ids.update(_contacts_find([key for key in missing if key not in ids]))
        return ids, inserted
    return ids, {}


def _contacts_find(keys: list[ContactKey]) -> dict[ContactKey, int]:
    if not keys:
        return {}
    if is_postgresql():
        with connection.cursor() as cursor:
            table, payload = recordset(
                {
                    "channel": ("text", [k[0] for k in keys]),
                    "endpoint_id": ("text", [k[1] for k in keys]),
                    "channel_user_id": ("text", [k[2] for k in keys]),
                }
            )
            cursor.execute(
                "SELECT id, channel, endpoint_id, channel_user_id FROM inbox_contact "  # noqa: S608 - our SQL
                f"WHERE (channel, endpoint_id, channel_user_id) IN (SELECT * FROM {table})",
                [payload],
            )
            return {(channel, endpoint_id, user_id): pk for pk, channel, endpoint_id, user_id in cursor.fetchall()}
    by_endpoint: dict[tuple[str, str], list[str]] = defaultdict(list)
    for channel, endpoint_id, user_id in keys:
        by_endpoint[(channel, endpoint_id)].append(user_id)
    found: dict[ContactKey, int] = {}
    for (channel, endpoint_id), users in by_endpoint.items():
        rows = Contact.objects.filter(channel=channel, endpoint_id=endpoint_id, channel_user_id__in=users)
        for pk, user_id in rows.values_list("pk", "channel_user_id"):
            found[(channel, endpoint_id, user_id)] = pk
    return found


ConversationKey = tuple[int, int, str, str]  # inbox, contact, kind, subject


def _conversation_key(inbox_id: int, contact_id: int, event: InboundMessage) -> ConversationKey:
    return (inbox_id, contact_id, event.conversation_kind, event.subject_id)


# What the rules read and write of a conversation (`conversation_take_inbound`, `conversation_message_added`):
# read as plain rows under the lock, not model instances.
CONVERSATION_COLUMNS = [
    "id",
    "inbox_id",
    "contact_id",
    "kind",
    "subject_id",
    "status",
    "provider",
    "provider_conversation_id",
    "last_inbound_at",
    "last_activity_at",
    "referral",
    "agent_last_seen_at",
    *SUMMARY_FIELDS,
    "version",
]
# Written back for every conversation a batch touched, in one statement.
CONVERSATION_WRITTEN = [
    "last_inbound_at",
    "last_activity_at",
    "provider_conversation_id",
    "provider",
    "referral",
    "status",
    *SUMMARY_FIELDS,
    "version",
    "updated_at",
]


def _conversation_row(values) -> SimpleNamespace:
    row = SimpleNamespace(**dict(zip(CONVERSATION_COLUMNS, values, strict=True)))
    row.pk = row.id
    if isinstance(row.referral, str):  # PostgreSQL's jsonb comes as text through a raw cursor (Django's loader)
        row.referral = json.loads(row.referral)
    return row


@functools.cache
def _conversation_defaults() -> tuple[dict, list]:
    """The model's defaults of `CONVERSATION_COLUMNS`: (name → value, [(name, callable)]), computed once."""
    static, dynamic = model_defaults(Conversation)
    wanted = set(CONVERSATION_COLUMNS)
    return {k: v for k, v in static.items() if k in wanted}, [(k, f) for k, f in dynamic if k in wanted]


def _conversation_new(key: ConversationKey, event: InboundMessage, pk: int | None) -> SimpleNamespace:
    """The row of a conversation not stored yet, as the INSERT would store it: the key, the first new event's
    activity time and provider conversation id, the model's defaults for the rest."""
    static, dynamic = _conversation_defaults()
    values = {**static, **{name: default() for name, default in dynamic}}
    values.update(
        id=pk,
        inbox_id=key[0],
        contact_id=key[1],
        kind=key[2],
        subject_id=key[3],
        last_activity_at=event.sent_at,
        provider_conversation_id=event.provider_conversation_id,
    )
    row = SimpleNamespace(**values, subject=event.subject)
    row.pk = pk
    return row


def _conversations_open(opening: dict[ConversationKey, InboundMessage]) -> dict[ConversationKey, SimpleNamespace]:
    """Elsewhere than PostgreSQL (SQLite in development; it serializes writers): insert the conversations as
    opened by their first event, then take them as stored rows — the batch's rules move them like the others."""
    missing = sorted(opening)
    fresh = [_conversation_new(key, opening[key], None) for key in missing]
    insert_rows(
        Conversation,
        {name: [getattr(row, name) for row in fresh] for name in ["inbox_id", "contact_id", "kind", "subject_id"]}
        | {"subject": [row.subject for row in fresh], "last_activity_at": [row.last_activity_at for row in fresh]}
        | {"provider_conversation_id": [row.provider_conversation_id for row in fresh]},
        ignore_conflicts=True,
    )
    return _conversations_lock(missing)


def _conversations_insert(rows: list[SimpleNamespace], now: datetime) -> bool:
    """INSERT conversations complete (PostgreSQL: ids allocated, the batch's rules applied): one statement.

    False when a concurrent batch opened one of them first (the unique key; `ON CONFLICT DO NOTHING` waits for it
    to commit): the rows this statement did insert are deleted again — nothing refers to them yet — and the
    caller starts the batch again, with that conversation now stored and locked like any other."""
    columns = _columns(attrgetter, rows, [*CONVERSATION_COLUMNS, "subject"])
    columns["created_at"] = columns["updated_at"] = [now] * len(rows)
    inserted = [pk for (pk,) in insert_rows(Conversation, columns, ignore_conflicts=True)]
    if len(inserted) == len(rows):
        return True
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM inbox_conversation WHERE id = ANY(%s)", [inserted])
    return False


def _conversations_lock(keys: list[ConversationKey]) -> dict[ConversationKey, SimpleNamespace]:
    if not keys:
        return {}
    if is_postgresql():
        with connection.cursor() as cursor:
            times_in_c(cursor)  # four times a row: Django's loader was a tenth of a batch's Python in the stack
            table, payload = recordset(
                {
                    "inbox_id": ("bigint", [k[0] for k in keys]),
                    "contact_id": ("bigint", [k[1] for k in keys]),
                    "kind": ("text", [k[2] for k in keys]),
                    "subject_id": ("text", [k[3] for k in keys]),
                }
            )
            cursor.execute(
                f"SELECT {', '.join(CONVERSATION_COLUMNS)} FROM inbox_conversation "  # noqa: S608 - our SQL
                f"WHERE (inbox_id, contact_id, kind, subject_id) IN (SELECT * FROM {table}) ORDER BY id FOR UPDATE",
                [payload],
            )
            rows = [_conversation_row(values) for values in cursor.fetchall()]
    else:
        wanted = set(keys)
        rows = [
            _conversation_row(values)
            for values in Conversation.objects.select_for_update()
            .filter(inbox_id__in={k[0] for k in keys}, contact_id__in={k[1] for k in keys})
            .order_by("pk")
            .values_list(*CONVERSATION_COLUMNS)
        ]
        rows = [row for row in rows if (row.inbox_id, row.contact_id, row.kind, row.subject_id) in wanted]
    return {(row.inbox_id, row.contact_id, row.kind, row.subject_id): row for row in rows}


def _stored(keys: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], Message]:
    """The messages already stored under (channel, endpoint, provider id) — outbound too: echoes of the business's
    own messages (our replies' ids are ours, endpoint "")."""
    if is_postgresql():
        with connection.cursor() as cursor:
            table, payload = recordset(
                {
                    "channel": ("text", [k[0] for k in keys]),
                    "endpoint_id": ("text", [k[1] for k in keys]),
                    "provider_message_id": ("text", [k[2] for k in keys]),
                }
            )
            cursor.execute(
                "SELECT id FROM inbox_message WHERE provider_message_id IS NOT NULL "  # noqa: S608 - our SQL
                "AND direction IN ('in', 'out') "
                f"AND (channel, endpoint_id, provider_message_id) IN (SELECT * FROM {table})",
                [payload],
            )
            ids = [pk for (pk,) in cursor.fetchall()]
        messages = Message.objects.filter(pk__in=ids) if ids else []
    else:
        by_channel: dict[str, list[str]] = defaultdict(list)
        for channel, _, provider_message_id in keys:
            by_channel[channel].append(provider_message_id)
        messages = [
            message
            for channel, ids in by_channel.items()
            for message in Message.objects.filter(
                channel=channel,
                direction__in=(Message.Direction.IN, Message.Direction.OUT),
                provider_message_id__in=ids,
            )
        ]
    found = {(m.channel, m.endpoint_id, m.provider_message_id): m for m in messages}
    return {key: found[key] for key in keys if key in found}


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
    # Without the cyclic collector: its collections, triggered by the batch's own (acyclic) rows and walking the
    # whole heap, were 35–80 µs of an event's ~200 of Python (bench/README.md "Set-based intake", eighth session).
    with collector.paused(), transaction.atomic(savepoint=False):
        return _receive(items)


def message_receive(*, inbox_id: int, event: InboundMessage) -> tuple[Message, bool]:
    """Store one inbound message once: a batch of one (`messages_receive`). Returns (message, created)."""
    [(message, created)] = messages_receive([(inbox_id, event)])
    return message, created


class _Raced(Exception):
    """A conversation the batch was opening was opened by a concurrent batch first: apply the batch again."""


def _receive(items: list[tuple[int, InboundMessage]]) -> list[tuple[Message, bool]]:
    contact_ids, contacts_inserted = _contacts([event for _, event in items])
    conversation_keys = [
        _conversation_key(inbox_id, contact_ids[(event.channel, event.endpoint_id, event.channel_user_id)], event)
        for inbox_id, event in items
    ]
    # New or not is decided per (channel, endpoint, id): ids are unique only within one connection's endpoint.
    keys = [(event.channel, event.endpoint_id, event.provider_message_id) for _, event in items]
    while True:  # again only after a race lost to a batch that has committed: each round finds more stored
        try:
            return _receive_locked(items, conversation_keys, keys, contacts_inserted)
        except _Raced:
            continue


def _receive_locked(
    items: list[tuple[int, InboundMessage]],
    conversation_keys: list[ConversationKey],
    keys: list[tuple[str, str, str]],
    contacts_inserted: dict[int, datetime],
) -> list[tuple[Message, bool]]:
    conversations = _conversations_lock(list(dict.fromkeys(conversation_keys)))
    # Decided under the conversations' locks: a concurrent batch with the same events has committed or waits. A
    # conversation that does not exist yet is opened below; a concurrent batch opening it too makes one of the two
    # wait at the unique key and start again (`_conversations_insert`).
    stored: dict[tuple[str, str, str], Message | None] = _stored(list(set(keys)))

    new: list[tuple[ConversationKey, InboundMessage, dict]] = []
    for (_, event), conversation_key, key in zip(items, conversation_keys, keys, strict=True):
        if key in stored:
            continue
        stored[key] = None  # a repeat inside the batch is a duplicate too (of the message created below)
        new.append((conversation_key, event, inbound_message_fields(event)))
    created: dict[tuple[str, str, str], Message] = {}
    if new:
        created = _store(new, conversations, contacts_inserted)
    received: list[tuple[Message, bool]] = []
    returned: set[tuple[str, str, str]] = set()
    for key in keys:
        if key in created and key not in returned:
            returned.add(key)
            received.append((created[key], True))
        else:
            received.append((stored[key] or created[key], False))
    return received


def _store(
    new: list[tuple[ConversationKey, InboundMessage, dict]],
    conversations: dict[ConversationKey, SimpleNamespace],
    contacts_inserted: dict[int, datetime],
) -> dict[tuple[str, str, str], Message]:
    """Insert the new messages (one statement), move their locked conversations by the rules, write them back
    (one statement), the contacts' last seen (one statement), the reopenings' audit rows; emit the events.

    A conversation the batch opens (PostgreSQL) is written once, complete: its id and its messages' ids are
    allocated first (one statement), the rules move it in memory, and it is inserted with its list row — not
    inserted, then updated for its messages (10 WAL records, an entry in every index, per new conversation)."""
    now = timezone.now()
    opening: dict[ConversationKey, InboundMessage] = {}
    for conversation_key, event, _ in new:
        if conversation_key not in conversations:
            opening.setdefault(conversation_key, event)  # the first new event opens it
    fresh: dict[ConversationKey, SimpleNamespace] = {}
    message_ids: list[int] = []
    if opening and is_postgresql():
        conversation_ids, message_ids = allocate_ids([(Conversation, len(opening)), (Message, len(new))])
        fresh = {
            key: _conversation_new(key, opening[key], pk)
            for key, pk in zip(sorted(opening), conversation_ids, strict=True)
        }
        conversations = {**conversations, **fresh}
    elif opening:
        conversations = {**conversations, **_conversations_open(opening)}

    names = list(new[0][2])
    columns = _columns(itemgetter, [fields for *_, fields in new], names)
    columns["conversation_id"] = [conversations[conversation_key].pk for conversation_key, *_ in new]
    columns["created_at"] = [now] * len(new)
    if message_ids:
        columns["id"] = message_ids
        ids = message_ids
    else:
        ids = [pk for (pk,) in insert_rows(Message, columns)]

    to_announce = {conversations[key].pk for key in opening}
    touched: dict[int, SimpleNamespace] = {}
    last_seen: dict[int, datetime] = {}
    audits: list[AuditLog] = []
    announced: list[domain_events.DomainEvent] = []
    created: dict[tuple[str, str, str], Message] = {}
    alias = connection.alias
    for (conversation_key, event, fields), pk in zip(new, ids, strict=True):
        conversation = conversations[conversation_key]
        message = _message(pk, conversation.pk, fields, now, alias)
        created[(event.channel, event.endpoint_id, event.provider_message_id)] = message
        touched[conversation.pk] = conversation
        status_before = conversation.status
        reopened = "status" in conversation_take_inbound(conversation, event)
        conversation_message_added(conversation, message)
        if reopened:
            audits.append(
                AuditLog(
                    actor_kind=AuditLog.ActorKind.PROVIDER,
                    action="conversation.reopened",
                    conversation_id=conversation.pk,
                    message_id=message.pk,
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

    fresh_rows = list(fresh.values())
    if fresh:
        if not _conversations_insert(fresh_rows, now):
            raise _Raced
        insert_rows(Message, columns)
    fresh_ids = {row.pk for row in fresh_rows}
    rows = sorted((c for c in touched.values() if c.pk not in fresh_ids), key=lambda c: c.pk)
    update_from(Conversation, {"id": [c.pk for c in rows], **_columns(attrgetter, rows, CONVERSATION_WRITTEN)})
    # Never backwards, whatever a concurrent batch wrote: the later of the stored and this time. A contact this
    # batch inserted holds the time it was inserted with (no other transaction sees it yet): only a later one moves.
    seen = sorted((pk, at) for pk, at in last_seen.items() if pk not in contacts_inserted or at > contacts_inserted[pk])
    update_from(
        Contact,
        {"id": [pk for pk, _ in seen], "last_seen_at": [at for _, at in seen]},
        where="t.last_seen_at IS NULL OR t.last_seen_at < v.last_seen_at",
    )
    if audits:
        AuditLog.objects.bulk_create(audits)
    domain_events.emit(*announced)
    return created


def _columns(getter, rows: list, names: list[str]) -> dict[str, list]:
    """Rows as columns (name → one value per row), each row read by `getter(*names)` (`itemgetter` for dicts,
    `attrgetter` for objects): transposed by `zip` in C. A comprehension per column (with a tuple unpacked per value)
    was 6 % of a 100/POST batch's processor CPU (bench/README.md "Set-based intake, tenth session")."""
    if len(names) < 2 or not rows:  # one name: the getter returns the value, not a 1-tuple
        return {name: [getter(name)(row) for row in rows] for name in names}
    return dict(zip(names, map(list, zip(*map(getter(*names), rows), strict=True)), strict=True))


def _message(pk: int, conversation_id: int, fields: dict, now: datetime, alias: str) -> Message:
    """The stored row as the model instance callers get back, built without the ORM's per-field work. `alias`: the
    connection's, read once per batch (`connection.alias` goes through a context-local lookup: ~2 µs a message)."""
    return stored_instance(
        Message, {"id": pk, "conversation_id": conversation_id, "created_at": now, **fields}, using=alias
    )
