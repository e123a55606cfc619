"""The webhook processor: applies the ledger's pending requests in batches (`manage.py process_webhooks`).

The webhook answers Infobip after one statement (WEBHOOK_PROCESSING=deferred, `store_pending`) that also
wakes the processors; this loop takes whatever is pending — one request when traffic is light, hundreds
under load — and applies it in one transaction through the backend of each row's provider
(`Backend.process_webhooks`; Infobip's is `tiktok_channel/infobip_webhooks.process_ledger`). Rows are claimed with
`FOR UPDATE SKIP LOCKED`, so several processors can share the work on PostgreSQL; a processor that dies
mid-batch leaves its rows pending for the next one, and every effect is idempotent.

The wake-up: on PostgreSQL a `pg_notify` inside the INSERT statement itself (delivered at commit, no extra
round trip; the processors LISTEN on a connection of their own), sent only while a processor is waiting for one
(a `WebhookWaiter` row: each waiting processor has its own); elsewhere (SQLite in development) a Redis PUBLISH after
the INSERT. It is only a hint: without it (a lost connection, Redis down) the loop still looks every `idle_wait`
seconds.

Why only then: a transaction that notified takes, at commit, a lock shared by the whole PostgreSQL cluster and keeps
it until its commit is on disk, so every notifying webhook request waited for the previous one's WAL flush: no
group commit (bench/README.md, "the ledger's fixed cost": 8 clients, ~1,500–2,400 INSERTs/s without a notification,
~310–930/s with one). A busy processor needs no wake-up (it takes the next batch as soon as it is done).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import threading
import time
from datetime import timedelta

import psycopg
import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from inbox import collector, domain_events, providers
from inbox.models import WEBHOOK_TROUBLE_VERDICTS, WebhookEvent

logger = logging.getLogger(__name__)
# Per batch, wall-clock times of its legs (bench/README.md "Ticks"); on with TRACE_LOG_LEVEL=DEBUG, off by default.
trace = logging.getLogger("inbox.trace")

_client: tuple[int, redis.Redis] | None = None
MAX_RESULTS_PER_BATCH = 5000
RECHECK_AFTER_RAISING = 0.05  # s: a webhook's statement that found no waiting processor has committed by then
LINGER_FULL_AT = 10  # requests in a batch from which the processor waits its whole linger before the next
NOTIFY_CHANNEL = "webhooks_pending"  # PostgreSQL notifications are per database already
# The webhook's statement notifies while some processor waits: a `WebhookWaiter` row exists (each waiting processor
# writes its own, in autocommit, so a busy processor removing its row leaves another's in place).
_NOTIFY_IF_WAITING = """
SELECT id, CASE WHEN EXISTS (SELECT FROM inbox_webhookwaiter) THEN pg_notify('webhooks_pending', '') END
FROM stored
"""
# A processor starts waiting: the rows of backends that are gone (killed processors) removed, its own written.
# A backend of another database role shows its pid but not its start to a role without pg_read_all_stats
# (`backend_start` is NULL): such a row is kept, or processors running as different roles would delete each other's.
_WAITER_ADD = """
DELETE FROM inbox_webhookwaiter w WHERE NOT EXISTS (
    SELECT FROM pg_stat_activity a
    WHERE a.pid = w.pid AND (a.backend_start = w.backend_start OR a.backend_start IS NULL)
);
INSERT INTO inbox_webhookwaiter (pid, backend_start)
SELECT pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()
ON CONFLICT (pid) DO UPDATE SET backend_start = EXCLUDED.backend_start
"""
_WAITER_REMOVE = "DELETE FROM inbox_webhookwaiter WHERE pid = pg_backend_pid()"
_INSERT_AND_NOTIFY = """
WITH stored AS (
    INSERT INTO inbox_webhookevent
        (provider, connection_id, path_kind, received_at, headers, body, result_count, verdict, summary, error,
         problems)
    VALUES (%s, %s, %s, %s, %s, %s, %s, 'pending', '{}', '', '[]')
    RETURNING id
)
"""  # noqa: S608 - constants only
_INSERT_AND_NOTIFY += _NOTIFY_IF_WAITING
# The same, stored only if the provider's guard (a FROM clause finding its cached connection's row, once, as it was
# loaded) finds it: one statement still. The guard is joined, not asked with `WHERE EXISTS (…)` (one plan node and
# the InitPlan fewer; the statement's PostgreSQL CPU before its commit −10 to −30 µs, bench/README.md, "tenth
# session, branch status6"). The casts: an INSERT … SELECT does not type its parameters from the columns.
_INSERT_GUARDED_AND_NOTIFY = """
WITH stored AS (
    INSERT INTO inbox_webhookevent
        (provider, connection_id, path_kind, received_at, headers, body, result_count, verdict, summary, error,
         problems)
    SELECT %s::text, %s::bigint, %s::text, %s::timestamptz, %s::jsonb, %s::text, %s::integer, 'pending', '{{}}', '',
           '[]'
    {guard}
    RETURNING id
)
""" + _NOTIFY_IF_WAITING.replace("{", "{{").replace("}", "}}")


def wake_channel() -> str:
    """One channel per database, so stacks sharing a Redis server do not wake each other."""
    return f"webhooks.pending.{settings.DATABASES['default']['NAME']}"


def _redis() -> redis.Redis:
    global _client
    if _client is None or _client[0] != os.getpid():  # a forked worker opens its own
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1.0, socket_connect_timeout=1.0)
        _client = (os.getpid(), client)
    return _client[1]


def wake_processor() -> None:
    """Tell the processors there is work; never fails the caller (they poll anyway)."""
    try:
        _redis().publish(wake_channel(), b"1")
    except redis.RedisError as exc:
        logger.warning("webhook processor not woken (it will poll): %r", exc)


def store_pending(
    *,
    provider: str,
    connection_id: int,
    path_kind: str,
    received_at,
    headers: dict,
    body: str,
    result_count: int,
    guard: tuple[str, list] | None = None,
) -> bool:
    """Store one webhook request as pending and wake the processors (the webhook's whole deferred write).

    With a `guard` (`(sql, params)`, a FROM clause finding one row; PostgreSQL only): only if it finds its row, in
    the same statement.
    Whether the request was stored."""
    if connection.vendor == "postgresql":
        # The hot path of every webhook: one hand-written statement, not the ORM's create() (half the time,
        # bench/README.md). The columns are WebhookEvent's; tests/tiktok_channel/test_processor.py checks them.
        params = [provider, connection_id, path_kind, received_at, json.dumps(headers), body, result_count]
        with connection.cursor() as cursor:
            if guard is None:
                cursor.execute(_INSERT_AND_NOTIFY, params)
                return True
            sql, guard_params = guard
            cursor.execute(_INSERT_GUARDED_AND_NOTIFY.format(guard=sql), [*params, *guard_params])
            return cursor.fetchone() is not None
    if guard is not None:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT EXISTS (SELECT 1 {guard[0]})", guard[1])
            if not cursor.fetchone()[0]:
                return False
    WebhookEvent.objects.create(
        provider=provider,
        connection_id=connection_id,
        path_kind=path_kind,
        received_at=received_at,
        headers=headers,
        body=body,
        result_count=result_count,
        verdict=WebhookEvent.Verdict.PENDING,
    )
    wake_processor()
    return True


# Not read by the claim: a pending row's summary and problems are empty and the verdict overwrites them, and applying
# a request never needs its headers; decoding the three JSON values was a third of the claim's CPU (bench/README.md,
# "ninth session, branch proc5"). They stay deferred fields: reading one loads it, as the ORM's `defer()` would.
CLAIM_DEFERRED = ("headers", "summary", "problems")


def _claim_statement() -> tuple[str, list]:
    """The claim of pending rows as SQL (`%s`: the batch size), and each column's converters: built once per
    process, not compiled by the ORM for every batch (bench/README.md, "Ingest 1/POST: the fixed cost")."""
    global _claim
    if _claim is None:
        table = WebhookEvent._meta.db_table
        fields = [field for field in WebhookEvent._meta.concrete_fields if field.name not in CLAIM_DEFERRED]
        quote = connection.ops.quote_name
        columns = ", ".join(quote(field.column) for field in fields)
        converters = []
        for field in fields:
            column = field.get_col(table)
            converters.append((connection.ops.get_db_converters(column) + field.get_db_converters(connection), column))
        # Never queue behind a table lock (a migration, a TRUNCATE) while holding ours: that can deadlock the other
        # side. Give up quickly instead; the loop tries again. Three statements, one round trip.
        # And the batch's commit does not wait for its WAL to reach the disk (a flush per batch, in every live
        # tick's path): the ledger rows' verdicts are in the same transaction, so a commit lost to a crash of
        # PostgreSQL leaves them pending and they are applied again, and every effect is idempotent. The
        # webhook's own INSERT, the row that must not be lost, stays synchronous.
        select = f"SELECT {columns} FROM {quote(table)} WHERE verdict = 'pending'"  # noqa: S608 - the model's names
        claim = f"{select} ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED"
        settings_sql = "SELECT set_config('lock_timeout', '200ms', true), set_config('synchronous_commit', 'off', true)"
        sql = f"{settings_sql}; {claim}; SET LOCAL lock_timeout = DEFAULT"
        _claim = (sql, [field.attname for field in fields], converters)
    return _claim


_claim: tuple | None = None


def _claim_pending(batch_size: int) -> list[WebhookEvent]:
    """Lock up to `batch_size` pending rows, oldest first, skipping rows another processor holds."""
    if connection.vendor != "postgresql":
        return list(
            WebhookEvent.objects.select_for_update(skip_locked=True)
            .defer(*CLAIM_DEFERRED)
            .filter(verdict=WebhookEvent.Verdict.PENDING)
            .order_by("pk")[:batch_size]
        )
    sql, names, converters = _claim_statement()
    with connection.cursor() as cursor:
        cursor.execute(sql, [batch_size])
        cursor.nextset()  # the claim's rows (the first result is set_config's)
        rows = cursor.fetchall()
        cursor.nextset()
    claimed = []
    for row in rows:
        values = []
        for value, (functions, column) in zip(row, converters, strict=True):
            for function in functions:
                value = function(value, column, connection)  # noqa: PLW2901 - converted in place, as the ORM does
            values.append(value)
        claimed.append(WebhookEvent.from_db(connection.alias, names, values))
    return claimed


class RedoSeparately(Exception):  # noqa: N818 - a request to the processor, not an error to report
    """Raised by a provider's `process_webhooks` whose all-together apply failed (`redo_allowed()`): the processor
    rolls the whole batch back and takes the rows again with `redo_allowed()` false, where the provider applies each
    request on its own (behind a savepoint) so that a failure is recorded against its request."""


_redo_allowed: contextvars.ContextVar[bool] = contextvars.ContextVar("redo_allowed", default=False)


def redo_allowed() -> bool:
    """In the processor's first try at a batch: a provider may apply the batch without a savepoint of its own and
    raise `RedoSeparately` if that fails (the batch is then rolled back and redone). Elsewhere (the inline webhook,
    a replay, the second try) it must keep a failure to its request itself."""
    return _redo_allowed.get()


def drain_once(batch_size: int, max_results: int = MAX_RESULTS_PER_BATCH) -> int:
    """Apply up to `batch_size` pending requests (and about `max_results` results) in one transaction;
    returns how many requests.

    The first try applies the batch all together without a savepoint (two round trips a batch fewer: the usual
    case); if a provider asks for it (`RedoSeparately`), the transaction is rolled back and the pending rows are
    taken again, each request then applied on its own."""
    token = _redo_allowed.set(True)
    try:
        return _drain_once(batch_size, max_results)
    except RedoSeparately:
        logger.warning("webhook batch rolled back; applying its requests one at a time")
    finally:
        _redo_allowed.reset(token)
    return _drain_once(batch_size, max_results)


def _drain_once(batch_size: int, max_results: int) -> int:
    tracing = trace.isEnabledFor(logging.DEBUG)
    times = {"start": time.time()} if tracing else {}
    # The batch's objects (ledger rows, decoded bodies, parsed results) with the cyclic collector paused, as the
    # intake and the subscribers already run (inbox.collector).
    with collector.paused(), transaction.atomic():
        if tracing:  # the first on-commit callback: the commit itself, before the subscribers run
            transaction.on_commit(lambda: times.setdefault("committed", time.time()))
        claimed = _claim_pending(batch_size)
        # Infobip batches up to 2,000 results per request: keep a transaction (and this process) to a
        # bounded size. The requests not taken stay pending for the next batch.
        if tracing:
            times["claimed"] = time.time()
        events, results = [], 0
        for event in claimed:
            if events and results + event.result_count > max_results:
                break
            events.append(event)
            results += event.result_count
        if events:
            apply_ledger(events)
            # Writes that must commit with the batch (the report roll-ups' marks) join it: one commit, not two.
            domain_events.run_before_commit()
            if tracing:
                times["applied"] = time.time()
    if tracing and events:
        times["done"] = time.time()  # the subscribers (live hand-off, roll-ups, automation) ran
        trace.debug("batch %s", json.dumps({"ledger": [event.pk for event in events], **times}))
    return len(events)


def apply_ledger(events: list[WebhookEvent]) -> None:
    """Hand each provider its rows (in claim order); the caller holds the transaction. A row whose provider is
    not installed is marked failed with the reason (replayable once it is)."""
    by_provider: dict[str, list[WebhookEvent]] = {}
    for event in events:
        by_provider.setdefault(event.provider, []).append(event)
    for name, rows in by_provider.items():
        backend = providers.get(name)
        if backend is None:
            WebhookEvent.objects.filter(pk__in=[row.pk for row in rows]).update(
                verdict=WebhookEvent.Verdict.FAILED, error=f"no provider {name!r} is installed"
            )
            continue
        backend.process_webhooks(rows)


def drain(batch_size: int = 200) -> int:
    """Apply everything pending now; returns how many requests."""
    total = 0
    while n := drain_once(batch_size):
        total += n
    return total


class Processor:
    """The loop of `manage.py process_webhooks`; `stop()` ends it after the batch in hand."""

    def __init__(self, *, batch_size: int = 200, idle_wait: float = 1.0, linger: float = 0.02) -> None:
        self.batch_size = batch_size
        self.idle_wait = idle_wait
        # After a batch of several requests (there is load), wait up to this long before the next: the next batch
        # is then larger, and a batch costs about the same dozen statements whatever its size (`linger_after`).
        self.linger = linger
        self.stopping = threading.Event()
        self.pubsub = None
        self.listener: psycopg.Connection | None = None
        self.waiting_row = False  # this processor's WebhookWaiter row is written (on the listener's backend)

    def stop(self) -> None:
        self.stopping.set()

    def linger_after(self, n: int) -> float:
        """The wait after a batch of `n` requests: none after one (light traffic, a live tick, is applied as soon as
        it arrives) or after a full batch (more is waiting); in between it grows with the batch, the whole linger
        from LINGER_FULL_AT requests on. A few requests that piled up while the previous batch ran are not load:
        waiting the whole linger after them held every live tick of a slowed processor for 20 ms more."""
        if n <= 1 or n >= self.batch_size:
            return 0.0
        return self.linger * min(1.0, n / LINGER_FULL_AT)

    def run(self) -> None:
        logger.info("webhook processor: started (batch %d, channel %s)", self.batch_size, wake_channel())
        while not self.stopping.is_set():
            try:
                if n := drain_once(self.batch_size):
                    if n > 1:  # load: the next batch is taken without waiting, so the webhooks need not wake us
                        self._set_waiting(False)
                    if wait := self.linger_after(n):
                        self.stopping.wait(wait)
                    continue
            except (OperationalError, InterfaceError) as exc:
                logger.warning("webhook processor: database unavailable, retrying: %r", exc)
                connection.close()  # a fresh connection next time
                self.stopping.wait(self.idle_wait)
                continue
            self._wait()
        if self.pubsub is not None:
            self.pubsub.close()
        if self.listener is not None:
            self._set_waiting(False)  # nobody here waits any more (the row would go with the backend anyway)
            self.listener.close()
        connection.close()
        logger.info("webhook processor: stopped")

    def _wait(self) -> None:
        """Until a wake-up arrives or `idle_wait` passes; wake-ups that piled up are consumed together."""
        if connection.vendor == "postgresql":
            self._wait_notify()
        else:
            self._wait_publish()

    @property
    def listening(self) -> bool:
        """Wake-ups reach this processor (tests wait for it before posting)."""
        return (self.listener is not None and not self.listener.closed and self.waiting_row) or (
            self.pubsub is not None and self.pubsub.subscribed
        )

    def _set_waiting(self, waiting: bool) -> None:
        """This processor's `WebhookWaiter` row (PostgreSQL): there while it waits for a wake-up, gone while it works
        under load. Other processors' rows are theirs."""
        if self.listener is None or self.listener.closed or self.waiting_row == waiting:
            return
        try:
            self.listener.execute(_WAITER_ADD if waiting else _WAITER_REMOVE)
        except psycopg.Error as exc:  # a hint only; the wait below repairs the connection
            logger.warning("webhook processor: waiting row not %s: %r", "written" if waiting else "removed", exc)
            return
        self.waiting_row = waiting
        logger.debug("webhook processor: %s", "waiting" if waiting else "busy (no wake-ups needed)")

    def _pending_now(self) -> bool:
        table = connection.ops.quote_name(WebhookEvent._meta.db_table)
        query = f"SELECT EXISTS (SELECT 1 FROM {table} WHERE verdict = 'pending')"  # noqa: S608 - the model's name
        return self.listener.execute(query).fetchone()[0]

    def _wait_notify(self) -> None:
        try:
            if self.listener is None or self.listener.closed:
                params = connection.get_connection_params()
                params.pop("cursor_factory", None)
                self.listener = psycopg.connect(**params, autocommit=True)
                self.listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
                self.waiting_row = False
            recheck_at = None
            if not self.waiting_row:
                # A webhook whose statement found no waiting processor sends no wake-up: look once now (it
                # committed) and once shortly after (it was committing), then rely on the notifications.
                self._set_waiting(True)
                if self._pending_now():
                    return
                recheck_at = time.monotonic() + RECHECK_AFTER_RAISING
            deadline = time.monotonic() + self.idle_wait
            while not self.stopping.is_set() and (left := deadline - time.monotonic()) > 0:
                timeout = min(left, 0.25) if recheck_at is None else max(0.0, min(left, recheck_at - time.monotonic()))
                if any(True for _ in self.listener.notifies(timeout=timeout, stop_after=1)):
                    for _ in self.listener.notifies(timeout=0):
                        pass
                    return
                if recheck_at is not None and time.monotonic() >= recheck_at:
                    recheck_at = None
                    if self._pending_now():
                        return
        except psycopg.Error as exc:
            logger.warning("webhook processor: no wake-ups from PostgreSQL, polling: %r", exc)
            if self.listener is not None:
                self.listener.close()
            self.listener = None
            self.waiting_row = False  # its row goes with the backend (the next processor to wait removes it)
            self.stopping.wait(self.idle_wait)

    def _wait_publish(self) -> None:
        try:
            if self.pubsub is None:
                self.pubsub = _redis().pubsub(ignore_subscribe_messages=True)
                self.pubsub.subscribe(wake_channel())
            deadline = time.monotonic() + self.idle_wait
            while not self.stopping.is_set() and (left := deadline - time.monotonic()) > 0:
                if self.pubsub.get_message(timeout=min(left, 0.25)) is not None:
                    while self.pubsub.get_message(timeout=0) is not None:
                        pass
                    return
        except redis.RedisError as exc:
            logger.warning("webhook processor: no wake-ups from Redis, polling: %r", exc)
            if self.pubsub is not None:
                try:
                    self.pubsub.close()
                except redis.RedisError:
                    pass
            self.pubsub = None
            self.stopping.wait(self.idle_wait)


PRUNE_CHUNK = 5000


def ledger_prune(now=None, chunk: int = PRUNE_CHUNK) -> int:
    """Delete applied ledger rows older than `WEBHOOK_LEDGER_KEEP_DAYS` and those worth a look (partial, rejected,
    failed) older than `WEBHOOK_LEDGER_KEEP_TROUBLE_DAYS`; never a pending row. In chunks of `chunk` rows, each its
    own short transaction (no long lock on a busy table). The effects of a request live in the messages, not here:
    a redelivery after its row is gone is still stored once (the messages' own keys). Returns the rows deleted."""
    now = now or timezone.now()
    rules = [
        (~Q(verdict__in=[*WEBHOOK_TROUBLE_VERDICTS, WebhookEvent.Verdict.PENDING]), settings.WEBHOOK_LEDGER_KEEP_DAYS),
        (Q(verdict__in=WEBHOOK_TROUBLE_VERDICTS), settings.WEBHOOK_LEDGER_KEEP_TROUBLE_DAYS),
    ]
    deleted = 0
    for condition, days in rules:
        old = WebhookEvent.objects.filter(condition, received_at__lt=now - timedelta(days=days))
        while ids := list(old.order_by().values_list("pk", flat=True)[:chunk]):
            deleted += WebhookEvent.objects.filter(pk__in=ids).delete()[0]
    if deleted:
        logger.info("webhook ledger: %d rows past their keeping time deleted", deleted)
    return deleted
