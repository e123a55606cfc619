"""A conversation's list row, kept on the conversation: its newest message and its unread count.

The list shows, per conversation, the newest message (preview, type, direction, time) and how many of the
customer's messages agents have not read. Computing them per row on every list request took four correlated
subqueries and a count (bench/README.md); every write that adds a message or marks a thread read goes through
the services, under the conversation's row lock, so they keep these columns instead:

- `conversation_message_added` — the one rule, for every service that stores a message (inbound batches,
  replies, notes), on the locked conversation instance; the caller saves the fields it returns;
- `conversations_summary_rebuild` — the same columns recomputed from the raw rows (the data migration's rule,
  and the bench's bulk data); `tests/inbox/test_list_summary.py` compares the two after every kind of write.
"""

from __future__ import annotations

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Substr

from inbox.models import Conversation, Message

PREVIEW_CHARS = 200
LAST_MESSAGE_FIELDS = [
    "last_message_id",
    "last_message_at",
    "last_message_direction",
    "last_message_type",
    "last_message_preview",
]
SUMMARY_FIELDS = [*LAST_MESSAGE_FIELDS, "unread_count"]


def is_unread(conversation: Conversation, message: Message) -> bool:
    """The customer's message sent after agents last looked at the thread (or they never did)."""
    return message.direction == Message.Direction.IN and (
        conversation.agent_last_seen_at is None or message.sent_at > conversation.agent_last_seen_at
    )


def conversation_message_added(conversation: Conversation, message: Message) -> list[str]:
    """Take a stored message (with its id) into the locked conversation's list row; returns the changed fields.

    Newest by (sent_at, id), whatever order messages arrive in: an event delivered late does not replace a newer
    preview, and a redelivered event must not be passed here (it is not new)."""
    changed = []
    if is_unread(conversation, message):
        conversation.unread_count += 1
        changed.append("unread_count")
    if conversation.last_message_id is None or (message.sent_at, message.pk) > (
        conversation.last_message_at,
        conversation.last_message_id,
    ):
        conversation.last_message_id = message.pk
        conversation.last_message_at = message.sent_at
        conversation.last_message_direction = message.direction
        conversation.last_message_type = message.type
        conversation.last_message_preview = (message.text or "")[:PREVIEW_CHARS]
        changed.extend(LAST_MESSAGE_FIELDS)
    return changed


def unread_since_seen() -> Subquery:
    """SQL: how many inbound messages of the outer conversation were sent after its `agent_last_seen_at`."""
    unread = (
        Message.objects.filter(conversation=OuterRef("pk"), direction=Message.Direction.IN)
        .filter(Q(sent_at__gt=OuterRef("agent_last_seen_at")) | Q(conversation__agent_last_seen_at__isnull=True))
        .order_by()
        .values("conversation")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(unread, output_field=IntegerField()), Value(0))


def conversations_summary_rebuild(conversations: QuerySet[Conversation] | None = None) -> int:
    """Recompute the list-row columns of `conversations` (default: all) from their messages, in one UPDATE.

    For bulk-loaded rows and repairs; the services keep the columns current without it. Returns the row count."""
    qs = Conversation.objects.all() if conversations is None else conversations
    latest = Message.objects.filter(conversation=OuterRef("pk")).order_by("-sent_at", "-id")
    return qs.update(
        last_message_id=Subquery(latest.values("pk")[:1]),
        last_message_at=Subquery(latest.values("sent_at")[:1]),
        last_message_direction=Coalesce(Subquery(latest.values("direction")[:1]), Value("")),
        last_message_type=Coalesce(Subquery(latest.values("type")[:1]), Value("")),
        last_message_preview=Coalesce(
            Subquery(latest.annotate(preview=Substr("text", 1, PREVIEW_CHARS)).values("preview")[:1]), Value("")
        ),
        unread_count=unread_since_seen(),
    )
