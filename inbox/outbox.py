"""The outbox: how a queued reply reaches its provider exactly once, in order, whatever the provider.

A reply is a row in state `queued` before any task exists (services.replies). From there the core owns:
- **scheduling** on commit (`enqueue_send`), never raising: a broker outage leaves the row to the sweeper;
- **order**: replies of one conversation go out in queue order (`earlier_reply_queued`; a wait is not a try);
- **leases**: two short-lived cache keys per attempt say a task is alive for it, `in-flight` while the
  provider call runs and `scheduled` while a retry waits; without either, the sweeper re-enqueues the row;
- **retries**: exponential backoff with jitter, at least the provider's Retry-After, within a budget of tries
  and seconds (`next_retry_countdown`); a permanent refusal or a spent budget marks the attempt failed;
- **parking** of delivery/seen reports that arrive before the message has the id they name.

Sending is safe to repeat because each attempt carries our own id (`Message.provider_message_id`), which
a provider refuses as a duplicate the second time (the backend reports that as accepted + duplicate).
The Celery tasks that run this are in `inbox/tasks.py`; the provider's part is `inbox.providers.Backend`.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from inbox import providers
from inbox.events import StatusReport
from inbox.models import Conversation, Conversion, Message, ParkedReport

logger = logging.getLogger(__name__)

# How long a reply waits before looking again whether the older reply of its conversation has gone out.
ORDER_WAIT_SECONDS = 0.5
# How long a sweeper's re-enqueue counts as "a task is on its way" before the row may be swept again.
SWEEP_LEASE_SECONDS = 300
SWEEP_BATCH = 500
# An event still waiting in the queue after this long is dropped: a late typing indicator is wrong.
EVENT_EXPIRES_SECONDS = 30
# A read receipt gets one retry after this long; a typing indicator none (it would be stale).
EVENT_RETRY_SECONDS = 5


# What a `scheduled` key holds says who is waiting on the attempt: an order wait (free to join another send), the
# sweeper's re-enqueue, a held connection, or a batch's retry (`batch_mark`: only that batch's task may send it).
ORDER_WAIT_MARK = "order"
SWEEP_MARK = "sweeper"
HELD_MARK = "held"
BATCH_MARK_PREFIX = "batch:"


def batch_mark(token: str) -> str:
    return f"{BATCH_MARK_PREFIX}{token}"


def owned_by_another_batch(mark: object, token: str | None) -> bool:
    """Is the attempt waiting out the retry of a batch other than the caller's (`token`)?"""
    return isinstance(mark, str) and mark.startswith(BATCH_MARK_PREFIX) and mark != batch_mark(token or "")


def in_flight_key(provider_message_id: str) -> str:
    return f"outbox:send:in-flight:{provider_message_id}"


def scheduled_key(provider_message_id: str) -> str:
    return f"outbox:send:scheduled:{provider_message_id}"


def done_key(provider_message_id: str) -> str:
    return f"outbox:send:done:{provider_message_id}"


def mark_done(attempts: list[Message]) -> None:
    """Remember, after the commit that recorded them (accepted or failed), that these attempts are over: the tasks
    of replies a drain sent then end on one cache read (`send_message`'s first look) instead of a query. An attempt
    id is never reused (a retry is a new attempt with a new id), so the marker cannot speak for another attempt.
    Best effort: without the key a task asks the database."""
    if not attempts or settings.OUTBOX_DONE_MARK_SECONDS <= 0:
        return
    try:
        marks = {done_key(m.provider_message_id): 1 for m in attempts}
        cache.set_many(marks, timeout=settings.OUTBOX_DONE_MARK_SECONDS)
    except Exception:  # noqa: BLE001 - an optimisation only: the database stays the truth
        logger.warning("could not mark %d recorded attempt(s) done", len(attempts), exc_info=True)


# --- Scheduling (called by services on commit; never raise) -------------------------------------------------


def schedule_send(message_id: int, attempt_id: str | None = None) -> None:
    """`attempt_id` (the attempt's `provider_message_id`) lets the task end on its leases and done marker alone,
    without a query, when its attempt is over or being sent elsewhere."""
    from inbox.tasks import send_message  # the tasks module imports this one

    if attempt_id is None:
        send_message.delay(message_id)
    else:
        send_message.delay(message_id, attempt_id=attempt_id)


def schedule_event(conversation_id: int, kind: str) -> None:
    from inbox.tasks import send_event

    send_event.apply_async(args=[conversation_id, kind], expires=EVENT_EXPIRES_SECONDS)


def schedule_conversion(conversion_id: int) -> None:
    from inbox.tasks import report_conversion

    report_conversion.delay(conversion_id)


def enqueue_send(message: Message) -> None:
    """Schedule the send of a queued outbound message. Never raises: after the row is committed a broker
    outage must not fail the agent's request; the sweeper re-enqueues rows left `queued`."""
    try:
        schedule_send(message.pk, message.provider_message_id)
    except Exception:  # noqa: BLE001 - the sweeper picks the row up again
        logger.warning("could not enqueue the send of message %s; the sweeper will", message.pk, exc_info=True)


def enqueue_event(conversation: Conversation, kind: str) -> None:
    """Schedule a typing indicator or read receipt. Best effort: a backend without such events, or a broker
    outage, only logs (nothing is recorded, nothing retried)."""
    if kind not in providers.EVENT_KINDS:
        logger.error("unknown event kind %r (conversation %s)", kind, conversation.pk)
        return
    if not can_send_event(conversation, kind):
        logger.debug("provider %r sends no %s events", conversation.provider, kind)
        return
    try:
        schedule_event(conversation.pk, kind)
    except Exception:  # noqa: BLE001 - an event is a courtesy, never worth failing the agent's request
        logger.warning("could not enqueue the %s event of conversation %s", kind, conversation.pk, exc_info=True)


def enqueue_conversion(conversion: Conversion) -> None:
    """Schedule the report of a queued conversion. Never raises; the row stays `queued` if this fails."""
    try:
        schedule_conversion(conversion.pk)
    except Exception:  # noqa: BLE001 - the row is committed; an admin can see it stayed queued
        logger.warning("could not enqueue the report of conversion %s", conversion.pk, exc_info=True)


def can_send_event(conversation: Conversation, kind: str) -> bool:
    backend = providers.for_conversation(conversation)
    if backend is None:
        return False
    capabilities = backend.capabilities_for(providers.ConversationFacts.of(conversation))
    return capabilities.typing_events if kind == providers.EVENT_TYPING else capabilities.read_receipts


def release_held(*, provider: str, endpoint_ids: list[str]) -> int:
    """Send now the queued replies of a provider's conversations on these endpoints (their connection was held,
    e.g. waiting for re-authorization, and can send again). Order is kept by `send_message` itself. Returns how
    many were enqueued; call it after the commit that made the connection usable."""
    rows = list(
        Message.objects.filter(
            direction=Message.Direction.OUT,
            status=Message.Status.QUEUED,
            conversation__provider=provider,
            conversation__contact__endpoint_id__in=endpoint_ids,
        )
        .order_by("queued_at", "id")
        .values_list("id", "provider_message_id")
    )
    if rows:
        cache.delete_many([scheduled_key(pid) for _, pid in rows])
    for message_id, pid in rows:
        try:
            schedule_send(message_id, pid)
        except Exception:  # noqa: BLE001 - the sweeper picks the row up again
            logger.warning("could not enqueue held message %s; the sweeper will", message_id, exc_info=True)
    return len(rows)


# --- Order, window, retries ---------------------------------------------------------------------------------


def earlier_reply_queued(message: Message) -> bool:
    """Is an older reply of the same conversation still waiting to be sent? (Replies go out in queue order.)"""
    return (
        Message.objects.filter(
            conversation_id=message.conversation_id, direction=Message.Direction.OUT, status=Message.Status.QUEUED
        )
        .filter(Q(queued_at__lt=message.queued_at) | Q(queued_at=message.queued_at, pk__lt=message.pk))
        .exists()
    )


def batch_companions(message: Message, *, limit: int) -> list[Message]:
    """Other replies that may go out in the same provider call as `message`: `ready_batch` of its connection,
    without its own conversation (whose oldest queued reply is `message`)."""
    conversation = message.conversation
    return ready_batch(
        provider=conversation.provider,
        endpoint_id=conversation.contact.endpoint_id,
        limit=limit,
        exclude_conversation_id=conversation.pk,
    )


def ready_batch(
    *, provider: str, endpoint_id: str, limit: int, exclude_conversation_id: int | None = None
) -> list[Message]:
    """Replies of one connection (provider and endpoint) that may go out together now: queued, each the oldest
    queued reply of its conversation (so at most one per conversation and never ahead of an older one), with no
    task sending them and no retry waiting for them, oldest first. Each is claimed with its in-flight key (so no
    other task sends it meanwhile); the caller releases the keys.

    One query for the candidates, one cache read for their leases, one cache add per claim, one query to load
    the claimed rows still queued."""
    if limit <= 0:
        return []
    candidates = Message.objects.filter(
        direction=Message.Direction.OUT,
        status=Message.Status.QUEUED,
        conversation__provider=provider,
        conversation__contact__endpoint_id=endpoint_id,
    )
    if exclude_conversation_id is not None:
        candidates = candidates.exclude(conversation_id=exclude_conversation_id)
    if connection.vendor == "postgresql":
        # Each conversation's oldest queued reply by DISTINCT ON: one pass over the connection's queue and a sort,
        # whatever the planner believes. The NOT EXISTS form below became a nested loop comparing every queued reply
        # with every other (0.55 s for a queue of 400) whenever the table's statistics said nothing was queued —
        # as they do right after a burst, before autoanalyze (bench/README "Batched sends", sixth session).
        heads = candidates.order_by("conversation_id", "queued_at", "id").distinct("conversation_id").values("pk")
        ready = Message.objects.filter(pk__in=heads)
    else:
        older_queued = Message.objects.filter(
            conversation_id=OuterRef("conversation_id"), direction=Message.Direction.OUT, status=Message.Status.QUEUED
        ).filter(Q(queued_at__lt=OuterRef("queued_at")) | Q(queued_at=OuterRef("queued_at"), pk__lt=OuterRef("pk")))
        ready = candidates.filter(~Exists(older_queued))
    rows = list(ready.order_by("queued_at", "id").values_list("id", "provider_message_id")[: limit * 2])
    if not rows:
        return []
    keys = [key for _, pid in rows for key in (in_flight_key(pid), scheduled_key(pid))]
    leases = cache.get_many(keys)
    free = [
        (message_id, pid)
        for message_id, pid in rows
        if in_flight_key(pid) not in leases and leases.get(scheduled_key(pid)) in (None, ORDER_WAIT_MARK, SWEEP_MARK)
    ][:limit]
    return claim(free)


def claim(messages_ids: list[tuple[int, str]]) -> list[Message]:
    """Claim (in-flight key) these attempts — a retried batch's, or a ready batch's — and load those still
    queued. An attempt another task claimed meanwhile is left out."""
    won = add_leases([in_flight_key(pid) for _, pid in messages_ids], timeout=settings.OUTBOX_SEND_LEASE_SECONDS)
    return load_claimed([item for item, ok in zip(messages_ids, won, strict=True) if ok])


def add_leases(keys: list[str], *, timeout: float) -> list[bool]:
    """`cache.add(key, 1, timeout)` for each key, in one round trip where the cache is Django's Redis cache (a
    pipeline of SET NX EX, each as atomic as `cache.add`'s); one by one with any other cache. A batch claims up
    to 100 leases: one by one, each round trip also waits to take the GIL back from the worker's other threads.
    Uses the Redis backend's client and serializer (Django 5.x internals; tests/inbox/test_outbox_leases.py
    proves the keys are the ones `cache.get`/`cache.add` see)."""
    backend = caches["default"]
    ttl = backend.get_backend_timeout(timeout) if isinstance(backend, RedisCache) else None
    if not keys or not ttl:
        return [cache.add(key, 1, timeout=timeout) for key in keys]
    client = backend._cache.get_client(write=True)
    value = backend._cache._serializer.dumps(1)
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.set(backend.make_and_validate_key(key), value, ex=ttl, nx=True)
    return [bool(done) for done in pipe.execute()]


def load_claimed(claimed: list[tuple[int, str]]) -> list[Message]:
    """The claimed attempts still queued (an attempt sent, retried or failed meanwhile is released)."""
    if not claimed:
        return []
    rows = {
        m.pk: m
        for m in Message.objects.select_related("conversation__contact").filter(
            pk__in=[message_id for message_id, _ in claimed],
            direction=Message.Direction.OUT,
            status=Message.Status.QUEUED,
        )
    }
    found: list[Message] = []
    gone: list[str] = []
    for message_id, pid in claimed:
        row = rows.get(message_id)
        if row is not None and row.provider_message_id == pid:
            found.append(row)
        else:
            gone.append(in_flight_key(pid))
    if gone:
        cache.delete_many(gone)
    return found


def reply_window_seconds(conversation: Conversation, *, now: datetime) -> int:
    """What is left of the reply window, in whole seconds (0 when closed or never opened)."""
    closes_at = conversation.reply_window_closes_at()
    if closes_at is None:
        return 0
    return max(0, int((closes_at - now).total_seconds()))


def retry_countdown(tries: int, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter (half fixed, half random), at least Retry-After, capped."""
    delay = min(settings.OUTBOX_RETRY_MAX_DELAY_SECONDS, settings.OUTBOX_RETRY_BASE_SECONDS * 2**tries)
    countdown = delay / 2 + random.uniform(0, delay / 2)
    if retry_after is not None:
        countdown = max(countdown, retry_after)
    return min(countdown, settings.OUTBOX_RETRY_MAX_DELAY_SECONDS)


def next_retry_countdown(*, tries: int, started: datetime, retry_after: float | None) -> float | None:
    """Seconds before the next try of a call that failed `tries + 1` times, or None when the budget (tries or
    time since `started`) is spent."""
    countdown = retry_countdown(tries, retry_after)
    elapsed = (timezone.now() - started).total_seconds()
    if tries + 1 >= settings.OUTBOX_SEND_MAX_TRIES:
        return None
    if elapsed + countdown > settings.OUTBOX_SEND_BUDGET_SECONDS:
        return None
    return countdown


# --- Reports that overtake their message --------------------------------------------------------------------


def park_reports(reports: list[StatusReport]) -> None:
    """Keep reports for messages we do not have yet, each (message, status) once."""
    if not reports:
        return
    now = timezone.now()
    rows = [
        ParkedReport(
            channel=report.channel,
            provider_message_id=report.provider_message_id,
            status=report.status,
            at=report.at,
            provider_status=report.provider_status,
            error=report.error,
            endpoint_ids=None if report.endpoint_ids is None else list(report.endpoint_ids),
            received_at=now,
        )
        for report in reports
    ]
    ParkedReport.objects.bulk_create(rows, ignore_conflicts=True)


def apply_parked_reports(*, channel: str | None = None, provider_message_ids: list[str] | None = None) -> int:
    """Apply parked reports whose message now exists (called when a message gets its id, and periodically)."""
    from inbox.services.statuses import StatusOutcome, message_statuses_apply

    pending = ParkedReport.objects.filter(applied_at__isnull=True)
    if channel is not None:
        pending = pending.filter(channel=channel)
    if provider_message_ids is not None:
        pending = pending.filter(provider_message_id__in=provider_message_ids)
    parked = list(pending.order_by("received_at", "id")[:SWEEP_BATCH])
    if not parked:
        return 0
    reports = [
        StatusReport(
            channel=row.channel,
            provider_message_id=row.provider_message_id,
            status=row.status,
            at=row.at,
            provider_status=row.provider_status,
            error=row.error,
            endpoint_ids=None if row.endpoint_ids is None else tuple(row.endpoint_ids),
        )
        for row in parked
    ]
    with transaction.atomic():
        outcomes = message_statuses_apply(reports)
        done = [row.pk for row, outcome in zip(parked, outcomes, strict=True) if outcome != StatusOutcome.UNKNOWN]
        ParkedReport.objects.filter(pk__in=done).update(applied_at=timezone.now())
    return len(done)


def reconcile_accepted(*, older_than: timedelta | None = None, now: datetime | None = None) -> int:
    """Settle outbound messages that stayed *accepted* longer than `older_than` (RECONCILE_ACCEPTED_AFTER_SECONDS):
    their delivery report may be lost. Each provider is asked (`Backend.reconcile`) about its own messages; what
    it reports goes through the same forward-only ladder as a webhook's report, so a report arriving later, or
    twice, changes nothing. Messages older than RECONCILE_WINDOW_HOURS are no longer asked about (Infobip keeps
    logs for 48 hours). Returns how many messages moved."""
    from inbox.services.statuses import StatusOutcome, message_statuses_apply

    now = now or timezone.now()
    if older_than is None:
        older_than = timedelta(seconds=settings.RECONCILE_ACCEPTED_AFTER_SECONDS)
    stuck = list(
        Message.objects.filter(
            direction=Message.Direction.OUT,
            status=Message.Status.ACCEPTED,
            provider_message_id__isnull=False,
            accepted_at__lte=now - older_than,
            accepted_at__gte=now - timedelta(hours=settings.RECONCILE_WINDOW_HOURS),
        )
        .select_related("conversation__contact")
        .order_by("accepted_at", "id")[: settings.RECONCILE_BATCH]
    )
    by_provider: dict[str, list[Message]] = {}
    for message in stuck:
        by_provider.setdefault(message.conversation.provider, []).append(message)
    moved = 0
    for name, messages in by_provider.items():
        backend = providers.get(name)
        if backend is None:
            continue
        reports = backend.reconcile(messages)
        if reports:
            with transaction.atomic():
                outcomes = message_statuses_apply(reports)
            moved += sum(outcome == StatusOutcome.APPLIED for outcome in outcomes)
    if moved:
        logger.info("reconciliation moved %d message(s) that stayed accepted", moved)
    return moved
