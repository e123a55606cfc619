"""First-response SLA per inbox: how long a customer's unanswered message may wait for an agent.

The clock starts at the oldest customer message no agent answered yet and is due `first_response_minutes` later;
an agent's reply (automatic messages do not count) or a resolution stops it. The conversation list shows time
left / overdue and sorts by it (`ordering=sla`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from inbox.automation.models import ConversationSla, InboxRouting


def customer_wrote(*, inbox_id: int, conversation_id: int, sent_at: datetime) -> None:
    minutes = InboxRouting.objects.filter(inbox_id=inbox_id).values_list("first_response_minutes", flat=True).first()
    if not minutes:
        return
    with transaction.atomic():
        sla, _ = ConversationSla.objects.select_for_update().get_or_create(conversation_id=conversation_id)
        if sla.due_at is not None and sla.awaiting_since is not None and sla.awaiting_since <= sent_at:
            return  # an older message is already waiting: its clock runs
        sla.awaiting_since = sent_at
        sla.due_at = sent_at + timedelta(minutes=minutes)
        sla.save(update_fields=["awaiting_since", "due_at"])


def stopped(*, conversation_id: int, answered: bool) -> None:
    """An agent answered (answered=True) or the conversation was resolved: nothing is due any more."""
    changes: dict = {"due_at": None, "awaiting_since": None}
    if answered:
        changes["responded_at"] = timezone.now()
    ConversationSla.objects.filter(conversation_id=conversation_id, due_at__isnull=False).update(**changes)
