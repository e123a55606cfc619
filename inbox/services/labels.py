"""Labels: each inbox's catalogue (name, colour) and the labels on a conversation."""

from __future__ import annotations

import re

from django.db import IntegrityError, transaction

from inbox import domain_events
from inbox.errors import ApplicationError
from inbox.models import AuditLog, Conversation, Label
from inbox.services.common import conversation_lock, invalid_input

COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
LABEL_NAME_MAX_CHARS = 50
LABELS_PER_CONVERSATION_MAX = 20


def _clean(name: str, color: str) -> tuple[str, str]:
    name = " ".join(name.split())
    if not name or len(name) > LABEL_NAME_MAX_CHARS:
        raise invalid_input("invalid_name", f"a label's name is 1 to {LABEL_NAME_MAX_CHARS} characters", "name")
    if not COLOR.match(color):
        raise invalid_input("invalid_color", "a colour is #rrggbb", "color")
    return name, color.lower()


def label_create(*, inbox_id: int, name: str, color: str, actor) -> Label:
    """Add a label to an inbox's catalogue; 409 `label_exists` when the name (any case) is taken."""
    name, color = _clean(name, color)
    try:
        with transaction.atomic():
            label = Label.objects.create(inbox_id=inbox_id, name=name, color=color)
            domain_events.emit(domain_events.LabelsChanged(inbox_id=inbox_id))
    except IntegrityError:
        raise ApplicationError("label_exists", f"the inbox already has a label {name!r}", status=409) from None
    return label


def label_update(*, label_id: int, name: str, color: str, actor) -> Label:
    name, color = _clean(name, color)
    try:
        with transaction.atomic():
            label = Label.objects.select_for_update().get(pk=label_id)
            label.name, label.color = name, color
            label.save(update_fields=["name", "color"])
            domain_events.emit(domain_events.LabelsChanged(inbox_id=label.inbox_id))
    except IntegrityError:
        raise ApplicationError("label_exists", f"the inbox already has a label {name!r}", status=409) from None
    return label


def label_delete(*, label_id: int, actor) -> None:
    """Remove a label from the catalogue and from every conversation that had it."""
    with transaction.atomic():
        label = Label.objects.select_for_update().get(pk=label_id)
        inbox_id = label.inbox_id
        label.delete()
        domain_events.emit(domain_events.LabelsChanged(inbox_id=inbox_id))


def conversation_set_labels(*, conversation_id: int, names: list[str], actor) -> Conversation:
    """Make the conversation's labels exactly `names` (its inbox's labels, any case); 422 for an unknown name.

    Audited with the names before and after; pushed as `conversation.updated` with the new version.
    """
    wanted = list(dict.fromkeys(" ".join(name.split()) for name in names))
    if len(wanted) > LABELS_PER_CONVERSATION_MAX:
        raise invalid_input("too_many_labels", f"at most {LABELS_PER_CONVERSATION_MAX} labels", "labels")
    with transaction.atomic():
        conversation = conversation_lock(conversation_id)
        catalogue = {label.name.lower(): label for label in Label.objects.filter(inbox_id=conversation.inbox_id)}
        unknown = [name for name in wanted if name.lower() not in catalogue]
        if unknown:
            raise invalid_input("unknown_label", f"this inbox has no label {unknown[0]!r}", "labels")
        labels = [catalogue[name.lower()] for name in wanted]
        before = sorted(conversation.labels.values_list("name", flat=True))
        after = sorted(label.name for label in labels)
        if before == after:
            return conversation
        conversation.labels.set(labels)
        conversation.version += 1
        conversation.save(update_fields=["version", "updated_at"])
        AuditLog.objects.create(
            actor=actor,
            actor_kind=AuditLog.ActorKind.AGENT,
            action="conversation.labels",
            conversation=conversation,
            before={"labels": before},
            after={"labels": after},
        )
        domain_events.emit(
            domain_events.ConversationLabelsChanged(
                inbox_id=conversation.inbox_id,
                conversation_id=conversation.pk,
                labels=tuple(after),
                version=conversation.version,
                actor_id=getattr(actor, "pk", None),
            )
        )
    return conversation
