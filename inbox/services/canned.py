"""Canned responses: saved replies, shared by an inbox or personal, with {{contact.name}} / {{agent.name}}."""

from __future__ import annotations

import re

from django.db import IntegrityError, transaction

from inbox.errors import ApplicationError
from inbox.models import CannedResponse
from inbox.services.common import invalid_input
from inbox.services.replies import REPLY_TEXT_MAX_CHARS

SHORT_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
VARIABLE = re.compile(r"\{\{\s*(contact\.name|agent\.name)\s*\}\}")


def canned_render(text: str, *, contact_name: str, agent_name: str) -> str:
    """The text with its variables filled in (unknown `{{…}}` stay as written)."""
    values = {"contact.name": contact_name, "agent.name": agent_name}
    return VARIABLE.sub(lambda match: values[match.group(1)], text)


def _clean(short_code: str, text: str) -> tuple[str, str]:
    short_code = short_code.strip().lower()
    if not SHORT_CODE.match(short_code):
        raise invalid_input(
            "invalid_short_code", "a short code is 1 to 40 lowercase letters, digits, - or _", "short_code"
        )
    if not text.strip() or len(text) > REPLY_TEXT_MAX_CHARS:
        raise invalid_input("invalid_text", f"the text is 1 to {REPLY_TEXT_MAX_CHARS} characters", "text")
    return short_code, text


def _taken(short_code: str) -> ApplicationError:
    return ApplicationError("short_code_taken", f"/{short_code} is already in use here", status=409)


def canned_create(*, inbox_id: int, owner, short_code: str, text: str) -> CannedResponse:
    """Shared with the inbox (owner None) or personal; 409 `short_code_taken` for a code already used alike."""
    short_code, text = _clean(short_code, text)
    try:
        with transaction.atomic():
            return CannedResponse.objects.create(inbox_id=inbox_id, owner=owner, short_code=short_code, text=text)
    except IntegrityError:
        raise _taken(short_code) from None


def canned_update(*, canned_id: int, short_code: str, text: str) -> CannedResponse:
    short_code, text = _clean(short_code, text)
    try:
        with transaction.atomic():
            canned = CannedResponse.objects.select_for_update().get(pk=canned_id)
            canned.short_code, canned.text = short_code, text
            canned.save(update_fields=["short_code", "text", "updated_at"])
    except IntegrityError:
        raise _taken(short_code) from None
    return canned


def canned_delete(*, canned_id: int) -> None:
    with transaction.atomic():
        CannedResponse.objects.filter(pk=canned_id).delete()
