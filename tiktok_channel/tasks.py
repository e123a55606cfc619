"""Celery tasks of the TikTok channel: send a queued reply, sweep stuck ones, apply kept reports; send
typing indicators and read receipts (best effort); report ads conversions.

Sending is safe to repeat: each attempt carries our own `destinations[].messageId`, and Infobip refuses a
second send with that id (REJECTED_DUPLICATE_MESSAGE_ID), which we read as "the earlier try got through".
Two short-lived cache keys per attempt tell the sweeper a task is alive for it: `in-flight` while the
HTTP call runs, `scheduled` while a retry waits. Without either, a row left `queued` is re-enqueued.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from inbox import channels
from inbox.events import StatusReport
from inbox.models import Conversation, Conversion, Message
from inbox.services import conversion_result_record, message_send_failed, message_status_apply
from tiktok_channel import client
from tiktok_channel.infobip_webhooks import apply_unmatched_reports
from tiktok_channel.models import CHANNEL, TikTokSender

logger = logging.getLogger(__name__)

SWEEP_BATCH = 500
# How long a sweeper's re-enqueue counts as "a task is on its way" before the row may be swept again.
SWEEP_LEASE_SECONDS = 300
# An event still waiting in the queue after this long is dropped: a late typing indicator is wrong.
EVENT_EXPIRES_SECONDS = 30
# A read receipt gets one retry after this long; a typing indicator none (it would be stale).
EVENT_RETRY_SECONDS = 5


def in_flight_key(provider_message_id: str) -> str:
    return f"tiktok:send:in-flight:{provider_message_id}"


def scheduled_key(provider_message_id: str) -> str:
    return f"tiktok:send:scheduled:{provider_message_id}"


def enqueue_send(message_id: int) -> None:
    """The channel's send hook for `inbox.channels` (registered in apps.py); called on commit."""
    send_message.delay(message_id)


def enqueue_event(conversation_id: int, kind: str) -> None:
    """The channel's event hook for `inbox.channels` (registered in apps.py)."""
    send_event.apply_async(args=[conversation_id, kind], expires=EVENT_EXPIRES_SECONDS)


def enqueue_conversion(conversion_id: int) -> None:
    """The channel's conversion hook for `inbox.channels` (registered in apps.py); called on commit."""
    report_conversion.delay(conversion_id)


def active_sender(business_account_id: str) -> TikTokSender | None:
    """The active sender (with its active account) that owns a business account id, or None."""
    sender = TikTokSender.objects.select_related("account").filter(business_account_id=business_account_id).first()
    if sender is None or not sender.active or not sender.account.active:
        return None
    return sender


def retry_countdown(retries: int, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter (half fixed, half random), at least Retry-After, capped."""
    delay = min(settings.INFOBIP_SEND_RETRY_MAX_DELAY_SECONDS, settings.INFOBIP_SEND_RETRY_BASE_SECONDS * 2**retries)
    countdown = delay / 2 + random.uniform(0, delay / 2)
    if retry_after is not None:
        countdown = max(countdown, retry_after)
    return min(countdown, settings.INFOBIP_SEND_RETRY_MAX_DELAY_SECONDS)


def next_retry_countdown(task, started: datetime, result: client.SendResult, waits: int = 0) -> float | None:
    """Seconds before a retryable call's next try, or None when the budget (tries or time) is spent.

    `waits` are the task's retries that only waited for an older reply (see send_message): not tries.
    """
    tries = task.request.retries - waits
    countdown = retry_countdown(tries, result.retry_after)
    elapsed = (timezone.now() - started).total_seconds()
    if tries + 1 >= settings.INFOBIP_SEND_MAX_TRIES:
        return None
    if elapsed + countdown > settings.INFOBIP_SEND_BUDGET_SECONDS:
        return None
    return countdown


def _failed(message: Message, error: dict) -> str:
    message_send_failed(channel=CHANNEL, provider_message_id=message.provider_message_id, error=error)
    return "failed"


# How long a reply waits before looking again whether the older reply of its conversation has gone out.
ORDER_WAIT_SECONDS = 0.5


def earlier_reply_queued(message: Message) -> bool:
    """Is an older reply of the same conversation still waiting to be sent? (Replies go out in queue order.)"""
    return (
        Message.objects.filter(
            conversation_id=message.conversation_id, direction=Message.Direction.OUT, status=Message.Status.QUEUED
        )
        .filter(Q(queued_at__lt=message.queued_at) | Q(queued_at=message.queued_at, pk__lt=message.pk))
        .exists()
    )


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def send_message(self, message_id: int, first_try_at: str | None = None, waits: int = 0) -> str:
    """Send one queued outbound message's current attempt to Infobip and record what became of it.

    Replies of one conversation reach Infobip in the order they were queued: while an older one is still
    queued (sending, or waiting out a retry), this one waits too, without spending its retry budget.
    """
    message = (
        Message.objects.select_related("conversation__contact")
        .filter(pk=message_id, direction=Message.Direction.OUT, channel=CHANNEL)
        .first()
    )
    if message is None or message.status != Message.Status.QUEUED:
        return "skipped"
    now = timezone.now()
    started = datetime.fromisoformat(first_try_at) if first_try_at else now

    validity = client.validity_seconds(message.conversation, now=now)
    if validity <= 0:
        return _failed(
            message,
            {"name": "REPLY_WINDOW_CLOSED", "description": "the reply window closed before sending", "permanent": True},
        )
    sender = active_sender(message.conversation.contact.endpoint_id)
    if sender is None:
        return _failed(
            message,
            {
                "name": "SENDER_UNAVAILABLE",
                "description": f"no active TikTok sender {message.conversation.contact.endpoint_id}",
                "permanent": True,
            },
        )

    attempt_id = message.provider_message_id
    if earlier_reply_queued(message):
        cache.set(scheduled_key(attempt_id), 1, timeout=ORDER_WAIT_SECONDS + settings.OUTBOUND_STUCK_AFTER_SECONDS)
        raise self.retry(
            args=[message_id],
            kwargs={"first_try_at": first_try_at, "waits": waits + 1},
            countdown=ORDER_WAIT_SECONDS,
            max_retries=None,
        )
    lock_seconds = settings.INFOBIP_CONNECT_TIMEOUT + settings.INFOBIP_READ_TIMEOUT + 15
    if not cache.add(in_flight_key(attempt_id), 1, timeout=lock_seconds):
        return "in_flight"  # another task is sending this attempt right now
    countdown = None
    try:
        body = client.message_request(
            message, account=sender.account, business_account_id=sender.business_account_id, validity=validity
        )
        result = client.send_messages(sender.account, body)
        if result.outcome == client.RETRYABLE:
            countdown = next_retry_countdown(self, started, result, waits)
            if countdown is not None:
                # Set before the in-flight key goes, so the sweeper never sees this attempt unattended.
                cache.set(scheduled_key(attempt_id), 1, timeout=countdown + settings.OUTBOUND_STUCK_AFTER_SECONDS)
    finally:
        cache.delete(in_flight_key(attempt_id))

    if result.outcome == client.ACCEPTED:
        provider_status = {} if result.duplicate else {**result.status, "messageId": result.provider_message_id}
        message_status_apply(
            report=StatusReport(
                channel=CHANNEL,
                provider_message_id=attempt_id,
                status=Message.Status.ACCEPTED,
                at=timezone.now(),
                provider_status={key: value for key, value in provider_status.items() if value not in (None, "")},
            )
        )
        apply_unmatched_reports(provider_message_ids=[attempt_id])
        return "duplicate" if result.duplicate else "accepted"
    if result.outcome == client.PERMANENT:
        return _failed(message, result.error)
    if countdown is None:
        return _failed(
            message,
            {**result.error, "permanent": False, "tries": self.request.retries - waits + 1, "retries_exhausted": True},
        )
    logger.info("message %s: %s, retry in %.1fs", message_id, result.error.get("name"), countdown)
    raise self.retry(
        args=[message_id],
        kwargs={"first_try_at": started.isoformat(), "waits": waits},
        countdown=countdown,
        max_retries=None,
    )


@shared_task
def sweep_queued_messages() -> int:
    """Re-enqueue outbound messages left `queued` with no task alive for them (lost, or worker killed)."""
    cutoff = timezone.now() - timedelta(seconds=settings.OUTBOUND_STUCK_AFTER_SECONDS)
    with transaction.atomic():
        # skip_locked: rows a service holds right now (a retry, a report) are not ours to judge this round.
        rows = list(
            Message.objects.select_for_update(skip_locked=True)
            .filter(
                channel=CHANNEL, direction=Message.Direction.OUT, status=Message.Status.QUEUED, queued_at__lt=cutoff
            )
            .order_by("queued_at", "id")
            .values_list("id", "provider_message_id")[:SWEEP_BATCH]
        )
        alive = cache.get_many([key for _, pid in rows for key in (in_flight_key(pid), scheduled_key(pid))])
        claimed = [
            message_id
            for message_id, pid in rows
            if in_flight_key(pid) not in alive
            and scheduled_key(pid) not in alive
            and cache.add(scheduled_key(pid), "sweeper", timeout=SWEEP_LEASE_SECONDS)
        ]
        for message_id in claimed:
            transaction.on_commit(lambda message_id=message_id: send_message.delay(message_id))
    if claimed:
        logger.warning("re-enqueued %d outbound message(s) stuck in queued: %s", len(claimed), claimed)
    return len(claimed)


@shared_task
def apply_pending_reports() -> int:
    """Apply delivery and seen reports kept for messages that now exist."""
    return apply_unmatched_reports()


@shared_task(bind=True, max_retries=1, ignore_result=True, time_limit=30)
def send_event(self, conversation_id: int, kind: str) -> str:
    """Send a typing indicator or read receipt. Best effort: a failure is logged, never recorded or raised;
    a read receipt gets one retry, a typing indicator none (it would be stale by then)."""
    conversation = Conversation.objects.select_related("contact").filter(pk=conversation_id).first()
    if conversation is None or conversation.contact.channel != CHANNEL or kind not in client.EVENT_TYPES:
        return "skipped"
    if client.validity_seconds(conversation, now=timezone.now()) <= 0:
        return "window_closed"  # TikTok only takes events within an open conversation
    sender = active_sender(conversation.contact.endpoint_id)
    if sender is None:
        logger.info("no active TikTok sender %s for a %s event", conversation.contact.endpoint_id, kind)
        return "skipped"
    body = client.event_request(conversation, business_account_id=sender.business_account_id, kind=kind)
    result = client.send_events(sender.account, body)
    if result.outcome == client.ACCEPTED:
        return "sent"
    if result.outcome == client.RETRYABLE and kind == channels.EVENT_READ and self.request.retries < self.max_retries:
        countdown = max(EVENT_RETRY_SECONDS, min(result.retry_after or 0, 60))
        raise self.retry(countdown=countdown, expires=countdown + EVENT_EXPIRES_SECONDS)
    logger.warning(
        "%s event for conversation %s not sent: %s %s",
        kind,
        conversation_id,
        result.error.get("name"),
        result.error.get("description"),
    )
    return "failed"


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def report_conversion(self, conversion_id: int, first_try_at: str | None = None) -> str:
    """Report one queued ads conversion to Infobip and record the result on its row.

    Retried like a send (5xx, 429, timeouts; bounded by tries and time); 4xx fails at once with Infobip's
    description. The API takes no id of ours, so a retry after a timeout could count a conversion twice:
    an accepted risk, as a lost conversion is the worse error for the advertiser.
    """
    conversion = (
        Conversion.objects.select_related("conversation__contact")
        .filter(pk=conversion_id, conversation__contact__channel=CHANNEL)
        .first()
    )
    if conversion is None or conversion.status != Conversion.Status.QUEUED:
        return "skipped"
    started = datetime.fromisoformat(first_try_at) if first_try_at else timezone.now()
    tries = self.request.retries + 1
    sender = active_sender(conversion.conversation.contact.endpoint_id)
    if sender is None:
        error = {
            "name": "SENDER_UNAVAILABLE",
            "description": f"no active TikTok sender {conversion.conversation.contact.endpoint_id}",
            "permanent": True,
        }
        conversion_result_record(conversion_id=conversion_id, sent=False, tries=tries, error=error)
        return "failed"
    body = client.conversion_request(conversion, business_account_id=sender.business_account_id)
    result = client.send_conversions(sender.account, body)
    if result.outcome == client.ACCEPTED:
        conversion_result_record(conversion_id=conversion_id, sent=True, tries=tries, response=result.body)
        return "sent"
    if result.outcome == client.RETRYABLE:
        countdown = next_retry_countdown(self, started, result)
        if countdown is not None:
            logger.info("conversion %s: %s, retry in %.1fs", conversion_id, result.error.get("name"), countdown)
            raise self.retry(
                args=[conversion_id],
                kwargs={"first_try_at": started.isoformat()},
                countdown=countdown,
                max_retries=None,
            )
        error = {**result.error, "permanent": False, "tries": tries, "retries_exhausted": True}
    else:
        error = result.error
    conversion_result_record(conversion_id=conversion_id, sent=False, tries=tries, error=error)
    return "failed"
