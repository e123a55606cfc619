"""Agents' replies: content and reply-window checks, queueing, retrying."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from functools import partial
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from inbox import domain_events, outbox, providers
from inbox.errors import ApplicationError
from inbox.models import AuditLog, Conversation, Message, reply_window_closes_at
from inbox.selectors import quota_replies
from inbox.services.common import (
    conversation_lock,
    conversation_touch,
    invalid_input,
    new_provider_message_id,
)
from inbox.uploads import MAX_IMAGE_BYTES

logger = logging.getLogger(__name__)

# --- Replies (outbound) -------------------------------------------------------------------------

REPLY_TEXT_MAX_CHARS = 6000
MEDIA_URL_MAX_CHARS = 2048
MEDIA_URL_EXTENSIONS = (".jpg", ".jpeg", ".png")
POST_ID_MAX_CHARS = 200
CALLBACK_DATA_MAX_CHARS = 4000
IDEMPOTENCY_KEY_MAX_CHARS = 200
NOTE_TEXT_MAX_CHARS = 10000
REPLY_TYPES = (Message.Type.TEXT, Message.Type.IMAGE, Message.Type.SHARE_POST)


def reply_content_check(*, type: str, text: str, media_url: str, post_id: str, callback_data: str) -> None:
    if type not in REPLY_TYPES:
        raise invalid_input("invalid_type", f"a reply is one of {', '.join(REPLY_TYPES)}", "type")
    if type == Message.Type.TEXT:
        if not text.strip():
            raise invalid_input("text_required", "a text reply needs text", "text")
        if len(text) > REPLY_TEXT_MAX_CHARS:
            raise invalid_input("text_too_long", f"text is longer than {REPLY_TEXT_MAX_CHARS} characters", "text")
    elif text:
        raise invalid_input(
            "text_not_allowed", "an image or shared post carries no text: send the text on its own", "text"
        )
    if type == Message.Type.IMAGE:
        parts = urlsplit(media_url)
        if (
            parts.scheme not in ("http", "https")
            or not parts.netloc
            or len(media_url) > MEDIA_URL_MAX_CHARS
            or not parts.path.lower().endswith(MEDIA_URL_EXTENSIONS)
        ):
            raise invalid_input(
                "invalid_media_url",
                f"the image must be an http(s) URL of a JPG or PNG file, at most {MEDIA_URL_MAX_CHARS} characters",
                "media_url",
            )
    if type == Message.Type.SHARE_POST:
        if not post_id.strip():
            raise invalid_input("post_id_required", "sharing a post needs the post's id", "post_id")
        if len(post_id) > POST_ID_MAX_CHARS:
            raise invalid_input("invalid_post_id", f"a post id is at most {POST_ID_MAX_CHARS} characters", "post_id")
    if len(callback_data) > CALLBACK_DATA_MAX_CHARS:
        raise invalid_input(
            "callback_data_too_long",
            f"callback data is longer than {CALLBACK_DATA_MAX_CHARS} characters",
            "callback_data",
        )


def reply_window_closed_error(closes_at: datetime) -> ApplicationError:
    return ApplicationError(
        "reply_window_closed",
        f"The {settings.REPLY_WINDOW_HOURS}-hour reply window closed at {closes_at:%H:%M} UTC on "
        f"{closes_at:%d %b %Y}. You can reply again when the customer writes.",
        status=409,
    )


def reply_blocked(conversation: Conversation, *, now: datetime, used: int | None) -> ApplicationError | None:
    """Why an agent cannot reply now (the 409 a reply would get), or None: `reply_blocked_for` of the model."""
    return reply_blocked_for(
        providers.ConversationFacts.of(conversation), last_inbound_at=conversation.last_inbound_at, now=now, used=used
    )


def reply_blocked_for(
    facts: providers.ConversationFacts, *, last_inbound_at: datetime | None, now: datetime, used: int | None
) -> ApplicationError | None:
    """Why an agent cannot reply now (the 409 a reply would get), or None. The one place of these rules, on plain
    values: `reply_queue` raises it, the API shows it as the composer's lock reason (a list row from `.values()`).
    `used` None skips the quota. The connection first: when it cannot send (e.g. waiting for re-authorization),
    nothing else matters."""
    blocked = connection_blocked_for(facts)
    if blocked is not None:
        return blocked
    backend = providers.for_conversation(facts)
    if backend is not None and not backend.capabilities_for(facts).user_initiated:
        return None  # e.g. a comment thread: public replies have no window or quota
    closes_at = reply_window_closes_at(kind=facts.kind, last_inbound_at=last_inbound_at)
    if closes_at is None:
        return ApplicationError(
            "no_user_message",
            "The customer has not written yet: on TikTok a conversation starts with them.",
            status=409,
        )
    if now >= closes_at:
        return reply_window_closed_error(closes_at)
    if used is not None and used >= settings.REPLY_QUOTA_PER_WINDOW:
        return ApplicationError(
            "reply_quota_used",
            f"All {settings.REPLY_QUOTA_PER_WINDOW} replies of this window are used. "
            "You can reply again when the customer writes.",
            status=409,
        )
    return None


def connection_blocked(conversation: Conversation) -> ApplicationError | None:
    """The 409 of a conversation whose connection cannot send now (its backend says why), or None."""
    return connection_blocked_for(providers.ConversationFacts.of(conversation))


def connection_blocked_for(facts: providers.ConversationFacts) -> ApplicationError | None:
    backend = providers.for_conversation(facts)
    blocked = backend.send_blocked(facts) if backend is not None else None
    if blocked is None:
        return None
    code, message = blocked
    return ApplicationError(code, message, status=409)


def reply_window_open_check(conversation: Conversation, *, now: datetime) -> None:
    """Refuse (409) unless the user wrote first and the reply window is open."""
    blocked = reply_blocked(conversation, now=now, used=None)
    if blocked is not None:
        raise blocked


def reply_window_check(conversation: Conversation, *, now: datetime, exclude_message_id: int | None = None) -> None:
    """Refuse (409) unless the user wrote first, the window is open and the quota is not used up.

    The quota counts this window's outbound messages whose current attempt was queued since the user's
    last message, except failed ones: a reply the provider refused did not reach the user.
    """
    reply_window_open_check(conversation, now=now)
    used = (
        quota_replies(conversation=conversation, since=conversation.last_inbound_at)
        .exclude(pk=exclude_message_id)
        .count()
    )
    blocked = reply_blocked(conversation, now=now, used=used)
    if blocked is not None:
        raise blocked


def reply_limits() -> dict:
    """What a composer must know before sending (served by the API, so the browser hard-codes none)."""
    return {
        "reply_text_max_chars": REPLY_TEXT_MAX_CHARS,
        "note_text_max_chars": NOTE_TEXT_MAX_CHARS,
        "image_max_bytes": MAX_IMAGE_BYTES,
        "image_types": ["image/jpeg", "image/png"],
        "post_id_max_chars": POST_ID_MAX_CHARS,
        "reply_window_hours": settings.REPLY_WINDOW_HOURS,
        "reply_quota_per_window": settings.REPLY_QUOTA_PER_WINDOW,
    }


def reply_backend(conversation: Conversation) -> providers.Backend:
    """The backend that sends this conversation's replies; 409 when its provider is not installed."""
    backend = providers.for_conversation(conversation)
    if backend is None:
        raise ApplicationError(
            "channel_unavailable",
            f"cannot send: the provider of this conversation ({conversation.provider or 'none'}) is not installed",
            status=409,
        )
    return backend


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
    idempotency_key: str = "",
    media_store: Callable[[], None] | None = None,
    reopens: bool = True,
) -> Message:
    """Queue an agent's reply (TEXT, IMAGE or SHARE_POST) and schedule its send once committed.

    Refuses with ApplicationError: 422 for invalid content (checked first, without the database),
    404 for an unknown conversation, 409 when the user never wrote, the reply window is closed or
    the quota is used. The conversation row is locked while counting, so two concurrent replies
    cannot both take the last slot. The row is written `queued` with our id for attempt 1 before any
    task exists; a lost task is recovered by the outbox's sweeper.

    With an `idempotency_key`, the same key again (same author, same conversation) returns the reply
    the first call created and creates nothing, whatever the window or quota says by then. The row lock
    serializes such calls; the unique constraint on the key stops any that slip past it.

    `media_store` (an uploaded image behind `media_url`) is called once every check passed, just before the row
    is written, so a refused reply writes no file; the caller discards it if the transaction fails after all.

    A reply reopens a resolved conversation, except with `reopens=False` (automatic messages such as the CSAT
    question, inbox/automation/).
    """
    if len(idempotency_key) > IDEMPOTENCY_KEY_MAX_CHARS:
        raise invalid_input(
            "invalid_idempotency_key",
            f"an Idempotency-Key is at most {IDEMPOTENCY_KEY_MAX_CHARS} characters",
            "idempotency_key",
        )
    reply_content_check(type=type, text=text, media_url=media_url, post_id=post_id, callback_data=callback_data)
    try:
        return _reply_queue(
            conversation_id=conversation_id,
            author=author,
            type=type,
            text=text,
            media_url=media_url,
            post_id=post_id,
            quoted_message_id=quoted_message_id,
            callback_data=callback_data,
            idempotency_key=idempotency_key or None,
            media_store=media_store,
            reopens=reopens,
        )
    except IntegrityError:
        existing = _reply_with_key(conversation_id, author, idempotency_key)
        if existing is None:
            raise
        return existing


def _reply_with_key(conversation_id: int, author, idempotency_key: str | None) -> Message | None:
    if not idempotency_key:
        return None
    return Message.objects.filter(
        conversation_id=conversation_id, author=author, idempotency_key=idempotency_key
    ).first()


def _reply_queue(
    *,
    conversation_id: int,
    author,
    type: str,
    text: str,
    media_url: str,
    post_id: str,
    quoted_message_id: int | None,
    callback_data: str,
    idempotency_key: str | None,
    media_store: Callable[[], None] | None = None,
    reopens: bool = True,
) -> Message:
    with transaction.atomic():
        conversation = conversation_lock(conversation_id)
        existing = _reply_with_key(conversation_id, author, idempotency_key)
        if existing is not None:
            return existing
        now = timezone.now()
        capabilities = reply_backend(conversation).capabilities_for(providers.ConversationFacts.of(conversation))
        if capabilities.user_initiated:
            reply_window_check(conversation, now=now)
        elif (blocked := connection_blocked(conversation)) is not None:
            raise blocked
        contact = conversation.contact
        if type not in capabilities.content_types:
            raise invalid_input("invalid_type", f"this conversation's provider cannot send {type} messages", "type")
        if type == Message.Type.TEXT and len(text) > capabilities.max_text_chars:
            raise invalid_input(
                "text_too_long",
                f"a reply in this conversation is at most {capabilities.max_text_chars} characters",
                "text",
            )

        quoted_provider_message_id = ""
        if quoted_message_id is not None:
            if type != Message.Type.TEXT:
                raise invalid_input("invalid_quote", "only a text reply can quote a message", "quoted_message_id")
            if not capabilities.quoting:
                raise invalid_input(
                    "invalid_quote", "this conversation's provider cannot quote messages", "quoted_message_id"
                )
            quoted = Message.objects.filter(
                pk=quoted_message_id, conversation=conversation, direction=Message.Direction.IN
            ).first()
            if quoted is None or not quoted.provider_message_id:
                raise invalid_input(
                    "invalid_quote",
                    "a reply can only quote a message the user sent in this conversation",
                    "quoted_message_id",
                )
            quoted_provider_message_id = quoted.provider_message_id

        if media_store is not None and type == Message.Type.IMAGE:
            media_store()
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
            idempotency_key=idempotency_key,
            attempt=1,
            status=Message.Status.QUEUED,
            queued_at=now,
            sent_at=now,
        )
        if reopens and conversation.status == Conversation.Status.RESOLVED:
            # Writing to the customer again means the conversation is not done.
            conversation.status = Conversation.Status.OPEN
            conversation.save(update_fields=["status"])
            AuditLog.objects.create(
                actor=author,
                actor_kind=AuditLog.ActorKind.AGENT,
                action="conversation.open",
                conversation=conversation,
                before={"status": Conversation.Status.RESOLVED},
                after={"status": Conversation.Status.OPEN},
            )
        conversation_touch(conversation, now, message=message)
        AuditLog.objects.create(
            actor=author,
            actor_kind=AuditLog.ActorKind.AGENT,
            action="message.queued",
            conversation=conversation,
            message=message,
            after={"type": type, "attempt": 1, "provider_message_id": message.provider_message_id},
        )
        domain_events.emit(
            domain_events.MessageQueued(
                inbox_id=conversation.inbox_id,
                conversation_id=conversation.pk,
                message_id=message.pk,
                author_id=getattr(author, "pk", None),
                conversation_version=conversation.version,
            )
        )
        transaction.on_commit(partial(outbox.enqueue_send, message))
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
        conversation = conversation_lock(conversation_id)
        message = Message.objects.select_for_update().get(pk=message_id)
        if message.status != Message.Status.FAILED:
            raise ApplicationError(
                "not_failed", f"only a failed message can be retried (this one is {message.status})", status=409
            )
        now = timezone.now()
        facts = providers.ConversationFacts.of(conversation)
        if reply_backend(conversation).capabilities_for(facts).user_initiated:
            reply_window_check(conversation, now=now, exclude_message_id=message.pk)
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
        conversation_touch(conversation, now)
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
        domain_events.emit(
            domain_events.MessageRetried(
                inbox_id=conversation.inbox_id,
                conversation_id=conversation.pk,
                message_id=message.pk,
                attempt=message.attempt,
                author_id=getattr(author, "pk", None),
            )
        )
        transaction.on_commit(partial(outbox.enqueue_send, message))
    return message
