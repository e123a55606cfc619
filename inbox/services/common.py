"""What several services share: the status ladder, row locks, audit values, input errors."""

from __future__ import annotations

import logging
from datetime import datetime
from uuid import uuid4

from django.db import transaction

from inbox.errors import ApplicationError
from inbox.models import Conversation, Inbox, Message
from inbox.services.summary import conversation_message_added

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


class StatusOutcome:
    APPLIED = "applied"
    STALE = "stale"  # the message is already at this status or further
    UNKNOWN = "unknown"  # no such outbound message (yet)


def new_provider_message_id() -> str:
    """Our id for one send attempt: sent as the provider's message id, so its reports point at our row
    and a repeated send of the same attempt is refused by the provider as a duplicate."""
    return str(uuid4())


def invalid_input(code: str, message: str, field: str) -> ApplicationError:
    return ApplicationError(code, message, fields={field: [message]}, status=422)


def conversation_lock(conversation_id: int) -> Conversation:
    try:
        return Conversation.objects.select_for_update(of=("self",)).select_related("contact").get(pk=conversation_id)
    except Conversation.DoesNotExist:
        raise ApplicationError("not_found", "no such conversation", status=404) from None


def conversation_touch(conversation: Conversation, now: datetime, *, message: Message | None = None) -> None:
    """Bump the locked conversation's version and activity; with `message` (just stored), its list row too."""
    conversation.version += 1  # safe: the caller holds the row lock
    changed = ["version", "updated_at"]
    if message is not None:
        changed += conversation_message_added(conversation, message)
    if now > conversation.last_activity_at:
        conversation.last_activity_at = now
        changed.append("last_activity_at")
    conversation.save(update_fields=changed)


def audit_value(value):
    return getattr(value, "pk", value)
