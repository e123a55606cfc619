"""Celery tasks of the core. The outbox, the same for every provider: send a queued reply, sweep stuck ones, apply
parked reports; send typing indicators and read receipts (best effort); report ads conversions. And the
wake-up of snoozed conversations.

Thin tasks: they load rows, ask the conversation's backend (`inbox.providers`) to make one call, and record
the classified answer through the services. The rules around the call are `inbox/outbox.py`'s.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from inbox import outbox, providers
from inbox.events import StatusReport
from inbox.models import Conversation, Conversion, Message
from inbox.services import (
    conversion_result_record,
    message_send_failed,
    message_statuses_apply,
    messages_send_failed,
)

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
def send_message(
    self,
    message_id: int,
    first_try_at: str | None = None,
    waits: int = 0,
    batch: list[list] | None = None,
    token: str | None = None,
    attempt_id: str | None = None,
) -> str:
    """Send one queued outbound message's current attempt through its conversation's provider — together with
    the other replies of its connection that are ready (`outbox.batch_companions`) when the provider sends
    batches — and record what became of each; then go on with the connection's next ready batches
    (`_drain_connection`, within a budget). Returns what became of `message_id`'s attempt.

    Replies of one conversation reach the provider in the order they were queued: while an older one is still
    queued (sending, or waiting out a retry), this one waits too, without spending its retry budget (`waits`
    counts those retries, which are not tries). A batch holds at most one reply per conversation, its oldest
    queued one: the provider's answer order within one request is not a delivery order.

    A retry carries its batch (`batch`: [id, attempt id] of the others still to send, `token`: the mark their
    `scheduled` keys hold), so the same messages go again together and no other task sends them meanwhile.

    `attempt_id` (the attempt this task was enqueued for, when the enqueuer knew it) lets the task end without a
    query: after a burst most tasks find their attempt already recorded by a drain (`outbox.mark_done`) or in flight
    in another task, in one cache read of its three keys. Ending is all a task does with such an attempt, so these
    keys can only make it end sooner, never send; without them (expired, or no `attempt_id`) it asks the database.
    """
    if attempt_id is not None:
        keys = [outbox.done_key(attempt_id), outbox.in_flight_key(attempt_id), outbox.scheduled_key(attempt_id)]
        known = cache.get_many(keys)
        if keys[0] in known:
            return "skipped"  # recorded (accepted or failed) by the task that sent it
        if keys[1] in known:
            return "in_flight"  # another task is sending this attempt right now (it records the answer)
        if outbox.owned_by_another_batch(known.get(keys[2]), token):
            return "in_batch"
    # Else one query by primary key (no join) and one cache read for a task whose reply is sent or in flight.
    state = (
        Message.objects.filter(pk=message_id, direction=Message.Direction.OUT)
        .values_list("status", "provider_message_id")
        .first()
    )
    if state is None or state[0] != Message.Status.QUEUED:
        return "skipped"
    attempt_id = state[1]
    leases = cache.get_many([outbox.in_flight_key(attempt_id), outbox.scheduled_key(attempt_id)])
    if outbox.in_flight_key(attempt_id) in leases:
        return "in_flight"  # another task is sending this attempt right now (it records the answer)
    if outbox.owned_by_another_batch(leases.get(outbox.scheduled_key(attempt_id)), token):
        return "in_batch"  # a batch's retry will send it (or, if that task died, the sweeper)
    message = (
        Message.objects.select_related("conversation__contact")
        .filter(pk=message_id, direction=Message.Direction.OUT, status=Message.Status.QUEUED)
        .first()
    )
    if message is None or message.provider_message_id != attempt_id:
        return "skipped"
    now = timezone.now()
    started = datetime.fromisoformat(first_try_at) if first_try_at else now
    conversation = message.conversation

    backend = providers.for_conversation(conversation)
    if backend is None:
        return _failed(message, _provider_unavailable(conversation))
    validity = outbox.reply_window_seconds(conversation, now=now)
    if backend.capabilities_for(providers.ConversationFacts.of(conversation)).user_initiated and validity <= 0:
        return _failed(message, WINDOW_CLOSED)

    if outbox.earlier_reply_queued(message):
        cache.set(
            outbox.scheduled_key(attempt_id),
            outbox.ORDER_WAIT_MARK,
            timeout=outbox.ORDER_WAIT_SECONDS + settings.OUTBOUND_STUCK_AFTER_SECONDS,
        )
        raise self.retry(
            args=[message_id],
            kwargs={"first_try_at": first_try_at, "waits": waits + 1, "attempt_id": attempt_id},
            countdown=outbox.ORDER_WAIT_SECONDS,
            max_retries=None,
        )
    if not cache.add(outbox.in_flight_key(attempt_id), 1, timeout=settings.OUTBOX_SEND_LEASE_SECONDS):
        return "in_flight"  # another task is sending this attempt right now
    claimed = [message]
    try:
        if not Message.objects.filter(
            pk=message_id, status=Message.Status.QUEUED, provider_message_id=attempt_id
        ).exists():
            # Another task sent it between our read and our lease (it records the answer before its lease goes).
            cache.delete(outbox.in_flight_key(attempt_id))
            return "skipped"
        limit = backend.send_batch_limit() - 1
        if batch:
            claimed += outbox.claim([(int(mid), str(pid)) for mid, pid in batch][:limit])
        elif limit > 0:
            claimed += outbox.batch_companions(message, limit=limit)
    except BaseException:
        cache.delete_many([outbox.in_flight_key(m.provider_message_id) for m in claimed])
        raise
    fates = _send_claimed(self, backend, claimed, started=started, waits=waits, now=now)
    if limit > 0 and _keep_draining(fates):
        _drain_connection(self, backend, conversation)
    return fates[message.pk]


def _keep_draining(fates: dict[int, str]) -> bool:
    """After a batch whose every reply was refused or held, the connection's other replies are left to their own
    tasks (each fails or waits with its own reason, as before); after one that went through, more may follow."""
    return any(fate in ("accepted", "duplicate") for fate in fates.values())


def _drain_connection(task, backend, conversation: Conversation) -> int:
    """Send the connection's next ready batches (`outbox.ready_batch`), one after another, until none is ready or
    the budget (`OUTBOX_DRAIN_MAX_BATCHES`, `OUTBOX_DRAIN_SECONDS`) is spent. The replies a batch sent make the
    next queued reply of their conversations ready for the next batch, so a queue of several replies per
    conversation drains in this task, in each conversation's order, instead of in their own tasks' waves.
    Each batch is claimed and recorded by the same rules as the first; a retryable answer ends the drain (the
    task retries that batch, as it would its first). Returns how many batches it sent."""
    deadline = time.monotonic() + settings.OUTBOX_DRAIN_SECONDS
    limit = backend.send_batch_limit()
    provider, endpoint_id = conversation.provider, conversation.contact.endpoint_id
    sent = 0
    while sent < settings.OUTBOX_DRAIN_MAX_BATCHES and time.monotonic() < deadline:
        claimed = outbox.ready_batch(provider=provider, endpoint_id=endpoint_id, limit=limit)
        if not claimed:
            break
        now = timezone.now()
        # A batch's first try: its retry budget starts now (`waits` makes this task's retries so far no tries).
        fates = _send_claimed(
            task, backend, claimed, started=now, waits=task.request.retries or 0, now=now, head_checked=False
        )
        sent += 1
        if not _keep_draining(fates):
            break
    if sent:
        logger.info("drained %d more batch(es) of %s %s", sent, provider, endpoint_id)
    return sent


WINDOW_CLOSED = {
    "name": "REPLY_WINDOW_CLOSED",
    "description": "the reply window closed before sending",
    "permanent": True,
}


def _send_claimed(
    task,
    backend,
    claimed: list[Message],
    *,
    started: datetime,
    waits: int,
    now: datetime,
    head_checked: bool = True,
) -> dict[int, str]:
    """Send the claimed attempts (their in-flight keys held) in one provider call, release the keys, and record
    each answer: accepted in one status batch, failures in one, the retryable ones retried together. Returns what
    became of each (by message id). `head_checked`: the caller already checked the first one's reply window."""
    head = claimed[0]
    failures: list[tuple[Message, dict]] = []
    items: list[tuple[Message, int]] = []
    for message in claimed:
        validity = outbox.reply_window_seconds(message.conversation, now=now)
        facts = providers.ConversationFacts.of(message.conversation)
        if (
            (message is not head or not head_checked)
            and backend.capabilities_for(facts).user_initiated
            and (validity <= 0)
        ):
            failures.append((message, WINDOW_CLOSED))
        else:
            items.append((message, validity))
    tries = task.request.retries - waits
    countdown = None
    token = uuid.uuid4().hex
    results: list[providers.SendResult] = []
    accepted: list[StatusReport] = []
    retry: list[Message] = []
    fate: dict[int, str] = {m.pk: "failed" for m, _ in failures}
    try:
        results = backend.send_batch(items) if items else []
        if len(results) != len(items):
            raise RuntimeError(f"{backend.name}.send_batch answered {len(results)} results for {len(items)} messages")
        retryable = [m for (m, _), r in zip(items, results, strict=True) if r.outcome == providers.RETRYABLE]
        if retryable:
            retry_after = max((r.retry_after or 0 for r in results if r.outcome == providers.RETRYABLE), default=0)
            countdown = outbox.next_retry_countdown(tries=tries, started=started, retry_after=retry_after or None)
        held, waiting = {}, {}
        for (message, _), result in zip(items, results, strict=True):
            if result.outcome == providers.HELD:
                # Held, not tried: the sweeper leaves the row alone this long, then asks the backend again.
                held[outbox.scheduled_key(message.provider_message_id)] = outbox.HELD_MARK
            elif result.outcome == providers.RETRYABLE and countdown is not None:
                # Set before the in-flight key goes, so the sweeper never sees this attempt unattended; the mark
                # names this batch, so only its retry sends the attempt.
                waiting[outbox.scheduled_key(message.provider_message_id)] = outbox.batch_mark(token)
        if held:
            cache.set_many(held, timeout=settings.OUTBOX_HELD_RECHECK_SECONDS)
        if waiting:
            cache.set_many(waiting, timeout=countdown + settings.OUTBOUND_STUCK_AFTER_SECONDS)
        for (message, _), result in zip(items, results, strict=True):
            if result.outcome == providers.ACCEPTED:
                provider_status = {} if result.duplicate else {**result.status, "messageId": result.provider_message_id}
                accepted.append(
                    StatusReport(
                        channel=message.channel,
                        provider_message_id=message.provider_message_id,
                        status=Message.Status.ACCEPTED,
                        at=timezone.now(),
                        provider_status={
                            key: value for key, value in provider_status.items() if value not in (None, "")
                        },
                    )
                )
                fate[message.pk] = "duplicate" if result.duplicate else "accepted"
            elif result.outcome == providers.HELD:
                logger.info("message %s held: %s", message.pk, result.error.get("description"))
                fate[message.pk] = "held"
            elif result.outcome in (providers.PERMANENT, providers.UNAVAILABLE):
                failures.append((message, result.error))
                fate[message.pk] = "failed"
            elif countdown is None:
                failures.append(
                    (message, {**result.error, "permanent": False, "tries": tries + 1, "retries_exhausted": True})
                )
                fate[message.pk] = "failed"
            else:
                retry.append(message)
                fate[message.pk] = "retry"
        if accepted:
            message_statuses_apply(accepted)
            outbox.apply_parked_reports(
                channel=head.channel, provider_message_ids=[report.provider_message_id for report in accepted]
            )
        if failures:
            messages_send_failed([(m.channel, m.provider_message_id, error) for m, error in failures])
        outbox.mark_done([m for m in claimed if fate.get(m.pk) in ("accepted", "duplicate", "failed")])
    finally:
        # Only now: until the answers are recorded, no other task may take these attempts for a send of its own.
        cache.delete_many([outbox.in_flight_key(m.provider_message_id) for m in claimed])
    if retry:
        first = retry[0]
        error = next(r.error for (m, _), r in zip(items, results, strict=True) if m is first)
        logger.info(
            "message %s (+%d in its batch): %s, retry in %.1fs", first.pk, len(retry) - 1, error.get("name"), countdown
        )
        raise task.retry(
            args=[first.pk],
            kwargs={
                "first_try_at": started.isoformat(),
                "waits": waits,
                "batch": [[m.pk, m.provider_message_id] for m in retry[1:]],
                "token": token,
            },
            countdown=countdown,
            max_retries=None,
        )
    return fate


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
        backend.capabilities_for(providers.ConversationFacts.of(conversation)).user_initiated
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


@shared_task
def prune_webhook_ledger() -> int:
    """Delete ledger rows past their keeping time (`WEBHOOK_LEDGER_KEEP_DAYS`, `…_KEEP_TROUBLE_DAYS`)."""
    from inbox.processor import ledger_prune

    return ledger_prune()


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
