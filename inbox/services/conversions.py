"""Direct Messaging Ads conversions reported by agents."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from decimal import Decimal
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from inbox import domain_events, outbox, providers
from inbox.errors import ApplicationError
from inbox.models import AuditLog, Conversation, Conversion
from inbox.services.common import (
    invalid_input,
)

logger = logging.getLogger(__name__)

# --- Ads conversions ----------------------------------------------------------------------------

CONVERSION_VALUE_LIMIT = Decimal(10) ** 12  # what the row's DecimalField(max_digits=16, decimal_places=4) holds
CONVERSION_QUANTITY_LIMIT = 1_000_000
CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")
CONVERSION_RANK = {Conversion.Status.QUEUED: 1, Conversion.Status.SENT: 2, Conversion.Status.FAILED: 2}


def _conversion_input_check(*, event: str, value: Decimal | None, currency: str, quantity: int) -> Decimal | None:
    if event not in Conversion.Event.values:
        raise invalid_input("invalid_event", f"the event is one of {', '.join(Conversion.Event.values)}", "event")
    if value is not None:
        if not isinstance(value, Decimal):
            value = Decimal(str(value))
        if not value.is_finite() or value < 0 or value >= CONVERSION_VALUE_LIMIT:
            raise invalid_input(
                "invalid_value", f"the value is a number from 0 to below {CONVERSION_VALUE_LIMIT:,}", "value"
            )
        value = value.quantize(Decimal("0.0001"))
        if not currency:
            raise invalid_input("currency_required", "a value needs its currency (ISO 4217, e.g. EUR)", "currency")
    if currency and not CURRENCY_PATTERN.fullmatch(currency):
        raise invalid_input("invalid_currency", "the currency is a three-letter ISO 4217 code, e.g. EUR", "currency")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= CONVERSION_QUANTITY_LIMIT:
        raise invalid_input(
            "invalid_quantity", f"the quantity is a whole number from 1 to {CONVERSION_QUANTITY_LIMIT:,}", "quantity"
        )
    return value


def _conversion_published(conversion: Conversion, inbox_id: int) -> None:
    domain_events.emit(
        domain_events.ConversionUpdated(
            inbox_id=inbox_id,
            conversation_id=conversion.conversation_id,
            conversion_id=conversion.pk,
            status=conversion.status,
        )
    )


def conversion_report(
    *,
    conversation_id: int,
    author,
    event: str,
    value: Decimal | None = None,
    currency: str = "",
    quantity: int = 1,
) -> Conversion:
    """Record a Direct Messaging Ads conversion (queued) and schedule its report to the channel on commit.

    Refuses with ApplicationError: 422 for invalid input (checked first, without the database: an event
    outside TikTok's standard names, a negative or huge value, a currency that is not three letters, a
    value without currency, a quantity below 1), 404 for an unknown conversation, 409 `not_from_ad` when
    the conversation did not come from an ad, 429 `conversion_rate_limited` past
    CONVERSIONS_PER_CONVERSATION_PER_HOUR (the conversation row is locked while counting). The row exists before
    any task does.
    """
    currency = (currency or "").strip().upper()
    value = _conversion_input_check(event=event, value=value, currency=currency, quantity=quantity)
    with transaction.atomic():
        # Locked: two reports at once cannot both take the last one of the hour.
        conversation = (
            Conversation.objects.select_for_update(of=("self",))
            .select_related("contact")
            .filter(pk=conversation_id)
            .first()
        )
        if conversation is None:
            raise ApplicationError("not_found", "no such conversation", status=404)
        limit = settings.CONVERSIONS_PER_CONVERSATION_PER_HOUR
        since = timezone.now() - timedelta(hours=1)
        if Conversion.objects.filter(conversation=conversation, occurred_at__gt=since).count() >= limit:
            raise ApplicationError(
                "conversion_rate_limited",
                f"at most {limit} conversions per conversation and hour: try again later",
                status=429,
            )
        if (conversation.referral or {}).get("source") != "ad":
            raise ApplicationError(
                "not_from_ad", "conversions can only be reported for conversations that came from an ad", status=409
            )
        backend = providers.for_conversation(conversation)
        if backend is None or not backend.capabilities.conversions:
            raise ApplicationError(
                "channel_unavailable",
                f"the provider of this conversation ({conversation.provider or 'none'}) cannot report conversions",
                status=409,
            )
        conversion = Conversion.objects.create(
            conversation=conversation,
            event=event,
            value=value,
            currency=currency,
            quantity=quantity,
            author=author,
            status=Conversion.Status.QUEUED,
            occurred_at=timezone.now(),
        )
        AuditLog.objects.create(
            actor=author,
            actor_kind=AuditLog.ActorKind.AGENT,
            action="conversion.queued",
            conversation=conversation,
            after={
                "conversion_id": conversion.pk,
                "event": event,
                "value": None if value is None else str(value),
                "currency": currency,
                "quantity": quantity,
            },
        )
        _conversion_published(conversion, conversation.inbox_id)
        transaction.on_commit(partial(outbox.enqueue_conversion, conversion))
    return conversion


def conversion_result_record(
    *, conversion_id: int, sent: bool, tries: int, response: dict | None = None, error: dict | None = None
) -> bool:
    """Record what the provider made of a queued conversion: sent, or failed with its error.

    Only a `queued` row changes (in the UPDATE itself), so a late or repeated task cannot overwrite a
    result. Returns whether the row changed.
    """
    now = timezone.now()
    status = Conversion.Status.SENT if sent else Conversion.Status.FAILED
    fields = {"status": status, "tries": tries, "updated_at": now}
    if sent:
        fields.update(sent_at=now, provider_response=response or {}, error={})
    else:
        fields.update(failed_at=now, error=error or {})
    with transaction.atomic():
        if not Conversion.objects.filter(pk=conversion_id, status=Conversion.Status.QUEUED).update(**fields):
            return False
        conversion = Conversion.objects.select_related("conversation").get(pk=conversion_id)
        AuditLog.objects.create(
            actor_kind=AuditLog.ActorKind.PROVIDER if sent else AuditLog.ActorKind.SYSTEM,
            action=f"conversion.{status}",
            conversation_id=conversion.conversation_id,
            before={"conversion_id": conversion_id, "status": Conversion.Status.QUEUED},
            after={"conversion_id": conversion_id, "status": status, **({"error": error} if error else {})},
        )
        _conversion_published(conversion, conversion.conversation.inbox_id)
    return True
