"""Celery tasks of the TikTok channel: send a queued reply, sweep stuck ones, apply kept reports.

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
from django.utils import timezone

from inbox.events import StatusReport
from inbox.models import Message
from inbox.services import message_send_failed, message_status_apply
from tiktok_channel import client
from tiktok_channel.ingest import apply_unmatched_reports
from tiktok_channel.models import CHANNEL, TikTokSender

logger = logging.getLogger(__name__)

SWEEP_BATCH = 500
# How long a sweeper's re-enqueue counts as "a task is on its way" before the row may be swept again.
SWEEP_LEASE_SECONDS = 300


def in_flight_key(provider_message_id: str) -> str:
    return f"tiktok:send:in-flight:{provider_message_id}"


def scheduled_key(provider_message_id: str) -> str:
    return f"tiktok:send:scheduled:{provider_message_id}"


def enqueue_send(message_id: int) -> None:
    """The channel's send hook for `inbox.channels` (registered in apps.py); called on commit."""
    send_message.delay(message_id)


def retry_countdown(retries: int, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter (half fixed, half random), at least Retry-After, capped."""
    delay = min(settings.INFOBIP_SEND_RETRY_MAX_DELAY_SECONDS, settings.INFOBIP_SEND_RETRY_BASE_SECONDS * 2**retries)
    countdown = delay / 2 + random.uniform(0, delay / 2)
    if retry_after is not None:
        countdown = max(countdown, retry_after)
    return min(countdown, settings.INFOBIP_SEND_RETRY_MAX_DELAY_SECONDS)


def _failed(message: Message, error: dict) -> str:
    message_send_failed(channel=CHANNEL, provider_message_id=message.provider_message_id, error=error)
    return "failed"


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def send_message(self, message_id: int, first_try_at: str | None = None) -> str:
    """Send one queued outbound message's current attempt to Infobip and record what became of it."""
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
    sender = (
        TikTokSender.objects.select_related("account")
        .filter(business_account_id=message.conversation.contact.endpoint_id)
        .first()
    )
    if sender is None or not sender.active or not sender.account.active:
        return _failed(
            message,
            {
                "name": "SENDER_UNAVAILABLE",
                "description": f"no active TikTok sender {message.conversation.contact.endpoint_id}",
                "permanent": True,
            },
        )

    attempt_id = message.provider_message_id
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
            tries = self.request.retries + 1
            countdown = retry_countdown(self.request.retries, result.retry_after)
            elapsed = (timezone.now() - started).total_seconds()
            if tries >= settings.INFOBIP_SEND_MAX_TRIES or elapsed + countdown > settings.INFOBIP_SEND_BUDGET_SECONDS:
                countdown = None
            else:
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
            {**result.error, "permanent": False, "tries": self.request.retries + 1, "retries_exhausted": True},
        )
    logger.info("message %s: %s, retry in %.1fs", message_id, result.error.get("name"), countdown)
    raise self.retry(
        args=[message_id], kwargs={"first_try_at": started.isoformat()}, countdown=countdown, max_retries=None
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
