"""The health of an Infobip account's connection: what arrived, what was sent, what went wrong.

Recording is cheap and never fails the caller: one Redis write (the cache) per batch of authenticated webhook
requests the processor applies (each kind's latest arrival time, the ledger's `received_at`, "any" being the latest
of them; at most one per INFOBIP_HEALTH_RECORD_EVERY_SECONDS per kind and process if set), one per refused signature
(a per-minute counter), one per failed send or setup step (the last error). Everything else is read from the
database when the page is shown: the last send Infobip accepted and the messages still waiting in *accepted*.

Red: a send Infobip accepted has waited longer than `INFOBIP_HEALTH_SILENCE_SECONDS` with no webhook of any kind
arriving since — what a broken subscription or profile looks like; or webhook requests stored longer ago than that
are still waiting for the processor; or the last setup failed.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Max, Min
from django.utils import timezone

from inbox.models import Message, WebhookEvent
from tiktok_channel.infobip_webhooks import DELIVERY, INBOUND, SEEN, classify
from tiktok_channel.models import PROVIDER, InfobipAccount

logger = logging.getLogger(__name__)

KINDS = (INBOUND, DELIVERY, SEEN)
KEEP_SECONDS = 90 * 24 * 3600
SIGNATURE_WINDOW_MINUTES = 60
GREEN, WARNING, RED, WAITING = "green", "warning", "red", "waiting"


def record_every_seconds() -> float:
    """`INFOBIP_HEALTH_RECORD_EVERY_SECONDS`: a webhook's arrival is written at most this often per kind and process
    (0, the default: every arrival). With Django's cache building a redis-py client per call the write was a third of
    the webhook's CPU (bench/README.md, "Ingest 1/POST: the fixed cost"); with `config.cache.RedisCache` it is much
    cheaper, and an interval makes the verdict blind to a send accepted within it after the recorded arrival when
    no webhook comes after (a subscription that breaks right then), so it is off unless set."""
    return settings.INFOBIP_HEALTH_RECORD_EVERY_SECONDS


_recorded: dict[str, float] = {}  # cache key → time.monotonic() of this process's last write


def _key(account_id: int, name: str) -> str:
    return f"infobip:health:{account_id}:{name}"


def forget(account_id: int) -> None:
    """Drop what was recorded for an account (its timestamps, errors, signature-failure buckets)."""
    minute = int(time.time() // 60)
    names = [f"webhook:{kind}" for kind in ("any", *KINDS)] + ["error", "test"]
    names += [f"badsig:{minute - n}" for n in range(SIGNATURE_WINDOW_MINUTES + 2)]
    keys = [_key(account_id, name) for name in names]
    for key in keys:
        _recorded.pop(cache.make_key(key), None)
    _safely("a reset", lambda: cache.delete_many(keys))


def _safely(what: str, call) -> None:
    try:
        call()
    except Exception:  # noqa: BLE001 - health is a side note: never fail a webhook or a send over it
        logger.warning("health: could not record %s", what, exc_info=True)


def record_arrivals(requests) -> None:
    """Authenticated webhook requests arrived, as (account id, received at, results): for each account, the time of
    the latest request carrying each kind of result (for "any" only of requests carrying none of the known kinds:
    the page's "any" is the latest of all, `account_health`). Called by `process_ledger` for each batch it applies
    (the processor's, or the inline path's one request): one Redis SET for a batch of one account and kind, as
    Infobip sends them.

    An empty `results` (Infobip never sends one; our own webhook test does) is not an arrival."""
    every, moment = record_every_seconds(), time.monotonic()
    latest: dict[str, float] = {}
    for account_id, received_at, results in requests:
        if not results:
            continue
        at = received_at.timestamp()
        kinds = {classify(r) for r in results if isinstance(r, dict)} & set(KINDS)
        for kind in kinds or ("any",):
            key = _key(account_id, f"webhook:{kind}")
            if at > latest.get(key, 0.0):
                latest[key] = at
    values = {}
    for key, at in latest.items():
        full_key = cache.make_key(key)  # the prefix too: two caches (tests) do not share what was written
        if not every or moment - _recorded.get(full_key, -every) >= every:
            values[key] = at
            _recorded[full_key] = moment
    if len(values) == 1:  # one command, not a MULTI / EXEC pipeline of a SET and an EXPIRE per key
        [(key, value)] = values.items()
        _safely("a webhook", lambda: cache.set(key, value, KEEP_SECONDS))
    elif values:
        _safely("a webhook", lambda: cache.set_many(values, KEEP_SECONDS))


def record_signature_failure(account_id: int) -> None:
    bucket = _key(account_id, f"badsig:{int(time.time() // 60)}")

    def count() -> None:
        cache.add(bucket, 0, (SIGNATURE_WINDOW_MINUTES + 2) * 60)
        cache.incr(bucket)

    _safely("a signature failure", count)


def record_error(account_id: int, error: dict, *, where: str) -> None:
    """The last error from Infobip (a refused send, a failed setup step), for the health page."""
    value = json.dumps(
        {
            "at": time.time(),
            "where": where,
            "name": str(error.get("name") or ""),
            "description": str(error.get("description") or "")[:500],
        }
    )
    _safely("an error", lambda: cache.set(_key(account_id, "error"), value, KEEP_SECONDS))


def record_test(account_id: int, outcome: dict) -> None:
    value = json.dumps({"at": time.time(), **outcome})
    _safely("a webhook test", lambda: cache.set(_key(account_id, "test"), value, KEEP_SECONDS))


def _moment(value) -> datetime | None:
    return datetime.fromtimestamp(float(value), tz=timezone.get_current_timezone()) if value else None


def account_health(account: InfobipAccount) -> dict:
    """Everything the health page shows, and the verdict: green, warning, red, or waiting (nothing yet)."""
    now = timezone.now()
    silence = timedelta(seconds=settings.INFOBIP_HEALTH_SILENCE_SECONDS)
    minute = int(time.time() // 60)
    names = [f"webhook:{kind}" for kind in ("any", *KINDS)] + ["error", "test"]
    names += [f"badsig:{minute - n}" for n in range(SIGNATURE_WINDOW_MINUTES)]
    try:
        stored = cache.get_many([_key(account.pk, name) for name in names])
    except Exception:  # noqa: BLE001 - the page still shows what the database knows
        logger.warning("health: cache unavailable", exc_info=True)
        stored = {}

    def get(name: str):
        return stored.get(_key(account.pk, name))

    last_webhook = {kind: _moment(get(f"webhook:{kind}")) for kind in ("any", *KINDS)}
    arrivals = [moment for moment in last_webhook.values() if moment]
    last_webhook["any"] = max(arrivals) if arrivals else None  # any kind, known or not
    error = json.loads(get("error")) if get("error") else None
    if error:
        error["at"] = _moment(error["at"])
    test = json.loads(get("test")) if get("test") else None
    if test:
        test["at"] = _moment(test["at"])
    bad_signatures = sum(int(get(f"badsig:{minute - n}") or 0) for n in range(SIGNATURE_WINDOW_MINUTES))

    endpoints = list(account.senders.values_list("business_account_id", flat=True))
    # An outbound row's own endpoint_id is not set; its conversation's contact says which sender it went from.
    sent = Message.objects.filter(
        direction=Message.Direction.OUT,
        conversation__provider=PROVIDER,
        conversation__contact__endpoint_id__in=endpoints,
    )
    last_accepted = sent.aggregate(at=Max("accepted_at"))["at"]
    stuck = sent.filter(status=Message.Status.ACCEPTED, accepted_at__lt=now - silence)
    unanswered = sent.filter(accepted_at__isnull=False)
    if last_webhook["any"]:
        # A webhook may have arrived up to INFOBIP_HEALTH_RECORD_EVERY_SECONDS after the recorded time.
        unanswered = unanswered.filter(accepted_at__gt=last_webhook["any"] + timedelta(seconds=record_every_seconds()))
    oldest_unanswered = unanswered.aggregate(at=Min("accepted_at"))["at"]

    problems: list[str] = []
    warnings: list[str] = []
    if oldest_unanswered and now - oldest_unanswered > silence:
        problems.append(
            f"Infobip accepted a send at {oldest_unanswered:%Y-%m-%d %H:%M:%S} and no webhook has arrived since "
            f"(more than {settings.INFOBIP_HEALTH_SILENCE_SECONDS} s): check the subscription and notification "
            "profile in Infobip (run Set up again)."
        )
    # Arrivals are recorded by the processor as it applies them: requests stored but not applied for the whole
    # silence mean the processor is down or far behind (the arrival times above then stop moving too).
    waiting = WebhookEvent.objects.filter(
        verdict=WebhookEvent.Verdict.PENDING, provider=PROVIDER, connection_id=account.pk, received_at__lt=now - silence
    ).count()
    if waiting:
        problems.append(
            f"{waiting} webhook request(s) stored more than {settings.INFOBIP_HEALTH_SILENCE_SECONDS} s ago are not "
            "applied yet: check that the webhook processor (manage.py process_webhooks) is running."
        )
    if account.setup_state == InfobipAccount.SetupState.FAILED:
        problems.append(f"The last setup failed: {account.setup_message}")
    confirmed = bool(
        account.setup_state == InfobipAccount.SetupState.PARTIAL
        and account.setup_at
        and last_webhook["any"]
        and last_webhook["any"] > account.setup_at
    )
    if account.setup_state == InfobipAccount.SetupState.PARTIAL and not confirmed:
        warnings.append(account.setup_message)
    if bad_signatures:
        warnings.append(f"{bad_signatures} webhook request(s) failed the signature check in the last hour.")
    stuck_count = stuck.count()
    if stuck_count:
        warnings.append(f"{stuck_count} message(s) stuck in accepted for more than {int(silence.total_seconds())} s.")

    if problems:
        state = RED
    elif warnings:
        state = WARNING
    elif last_webhook["any"]:
        state = GREEN
    else:
        state = WAITING
    return {
        "state": state,
        "problems": problems,
        "warnings": warnings,
        "last_webhook": last_webhook,
        "last_send_accepted": last_accepted,
        "last_error": error,
        "last_test": test,
        "bad_signatures_last_hour": bad_signatures,
        "stuck_in_accepted": stuck_count,
        "waiting_to_be_applied": waiting,
        "silence_seconds": settings.INFOBIP_HEALTH_SILENCE_SECONDS,
        # A partial setup (the subscription finished in Infobip's portal) that events have since confirmed.
        "partial_confirmed": confirmed,
    }
