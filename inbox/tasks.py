"""Celery tasks of the core. The outbox, the same for every provider: send a queued reply, sweep stuck ones, apply
parked reports; send typing indicators and read receipts (best effort); report ads conversions. And the
wake-up of snoozed conversations.

Thin tasks: they load rows, ask the conversation's backend (`inbox.providers`) to make one call, and record
the classified answer through the services. The rules around the call are `inbox/outbox.py`'s.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from inbox import outbox, providers
from inbox.events import StatusReport
from inbox.models import Conversation, Conversion, Message
from inbox.services import conversion_result_record, message_send_failed, message_status_apply

logger = logging.getLogger(__name__)


def _failed(message: Message, error: dict) -> str:
    message_send_failed(channel=message.channel, provider_message_id=message.provider_message_id, error=error)
    return "failed"


def _provider_unavailable(conversation: Conversation) -> dict:
    return {
        "name": "PROVIDER_UNAVAILABLE",
        "description": f"no provider {conversation.provider!r} is installed for this conversation",
        "permanent": True,
    }


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def send_message(self, message_id: int, first_try_at: str | None = None, waits: int = 0) -> str:
    """Send one queued outbound message's current attempt through its conversation's provider, and record
    what became of it.

    Replies of one conversation reach the provider in the order they were queued: while an older one is still
    queued (sending, or waiting out a retry), this one waits too, without spending its retry budget (`waits`
    counts those retries, which are not tries).
    """
    message = (
        Message.objects.select_related("conversation__contact")
        .filter(pk=message_id, direction=Message.Direction.OUT)
        .first()
    )
    if message is None or message.status != Message.Status.QUEUED:
        return "skipped"
    now = timezone.now()
    started = datetime.fromisoformat(first_try_at) if first_try_at else now
    conversation = message.conversation

    backend = providers.for_conversation(conversation)
    if backend is None:
        return _failed(message, _provider_unavailable(conversation))
    validity = outbox.reply_window_seconds(conversation, now=now)
    if backend.capabilities_for(conversation).user_initiated and validity <= 0:
        return _failed(
            message,
            {"name": "REPLY_WINDOW_CLOSED", "description": "the reply window closed before sending", "permanent": True},
        )

    attempt_id = message.provider_message_id
    if outbox.earlier_reply_queued(message):
        cache.set(
            outbox.scheduled_key(attempt_id),
            1,
            timeout=outbox.ORDER_WAIT_SECONDS + settings.OUTBOUND_STUCK_AFTER_SECONDS,
        )
        raise self.retry(
            args=[message_id],
            kwargs={"first_try_at": first_try_at, "waits": waits + 1},
            countdown=outbox.ORDER_WAIT_SECONDS,
            max_retries=None,
        )
    if not cache.add(outbox.in_flight_key(attempt_id), 1, timeout=settings.OUTBOX_SEND_LEASE_SECONDS):
        return "in_flight"  # another task is sending this attempt right now
    tries = self.request.retries - waits
    countdown = None
    try:
        result = backend.send(message, validity_seconds=validity)
        if result.outcome == providers.HELD:
            # Held, not tried: the sweeper leaves the row alone this long, then asks the backend again.
            cache.set(outbox.scheduled_key(attempt_id), "held", timeout=settings.OUTBOX_HELD_RECHECK_SECONDS)
        elif result.outcome == providers.RETRYABLE:
            countdown = outbox.next_retry_countdown(tries=tries, started=started, retry_after=result.retry_after)
            if countdown is not None:
                # Set before the in-flight key goes, so the sweeper never sees this attempt unattended.
                cache.set(
                    outbox.scheduled_key(attempt_id), 1, timeout=countdown + settings.OUTBOUND_STUCK_AFTER_SECONDS
                )
    finally:
        cache.delete(outbox.in_flight_key(attempt_id))

    if result.outcome == providers.ACCEPTED:
        provider_status = {} if result.duplicate else {**result.status, "messageId": result.provider_message_id}
        message_status_apply(
            report=StatusReport(
                channel=message.channel,
                provider_message_id=attempt_id,
                status=Message.Status.ACCEPTED,
                at=timezone.now(),
                provider_status={key: value for key, value in provider_status.items() if value not in (None, "")},
            )
        )
        outbox.apply_parked_reports(channel=message.channel, provider_message_ids=[attempt_id])
        return "duplicate" if result.duplicate else "accepted"
    if result.outcome == providers.HELD:
        logger.info("message %s held: %s", message_id, result.error.get("description"))
        return "held"
    if result.outcome in (providers.PERMANENT, providers.UNAVAILABLE):
        return _failed(message, result.error)
    if countdown is None:
        return _failed(message, {**result.error, "permanent": False, "tries": tries + 1, "retries_exhausted": True})
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
            .filter(direction=Message.Direction.OUT, status=Message.Status.QUEUED, queued_at__lt=cutoff)
            .order_by("queued_at", "id")
            .values_list("id", "provider_message_id")[: outbox.SWEEP_BATCH]
        )
        keys = [key for _, pid in rows for key in (outbox.in_flight_key(pid), outbox.scheduled_key(pid))]
        alive = cache.get_many(keys)
        claimed = [
            message_id
            for message_id, pid in rows
            if outbox.in_flight_key(pid) not in alive
            and outbox.scheduled_key(pid) not in alive
            and cache.add(outbox.scheduled_key(pid), "sweeper", timeout=outbox.SWEEP_LEASE_SECONDS)
        ]
        for message_id in claimed:
            transaction.on_commit(lambda message_id=message_id: send_message.delay(message_id))
    if claimed:
        logger.warning("re-enqueued %d outbound message(s) stuck in queued: %s", len(claimed), claimed)
    return len(claimed)


@shared_task
def apply_parked_reports() -> int:
    """Apply delivery and seen reports parked for messages that now exist."""
    return outbox.apply_parked_reports()


@shared_task
def reconcile_accepted_messages() -> int:
    """Settle messages that stayed accepted from what their provider now says (lost delivery reports)."""
    return outbox.reconcile_accepted()


@shared_task(bind=True, max_retries=1, ignore_result=True, time_limit=30)
def send_event(self, conversation_id: int, kind: str) -> str:
    """Send a typing indicator or read receipt. Best effort: a failure is logged, never recorded or raised;
    a read receipt gets one retry, a typing indicator none (it would be stale by then)."""
    conversation = Conversation.objects.select_related("contact").filter(pk=conversation_id).first()
    if conversation is None or kind not in providers.EVENT_KINDS:
        return "skipped"
    backend = providers.for_conversation(conversation)
    if backend is None or not outbox.can_send_event(conversation, kind):
        return "skipped"
    if (
        backend.capabilities_for(conversation).user_initiated
        and outbox.reply_window_seconds(conversation, now=timezone.now()) <= 0
    ):
        return "window_closed"  # TikTok only takes events within an open conversation
    result = backend.send_event(conversation, kind)
    if result.outcome == providers.ACCEPTED:
        return "sent"
    if result.outcome == providers.UNAVAILABLE:
        logger.info("no %s event for conversation %s: %s", kind, conversation_id, result.error.get("description"))
        return "skipped"
    retry = result.outcome == providers.RETRYABLE and kind == providers.EVENT_READ
    if retry and self.request.retries < self.max_retries:
        countdown = max(outbox.EVENT_RETRY_SECONDS, min(result.retry_after or 0, 60))
        raise self.retry(countdown=countdown, expires=countdown + outbox.EVENT_EXPIRES_SECONDS)
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
    """Report one queued ads conversion through its conversation's provider and record the result on its row.

    Retried like a send (5xx, 429, timeouts; bounded by tries and time); other refusals fail at once with
    the provider's description. The providers take no id of ours, so a retry after a timeout could count a
    conversion twice: an accepted risk, as a lost conversion is the worse error for the advertiser.
    """
    conversion = Conversion.objects.select_related("conversation__contact").filter(pk=conversion_id).first()
    if conversion is None or conversion.status != Conversion.Status.QUEUED:
        return "skipped"
    started = datetime.fromisoformat(first_try_at) if first_try_at else timezone.now()
    tries = self.request.retries + 1
    backend = providers.for_conversation(conversion.conversation)
    if backend is None:
        error = _provider_unavailable(conversion.conversation)
        conversion_result_record(conversion_id=conversion_id, sent=False, tries=tries, error=error)
        return "failed"
    result = backend.report_conversion(conversion)
    if result.outcome == providers.ACCEPTED:
        conversion_result_record(conversion_id=conversion_id, sent=True, tries=tries, response=result.body)
        return "sent"
    if result.outcome == providers.RETRYABLE:
        countdown = outbox.next_retry_countdown(
            tries=self.request.retries, started=started, retry_after=result.retry_after
        )
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


@shared_task
def wake_snoozed_conversations() -> int:
    """Reopen snoozed conversations whose time has come; returns how many."""
    from inbox.services import conversations_wake_due

    return len(conversations_wake_due())


@shared_task
def sweep_orphan_uploads() -> int:
    """Delete uploaded images no message refers to, older than an hour (inbox/uploads.py)."""
    from inbox.uploads import uploads_sweep

    return len(uploads_sweep())


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def perform_message_action(self, message_id: int, action: str, tries: int = 0, first_try_at: str | None = None) -> str:
    """Ask the conversation's provider to hide, unhide or delete one message (an agent's pending request), with
    the outbox's backoff and budget for temporary trouble; record the answer (done, or failed with the reason)."""
    from inbox.services import message_action_result

    message = Message.objects.select_related("conversation__contact").filter(pk=message_id).first()
    if message is None or message.action.get("state") != "pending" or message.action.get("action") != action:
        return "skipped"
    backend = providers.for_conversation(message.conversation)
    if backend is None:
        message_action_result(message_id=message_id, action=action, error=_provider_unavailable(message.conversation))
        return "failed"
    started = datetime.fromisoformat(first_try_at) if first_try_at else timezone.now()
    result = backend.message_action(message, action)
    if result.outcome == providers.ACCEPTED:
        message_action_result(message_id=message_id, action=action)
        return "done"
    if result.outcome in (providers.RETRYABLE, providers.HELD):
        countdown = outbox.next_retry_countdown(tries=tries, started=started, retry_after=result.retry_after)
        if countdown is not None:
            raise self.retry(
                args=[message_id, action, tries + 1, started.isoformat()], countdown=countdown, max_retries=None
            )
    error = dict(result.error or {"name": "FAILED", "description": f"the provider did not {action} it"})
    message_action_result(message_id=message_id, action=action, error=error)
    return "failed"
