"""Reads of the contact center: the querysets views, the API and consumers use."""

from __future__ import annotations

from inbox.models import Inbox


def inbox_ids_visible_to(user) -> list[int]:
    """Admins see every inbox; an agent only the inboxes they are a member of."""
    inboxes = Inbox.objects.all() if user.is_superuser else Inbox.objects.filter(members=user)
    return list(inboxes.values_list("pk", flat=True))
