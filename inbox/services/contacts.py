"""Agents' edits of a contact: name, email, phone, notes, custom attributes."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from inbox import domain_events
from inbox.models import AuditLog, Contact, Conversation
from inbox.services.common import invalid_input

ATTRIBUTES_MAX = 30
ATTRIBUTE_KEY_MAX_CHARS = 50
ATTRIBUTE_VALUE_MAX_CHARS = 500
EDITABLE = ("display_name", "email", "phone", "notes", "attributes")


def _check(changes: dict) -> dict:
    if "email" in changes and changes["email"]:
        try:
            validate_email(changes["email"])
        except ValidationError:
            raise invalid_input("invalid_email", "not an email address", "email") from None
    attributes = changes.get("attributes")
    if attributes is not None:
        if len(attributes) > ATTRIBUTES_MAX:
            raise invalid_input("too_many_attributes", f"at most {ATTRIBUTES_MAX} attributes", "attributes")
        for key, value in attributes.items():
            if not key.strip() or len(key) > ATTRIBUTE_KEY_MAX_CHARS or not isinstance(value, str):
                raise invalid_input(
                    "invalid_attribute", f"an attribute is a name (1-{ATTRIBUTE_KEY_MAX_CHARS}) and text", "attributes"
                )
            if len(value) > ATTRIBUTE_VALUE_MAX_CHARS:
                raise invalid_input(
                    "invalid_attribute", f"an attribute's value is at most {ATTRIBUTE_VALUE_MAX_CHARS}", "attributes"
                )
    return changes


def contact_update(*, contact_id: int, actor, **changes) -> Contact:
    """Change the given fields (any of EDITABLE); audited with before/after, pushed as `contact.updated` to
    every inbox the contact has a conversation in (their rows show its name)."""
    changes = _check({field: value for field, value in changes.items() if field in EDITABLE})
    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=contact_id)
        changed = {field: value for field, value in changes.items() if getattr(contact, field) != value}
        if not changed:
            return contact
        before = {field: getattr(contact, field) for field in changed}
        for field, value in changed.items():
            setattr(contact, field, value)
        contact.save(update_fields=list(changed))
        conversations = list(Conversation.objects.filter(contact=contact).values_list("pk", "inbox_id"))
        AuditLog.objects.create(
            actor=actor,
            actor_kind=AuditLog.ActorKind.AGENT,
            action="contact.updated",
            conversation_id=conversations[0][0] if len(conversations) == 1 else None,
            before={"contact_id": contact.pk, **before},
            after={"contact_id": contact.pk, **changed},
        )
        domain_events.emit(
            *(
                domain_events.ContactUpdated(
                    inbox_id=inbox_id, contact_id=contact.pk, actor_id=getattr(actor, "pk", None)
                )
                for inbox_id in sorted({inbox_id for _, inbox_id in conversations})
            )
        )
    return contact
