"""Writes of the contact center. Views, serializers, consumers and tasks call these, never .save()."""

from __future__ import annotations

from django.db import transaction

from inbox.models import Inbox


def inbox_get_or_create(*, name: str) -> Inbox:
    with transaction.atomic():
        inbox, _ = Inbox.objects.get_or_create(name=name)
    return inbox
