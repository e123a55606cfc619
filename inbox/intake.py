"""Batch writes of what channels deliver: inbound messages and status reports, many per transaction.

The rules are those of `services.message_receive` and `services.message_status_apply` (which stay for
single events and replays, and whose tests this module's results must match), in a fixed number of
statements per batch instead of about ten per event: at a webhook's volume the round trips and the ORM's
per-statement cost were the whole price of an event (bench/README.md).

Concurrency: rows are locked in one order (conversations by id, after their contacts exist), and whether
a message is new is decided after its conversation is locked, so two batches carrying the same events
store each once, as the single-event path does. Both functions must run inside a transaction.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.db import connection
from django.db.models import F, Model
from django.utils import timezone

from inbox import live
from inbox.events import InboundMessage, StatusReport
from inbox.live import publish_on_commit
from inbox.models import AuditLog, Contact, Conversation, Message
from inbox.services import STATUS_RANK, StatusOutcome, conversation_take_inbound, inbound_message, message_version

# (channel, endpoint_id, channel_user_id)
ContactKey = tuple[str, str, str]


def update_rows(model: type[Model], fields: list[str], objects: list[Model]) -> None:
    """UPDATE `fields` of each object by primary key: one statement with many parameter sets.

    Not `bulk_update`: its CASE WHEN per object and field costs Django and the database time quadratic in
    the batch (8 s for 2,000 conversations in a profile); psycopg pipelines `executemany` in one round trip.
    """
    if not objects:
        return
    quote = connection.ops.quote_name
    columns = [model._meta.get_field(name) for name in fields]
    assignments = ", ".join(f"{quote(column.column)} = %s" for column in columns)
    table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
    sql = f"UPDATE {table} SET {assignments} WHERE {pk} = %s"  # noqa: S608 - identifiers from the model, quoted
    rows = [
        [column.get_db_prep_save(getattr(obj, column.attname), connection) for column in columns] + [obj.pk]
        for obj in objects
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _contacts(events: list[InboundMessage]) -> dict[ContactKey, int]:
    """Contact ids by key, creating the missing ones (a concurrent batch creating the same is harmless)."""
    first_seen: dict[ContactKey, datetime] = {}
    for event in events:
        key = (event.channel, event.endpoint_id, event.channel_user_id)
        first_seen.setdefault(key, event.sent_at)  # as message_receive: the time of the first event that arrived
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


def _conversations(pairs: dict[tuple[int, int], InboundMessage]) -> tuple[dict[tuple[int, int], Conversation], set]:
    """The conversations of (inbox_id, contact_id) pairs, locked in id order, opening the missing ones.

    `pairs` maps each pair to its first event (the defaults of a new conversation). Returns the
    conversations by pair and the pairs whose conversation this batch opened.
    """

    def lock(wanted) -> dict[tuple[int, int], Conversation]:
        inbox_ids = {inbox_id for inbox_id, _ in wanted}
        contact_ids = {contact_id for _, contact_id in wanted}
        rows = (
            Conversation.objects.select_for_update()
            .filter(inbox_id__in=inbox_ids, contact_id__in=contact_ids)
            .order_by("pk")
        )
        return {(c.inbox_id, c.contact_id): c for c in rows if (c.inbox_id, c.contact_id) in wanted}

    found = lock(set(pairs))
    missing = sorted(pair for pair in pairs if pair not in found)
    if missing:
        Conversation.objects.bulk_create(
            [
                Conversation(
                    inbox_id=inbox_id,
                    contact_id=contact_id,
                    last_activity_at=pairs[(inbox_id, contact_id)].sent_at,
                    provider_conversation_id=pairs[(inbox_id, contact_id)].provider_conversation_id,
                )
                for inbox_id, contact_id in missing
            ],
            ignore_conflicts=True,
        )
        found.update(lock(set(missing)))
    return found, set(missing)


def messages_receive(items: list[tuple[int, InboundMessage]]) -> list[bool]:
    """Store inbound messages once each; returns per item whether it was stored (False: seen before).

    `items` are (inbox_id, event). Like `message_receive`: upserts contacts, opens or reopens the
    conversations, moves their last inbound time (the reply window) and version, and publishes
    `conversation.created` / `message.created` once the transaction commits.
    """
    if not items:
        return []
    contact_ids = _contacts([event for _, event in items])
    pairs: dict[tuple[int, int], InboundMessage] = {}
    for inbox_id, event in items:
        pairs.setdefault((inbox_id, contact_ids[(event.channel, event.endpoint_id, event.channel_user_id)]), event)
    conversations, opened = _conversations(pairs)

    # Decided under the conversations' locks: a concurrent batch with the same events has committed or waits.
    by_channel: dict[str, list[str]] = defaultdict(list)
    for _, event in items:
        by_channel[event.channel].append(event.provider_message_id)
    stored = {
        (channel, provider_id)
        for channel, ids in by_channel.items()
        for provider_id in Message.objects.filter(channel=channel, provider_message_id__in=ids).values_list(
            "provider_message_id", flat=True
        )
    }

    created = [False] * len(items)
    new: list[tuple[int, Conversation, InboundMessage, Message]] = []
    for index, (inbox_id, event) in enumerate(items):
        if (event.channel, event.provider_message_id) in stored:
            continue
        stored.add((event.channel, event.provider_message_id))  # a repeat inside the batch is a duplicate too
        contact_id = contact_ids[(event.channel, event.endpoint_id, event.channel_user_id)]
        conversation = conversations[(inbox_id, contact_id)]
        message = inbound_message(conversation, event)
        new.append((index, conversation, event, message))
        created[index] = True
    if not new:
        return created
    Message.objects.bulk_create([message for *_, message in new])

    now = timezone.now()
    to_announce = {conversations[pair].pk for pair in opened}
    touched: dict[int, Conversation] = {}
    last_seen: dict[int, datetime] = {}
    audits: list[AuditLog] = []
    for _, conversation, event, message in new:
        touched[conversation.pk] = conversation
        if "status" in conversation_take_inbound(conversation, event):  # reopened
            audits.append(
                AuditLog(
                    actor_kind=AuditLog.ActorKind.PROVIDER,
                    action="conversation.reopened",
                    conversation=conversation,
                    message=message,
                    before={"status": Conversation.Status.RESOLVED},
                    after={"status": Conversation.Status.OPEN},
                )
            )
        conversation.version += 1
        conversation.updated_at = now
        if conversation.pk in to_announce:
            to_announce.discard(conversation.pk)
            publish_on_commit(inbox_id=conversation.inbox_id, event=live.conversation_created(conversation.pk))
        publish_on_commit(
            inbox_id=conversation.inbox_id,
            event=live.message_created(
                conversation_id=conversation.pk,
                message_id=message.pk,
                direction=message.direction,
                version=conversation.version,
            ),
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
    return created


AT_FIELDS = {status: f"{status}_at" for status in STATUS_RANK if status != Message.Status.QUEUED}


def message_statuses_apply(reports: list[StatusReport]) -> list[str]:
    """Apply status reports in order; returns per report a `StatusOutcome` (applied, stale or unknown).

    Like `message_status_apply`: a status only moves up the ladder; a report for a status already passed
    still records when that state was reached (except failure); each move is audited and published.
    The messages' rows are locked (not their conversations'), so the moves are decided on current values.
    """
    if not reports:
        return []
    by_channel: dict[str, set[str]] = defaultdict(set)
    for report in reports:
        by_channel[report.channel].add(report.provider_message_id)
    rows: dict[tuple[str, str], Message] = {}
    for channel, ids in by_channel.items():
        locked = (
            Message.objects.select_for_update(of=("self",))
            .filter(channel=channel, provider_message_id__in=ids, direction=Message.Direction.OUT)
            .annotate(inbox_id=F("conversation__inbox_id"))
            .only("pk", "conversation_id", "attempt", "status", "provider_status", "error", *AT_FIELDS.values())
            .order_by("pk")
        )
        rows.update({(channel, m.provider_message_id): m for m in locked})

    outcomes: list[str] = []
    changed: dict[int, Message] = {}
    fields: set[str] = set()
    audits: list[AuditLog] = []
    for report in reports:
        message = rows.get((report.channel, report.provider_message_id))
        if message is None:
            outcomes.append(StatusOutcome.UNKNOWN)
            continue
        new, at_field = report.status, AT_FIELDS[report.status]
        if STATUS_RANK[message.status] >= STATUS_RANK[new]:
            if new != Message.Status.FAILED and getattr(message, at_field) is None:
                setattr(message, at_field, report.at)
                changed[message.pk] = message
                fields.add(at_field)
            outcomes.append(StatusOutcome.STALE)
            continue
        before = message.status
        message.status = new
        setattr(message, at_field, report.at)
        fields.update(("status", at_field))
        if report.provider_status:
            message.provider_status = report.provider_status
            fields.add("provider_status")
        if new == Message.Status.FAILED:
            message.error = report.error
            fields.add("error")
        changed[message.pk] = message
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
        publish_on_commit(
            inbox_id=message.inbox_id,
            event=live.message_status(
                conversation_id=message.conversation_id,
                message_id=message.pk,
                status=new,
                at=report.at,
                version=message_version(message.attempt, new),
            ),
        )
        outcomes.append(StatusOutcome.APPLIED)
    if changed:
        update_rows(Message, sorted(fields), sorted(changed.values(), key=lambda m: m.pk))
    if audits:
        AuditLog.objects.bulk_create(audits)
    return outcomes
