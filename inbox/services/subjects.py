"""What a comment conversation is about (the post: cover, caption, link), cached on the conversation."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from inbox import domain_events
from inbox.models import Conversation

SUBJECT_KEYS_MAX = 20


def conversation_subjects_update(*, channel: str, endpoint_id: str, subjects: dict[str, dict]) -> int:
    """Merge what the provider says about posts (`subjects`: post id → {cover_url, caption, url, ...}) into the
    comment conversations of this connection about them; only real changes are written (a new version, and a
    `conversation.subject_changed` event so open pages refetch). Returns how many conversations changed."""
    if not subjects:
        return 0
    changed = 0
    with transaction.atomic():
        rows = (
            Conversation.objects.select_for_update(of=("self",))
            .filter(
                kind=Conversation.Kind.COMMENT,
                contact__channel=channel,
                contact__endpoint_id=endpoint_id,
                subject_id__in=list(subjects),
            )
            .order_by("pk")
        )
        events = []
        now = timezone.now()
        for conversation in rows:
            merged = {**(conversation.subject or {}), **subjects[conversation.subject_id]}
            merged = dict(list(merged.items())[:SUBJECT_KEYS_MAX])
            if merged == conversation.subject:
                continue
            conversation.subject = merged
            conversation.version += 1
            conversation.updated_at = now
            conversation.save(update_fields=["subject", "version", "updated_at"])
            events.append(
                domain_events.ConversationSubjectChanged(
                    inbox_id=conversation.inbox_id,
                    conversation_id=conversation.pk,
                    status=conversation.status,
                    priority=conversation.priority,
                    assignee_id=conversation.assignee_id,
                    version=conversation.version,
                    actor_id=None,
                )
            )
            changed += 1
        domain_events.emit(*events)
    return changed
