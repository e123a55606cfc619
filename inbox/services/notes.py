"""Private notes: agents-only messages in a conversation's thread.

A note is a Message row with direction `note` (see README "Private notes"): it sits in the thread's order and
paging for free, and nothing that sends or counts replies can pick it up (the outbox takes `queued` rows, the
quota counts direction `out`; a note has no status and no provider id).
"""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from inbox import domain_events
from inbox.models import AuditLog, Message
from inbox.services.common import conversation_lock, conversation_touch, invalid_input
from inbox.services.replies import NOTE_TEXT_MAX_CHARS

# Django usernames: letters, digits and @ . + - _ ; a trailing dot is punctuation, not part of the name.
MAX_MENTIONS = 20
MENTION = re.compile(r"(?<![\w@])@([\w.@+-]*[\w@+-])")


def mentioned_usernames(text: str) -> list[str]:
    seen: dict[str, None] = {}
    for name in MENTION.findall(text):
        seen.setdefault(name.lower(), None)
    return list(seen)


def note_add(*, conversation_id: int, author, text: str) -> Message:
    """Add a private note; allowed whatever the reply window says, never sent to the contact.

    `@username` of an active member of the conversation's inbox (or an admin) notifies that agent
    (a `note.mentioned` live event to their own browsers); other `@words` are left as text.
    Refuses 422 for empty or overlong text, 404 for an unknown conversation.
    """
    if not text.strip():
        raise invalid_input("text_required", "a note needs text", "text")
    if len(text) > NOTE_TEXT_MAX_CHARS:
        raise invalid_input("text_too_long", f"a note is at most {NOTE_TEXT_MAX_CHARS} characters", "text")
    with transaction.atomic():
        conversation = conversation_lock(conversation_id)
        now = timezone.now()
        names = mentioned_usernames(text)
        mentioned = []
        if names:
            any_name = Q()
            for name in names[:MAX_MENTIONS]:
                any_name |= Q(username__iexact=name)
            candidates = get_user_model().objects.filter(any_name, is_active=True)
            mentioned = [
                user
                for user in candidates
                if user.username.lower() in names
                and user.pk != getattr(author, "pk", None)
                and (user.is_superuser or user.inboxes.filter(pk=conversation.inbox_id).exists())
            ]
        message = Message.objects.create(
            conversation=conversation,
            direction=Message.Direction.NOTE,
            type=Message.Type.TEXT,
            text=text,
            payload={"mentions": sorted(user.pk for user in mentioned)} if mentioned else {},
            channel=conversation.contact.channel,
            author=author,
            sent_at=now,
        )
        conversation_touch(conversation, now, message=message)
        AuditLog.objects.create(
            actor=author,
            actor_kind=AuditLog.ActorKind.AGENT,
            action="note.added",
            conversation=conversation,
            message=message,
            after={"mentions": message.payload.get("mentions", [])},
        )
        domain_events.emit(
            domain_events.NoteAdded(
                inbox_id=conversation.inbox_id,
                conversation_id=conversation.pk,
                message_id=message.pk,
                author_id=getattr(author, "pk", None),
                author_name=(author.get_full_name() or author.get_username()) if author else "Someone",
                mentioned_user_ids=tuple(sorted(user.pk for user in mentioned)),
                conversation_version=conversation.version,
            )
        )
    return message
