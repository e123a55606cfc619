"""Writes of the contact center. Views, serializers, consumers and tasks call these, never .save()."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from decimal import Decimal
from functools import partial
from urllib.parse import urlsplit
from uuid import uuid4

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from inbox import channels, live
from inbox.errors import ApplicationError
from inbox.events import InboundMessage, StatusReport
from inbox.live import publish_on_commit
from inbox.models import AuditLog, Contact, Conversation, Conversion, Inbox, Message
from inbox.selectors import quota_replies

logger = logging.getLogger(__name__)

# Delivery status only moves up this ladder. `failed` sits below `delivered`: evidence that the
# user got the message beats a failure report, whatever order the reports arrive in.
STATUS_RANK = {
    Message.Status.QUEUED: 0,
    Message.Status.ACCEPTED: 1,
    Message.Status.FAILED: 2,
    Message.Status.DELIVERED: 3,
    Message.Status.SEEN: 4,
}


def message_version(attempt: int, status: str) -> int:
    """Order of a message's live updates: later attempts above earlier ones, then up the status ladder."""
    return attempt * 10 + STATUS_RANK[status]


def inbox_get_or_create(*, name: str) -> Inbox:
    with transaction.atomic():
        inbox, _ = Inbox.objects.get_or_create(name=name)
    return inbox


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
    if conversation.status == Conversation.Status.RESOLVED:
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


# --- Replies (outbound) -------------------------------------------------------------------------

REPLY_TEXT_MAX_CHARS = 6000
MEDIA_URL_MAX_CHARS = 2048
MEDIA_URL_EXTENSIONS = (".jpg", ".jpeg", ".png")
POST_ID_MAX_CHARS = 200
CALLBACK_DATA_MAX_CHARS = 4000
REPLY_TYPES = (Message.Type.TEXT, Message.Type.IMAGE, Message.Type.SHARE_POST)


def new_provider_message_id() -> str:
    """Our id for one send attempt: sent as the provider's message id, so its reports point at our row
    and a repeated send of the same attempt is refused by the provider as a duplicate."""
    return str(uuid4())


def _invalid(code: str, message: str, field: str) -> ApplicationError:
    return ApplicationError(code, message, fields={field: [message]}, status=422)


def _reply_content_check(*, type: str, text: str, media_url: str, post_id: str, callback_data: str) -> None:
    if type not in REPLY_TYPES:
        raise _invalid("invalid_type", f"a reply is one of {', '.join(REPLY_TYPES)}", "type")
    if type == Message.Type.TEXT:
        if not text.strip():
            raise _invalid("text_required", "a text reply needs text", "text")
        if len(text) > REPLY_TEXT_MAX_CHARS:
            raise _invalid("text_too_long", f"text is longer than {REPLY_TEXT_MAX_CHARS} characters", "text")
    elif text:
        raise _invalid("text_not_allowed", "an image or shared post carries no text: send the text on its own", "text")
    if type == Message.Type.IMAGE:
        parts = urlsplit(media_url)
        if (
            parts.scheme not in ("http", "https")
            or not parts.netloc
            or len(media_url) > MEDIA_URL_MAX_CHARS
            or not parts.path.lower().endswith(MEDIA_URL_EXTENSIONS)
        ):
            raise _invalid(
                "invalid_media_url",
                f"the image must be an http(s) URL of a JPG or PNG file, at most {MEDIA_URL_MAX_CHARS} characters",
                "media_url",
            )
    if type == Message.Type.SHARE_POST:
        if not post_id.strip():
            raise _invalid("post_id_required", "sharing a post needs the post's id", "post_id")
        if len(post_id) > POST_ID_MAX_CHARS:
            raise _invalid("invalid_post_id", f"a post id is at most {POST_ID_MAX_CHARS} characters", "post_id")
    if len(callback_data) > CALLBACK_DATA_MAX_CHARS:
        raise _invalid(
            "callback_data_too_long",
            f"callback data is longer than {CALLBACK_DATA_MAX_CHARS} characters",
            "callback_data",
        )


def _reply_window_open_check(conversation: Conversation, *, now: datetime) -> None:
    """Refuse (409) unless the user wrote first and the reply window is open."""
    closes_at = conversation.reply_window_closes_at()
    if closes_at is None:
        raise ApplicationError(
            "no_user_message", "the user has not written yet: a conversation must start with them", status=409
        )
    if now >= closes_at:
        raise ApplicationError(
            "reply_window_closed",
            f"the reply window closed at {closes_at.isoformat()} ({settings.REPLY_WINDOW_HOURS} h after the user's "
            "last message); it opens again when the user writes",
            status=409,
        )


def _reply_window_check(conversation: Conversation, *, now: datetime, exclude_message_id: int | None = None) -> None:
    """Refuse (409) unless the user wrote first, the window is open and the quota is not used up.

    The quota counts this window's outbound messages whose current attempt was queued since the user's
    last message, except failed ones: a reply the provider refused did not reach the user.
    """
    _reply_window_open_check(conversation, now=now)
    used = (
        quota_replies(conversation=conversation, since=conversation.last_inbound_at)
        .exclude(pk=exclude_message_id)
        .count()
    )
    if used >= settings.REPLY_QUOTA_PER_WINDOW:
        raise ApplicationError(
            "reply_quota_used",
            f"{settings.REPLY_QUOTA_PER_WINDOW} replies were already sent since the user's last message; "
            "more are allowed when the user writes again",
            status=409,
        )


def _conversation_lock(conversation_id: int) -> Conversation:
    try:
        return Conversation.objects.select_for_update(of=("self",)).select_related("contact").get(pk=conversation_id)
    except Conversation.DoesNotExist:
        raise ApplicationError("not_found", "no such conversation", status=404) from None


def _conversation_touch(conversation: Conversation, now: datetime) -> None:
    conversation.version += 1  # safe: the caller holds the row lock
    changed = ["version", "updated_at"]
    if now > conversation.last_activity_at:
        conversation.last_activity_at = now
        changed.append("last_activity_at")
    conversation.save(update_fields=changed)


def reply_queue(
    *,
    conversation_id: int,
    author,
    type: str,
    text: str = "",
    media_url: str = "",
    post_id: str = "",
    quoted_message_id: int | None = None,
    callback_data: str = "",
) -> Message:
    """Queue an agent's reply (TEXT, IMAGE or SHARE_POST) and schedule its send once committed.

    Refuses with ApplicationError: 422 for invalid content (checked first, without the database),
    404 for an unknown conversation, 409 when the user never wrote, the reply window is closed or
    the quota is used. The conversation row is locked while counting, so two concurrent replies
    cannot both take the last slot. The row is written `queued` with our id for attempt 1 before any
    task exists; a lost task is recovered by the channel's sweeper.
    """
    _reply_content_check(type=type, text=text, media_url=media_url, post_id=post_id, callback_data=callback_data)
    with transaction.atomic():
        conversation = _conversation_lock(conversation_id)
        now = timezone.now()
        _reply_window_check(conversation, now=now)
        contact = conversation.contact
        if not channels.can_send(contact.channel):
            raise ApplicationError("channel_unavailable", f"cannot send on channel {contact.channel!r}", status=409)

        quoted_provider_message_id = ""
        if quoted_message_id is not None:
            if type != Message.Type.TEXT:
                raise _invalid("invalid_quote", "only a text reply can quote a message", "quoted_message_id")
            quoted = Message.objects.filter(
                pk=quoted_message_id, conversation=conversation, direction=Message.Direction.IN
            ).first()
            if quoted is None or not quoted.provider_message_id:
                raise _invalid(
                    "invalid_quote",
                    "a reply can only quote a message the user sent in this conversation",
                    "quoted_message_id",
                )
            quoted_provider_message_id = quoted.provider_message_id

        message = Message.objects.create(
            conversation=conversation,
            direction=Message.Direction.OUT,
            type=type,
            text=text,
            media_url=media_url if type == Message.Type.IMAGE else "",
            post_id=post_id if type == Message.Type.SHARE_POST else "",
            quoted_provider_message_id=quoted_provider_message_id,
            payload={"callback_data": callback_data} if callback_data else {},
            channel=contact.channel,
            provider_message_id=new_provider_message_id(),
            provider_conversation_id=conversation.provider_conversation_id,
            author=author,
            attempt=1,
            status=Message.Status.QUEUED,
            queued_at=now,
            sent_at=now,
        )
        _conversation_touch(conversation, now)
        AuditLog.objects.create(
            actor=author,
            actor_kind=AuditLog.ActorKind.AGENT,
            action="message.queued",
            conversation=conversation,
            message=message,
            after={"type": type, "attempt": 1, "provider_message_id": message.provider_message_id},
        )
        publish_on_commit(
            inbox_id=conversation.inbox_id,
            event=live.message_created(
                conversation_id=conversation.pk,
                message_id=message.pk,
                direction=message.direction,
                status=message.status,
                version=conversation.version,
            ),
        )
        transaction.on_commit(partial(channels.enqueue_send, message))
    return message


def message_retry(*, message_id: int, author) -> Message:
    """Send a failed outbound message again, as a new attempt with a new provider message id.

    Allowed only while the reply window is open and the quota has room (the failed message did not
    count). Reports for the old attempt's id no longer match this row. Locks the conversation, then
    the message (the order reply_queue uses).
    """
    conversation_id = (
        Message.objects.filter(pk=message_id, direction=Message.Direction.OUT)
        .values_list("conversation_id", flat=True)
        .first()
    )
    if conversation_id is None:
        raise ApplicationError("not_found", "no such outbound message", status=404)
    with transaction.atomic():
        conversation = _conversation_lock(conversation_id)
        message = Message.objects.select_for_update().get(pk=message_id)
        if message.status != Message.Status.FAILED:
            raise ApplicationError(
                "not_failed", f"only a failed message can be retried (this one is {message.status})", status=409
            )
        now = timezone.now()
        _reply_window_check(conversation, now=now, exclude_message_id=message.pk)
        before = {
            "status": message.status,
            "attempt": message.attempt,
            "provider_message_id": message.provider_message_id,
            "error": message.error,
        }
        # A new attempt, not a status report: the forward-only ladder applies within one attempt.
        message.attempt += 1
        message.provider_message_id = new_provider_message_id()
        message.status = Message.Status.QUEUED
        message.queued_at = now
        message.accepted_at = message.delivered_at = message.seen_at = message.failed_at = None
        message.error = {}
        message.provider_status = {}
        message.save(
            update_fields=[
                "attempt",
                "provider_message_id",
                "status",
                "queued_at",
                "accepted_at",
                "delivered_at",
                "seen_at",
                "failed_at",
                "error",
                "provider_status",
            ]
        )
        _conversation_touch(conversation, now)
        AuditLog.objects.create(
            actor=author,
            actor_kind=AuditLog.ActorKind.AGENT,
            action="message.retried",
            conversation=conversation,
            message=message,
            before=before,
            after={
                "status": message.status,
                "attempt": message.attempt,
                "provider_message_id": message.provider_message_id,
            },
        )
        publish_on_commit(
            inbox_id=conversation.inbox_id,
            event={
                "type": "message.retried",
                "conversation_id": conversation.pk,
                "message_id": message.pk,
                "attempt": message.attempt,
                "status": message.status,
                "version": message_version(message.attempt, message.status),
            },
        )
        transaction.on_commit(partial(channels.enqueue_send, message))
    return message


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
    """Agents have read the thread up to now (drives unread counts). Not audited: it changes no state.

    When the user wrote since agents last looked, the channel is asked (on commit, best effort) to tell
    the user their messages were read. The row lock makes two agents opening it at once send one receipt.
    """
    with transaction.atomic():
        conversation = (
            Conversation.objects.select_for_update(of=("self",))
            .select_related("contact")
            .filter(pk=conversation_id)
            .first()
        )
        if conversation is None:
            return
        last_seen = conversation.agent_last_seen_at
        # last_inbound_at is the newest inbound message's time (it only moves forward).
        unread = conversation.last_inbound_at is not None and (
            last_seen is None or conversation.last_inbound_at > last_seen
        )
        Conversation.objects.filter(pk=conversation_id).update(agent_last_seen_at=timezone.now())
        if unread:
            transaction.on_commit(partial(channels.enqueue_event, conversation, channels.EVENT_READ))


TYPING_THROTTLE_SECONDS = 5


def typing_throttle_key(conversation_id: int) -> str:
    return f"inbox:typing:{conversation_id}"


def conversation_typing(*, conversation_id: int, actor) -> bool:
    """An agent is typing: show the user a typing indicator, at most once per TYPING_THROTTLE_SECONDS.

    Refuses (409) when the user never wrote or the reply window is closed. Returns whether an indicator
    was scheduled (False when throttled or the channel has no events). Writes nothing but a cache key:
    the browser calls this on keystrokes, so it must stay cheap.
    """
    conversation = Conversation.objects.select_related("contact").filter(pk=conversation_id).first()
    if conversation is None:
        raise ApplicationError("not_found", "no such conversation", status=404)
    _reply_window_open_check(conversation, now=timezone.now())
    if not channels.can_send_events(conversation.contact.channel):
        return False
    try:
        # cache.add is atomic: of concurrent calls within the throttle period exactly one wins.
        first = cache.add(
            typing_throttle_key(conversation_id), actor.pk if actor else 0, timeout=TYPING_THROTTLE_SECONDS
        )
    except Exception:  # noqa: BLE001 - no cache, no indicator: never an error for the agent
        logger.warning("typing throttle unavailable for conversation %s", conversation_id, exc_info=True)
        return False
    if not first:
        return False
    channels.enqueue_event(conversation, channels.EVENT_TYPING)
    return True


# --- Ads conversions ----------------------------------------------------------------------------

CONVERSION_VALUE_LIMIT = Decimal(10) ** 12  # what the row's DecimalField(max_digits=16, decimal_places=4) holds
CONVERSION_QUANTITY_LIMIT = 1_000_000
CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")
CONVERSION_RANK = {Conversion.Status.QUEUED: 1, Conversion.Status.SENT: 2, Conversion.Status.FAILED: 2}


def _conversion_input_check(*, event: str, value: Decimal | None, currency: str, quantity: int) -> Decimal | None:
    if event not in Conversion.Event.values:
        raise _invalid("invalid_event", f"the event is one of {', '.join(Conversion.Event.values)}", "event")
    if value is not None:
        if not isinstance(value, Decimal):
            value = Decimal(str(value))
        if not value.is_finite() or value < 0 or value >= CONVERSION_VALUE_LIMIT:
            raise _invalid(
                "invalid_value", f"the value is a number from 0 to below {CONVERSION_VALUE_LIMIT:,}", "value"
            )
        value = value.quantize(Decimal("0.0001"))
        if not currency:
            raise _invalid("currency_required", "a value needs its currency (ISO 4217, e.g. EUR)", "currency")
    if currency and not CURRENCY_PATTERN.fullmatch(currency):
        raise _invalid("invalid_currency", "the currency is a three-letter ISO 4217 code, e.g. EUR", "currency")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= CONVERSION_QUANTITY_LIMIT:
        raise _invalid(
            "invalid_quantity", f"the quantity is a whole number from 1 to {CONVERSION_QUANTITY_LIMIT:,}", "quantity"
        )
    return value


def _conversion_published(conversion: Conversion, inbox_id: int) -> None:
    publish_on_commit(
        inbox_id=inbox_id,
        event={
            "type": "conversion.updated",
            "conversation_id": conversion.conversation_id,
            "conversion_id": conversion.pk,
            "status": conversion.status,
            "version": CONVERSION_RANK[conversion.status],
        },
    )


def conversion_report(
    *,
    conversation_id: int,
    author,
    event: str,
    value: Decimal | None = None,
    currency: str = "",
    quantity: int = 1,
) -> Conversion:
    """Record a Direct Messaging Ads conversion (queued) and schedule its report to the channel on commit.

    Refuses with ApplicationError: 422 for invalid input (checked first, without the database: an event
    outside TikTok's standard names, a negative or huge value, a currency that is not three letters, a
    value without currency, a quantity below 1), 404 for an unknown conversation, 409 `not_from_ad` when
    the conversation did not come from an ad. The row exists before any task does.
    """
    currency = (currency or "").strip().upper()
    value = _conversion_input_check(event=event, value=value, currency=currency, quantity=quantity)
    with transaction.atomic():
        conversation = Conversation.objects.select_related("contact").filter(pk=conversation_id).first()
        if conversation is None:
            raise ApplicationError("not_found", "no such conversation", status=404)
        if (conversation.referral or {}).get("source") != "ad":
            raise ApplicationError(
                "not_from_ad", "conversions can only be reported for conversations that came from an ad", status=409
            )
        if not channels.can_report_conversions(conversation.contact.channel):
            raise ApplicationError(
                "channel_unavailable",
                f"channel {conversation.contact.channel!r} cannot report conversions",
                status=409,
            )
        conversion = Conversion.objects.create(
            conversation=conversation,
            event=event,
            value=value,
            currency=currency,
            quantity=quantity,
            author=author,
            status=Conversion.Status.QUEUED,
            occurred_at=timezone.now(),
        )
        AuditLog.objects.create(
            actor=author,
            actor_kind=AuditLog.ActorKind.AGENT,
            action="conversion.queued",
            conversation=conversation,
            after={
                "conversion_id": conversion.pk,
                "event": event,
                "value": None if value is None else str(value),
                "currency": currency,
                "quantity": quantity,
            },
        )
        _conversion_published(conversion, conversation.inbox_id)
        transaction.on_commit(partial(channels.enqueue_conversion, conversion))
    return conversion


def conversion_result_record(
    *, conversion_id: int, sent: bool, tries: int, response: dict | None = None, error: dict | None = None
) -> bool:
    """Record what the provider made of a queued conversion: sent, or failed with its error.

    Only a `queued` row changes (in the UPDATE itself), so a late or repeated task cannot overwrite a
    result. Returns whether the row changed.
    """
    now = timezone.now()
    status = Conversion.Status.SENT if sent else Conversion.Status.FAILED
    fields = {"status": status, "tries": tries, "updated_at": now}
    if sent:
        fields.update(sent_at=now, provider_response=response or {}, error={})
    else:
        fields.update(failed_at=now, error=error or {})
    with transaction.atomic():
        if not Conversion.objects.filter(pk=conversion_id, status=Conversion.Status.QUEUED).update(**fields):
            return False
        conversion = Conversion.objects.select_related("conversation").get(pk=conversion_id)
        AuditLog.objects.create(
            actor_kind=AuditLog.ActorKind.PROVIDER if sent else AuditLog.ActorKind.SYSTEM,
            action=f"conversion.{status}",
            conversation_id=conversion.conversation_id,
            before={"conversion_id": conversion_id, "status": Conversion.Status.QUEUED},
            after={"conversion_id": conversion_id, "status": status, **({"error": error} if error else {})},
        )
        _conversion_published(conversion, conversion.conversation.inbox_id)
    return True
