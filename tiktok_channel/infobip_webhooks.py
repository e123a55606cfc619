"""Infobip's webhooks: their results parsed into `inbox.events` types, the account and sender lookups, and the
processing of the ledger (`WebhookEvent`) through the core's batch services (`inbox.services`).

Each item of `results[]` is classified by its shape (no field names the kind): an inbound message
has a `message` object, a delivery report a `status`/`error`/`doneAt`, a seen report a `seenAt`.
A result of the wrong shape is kept in the ledger with its reason (invalid), one of no kind we know
as unrecognized; neither stops the others.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import InterfaceError, OperationalError, transaction
from django.db import connection as db_connection
from django.db.models.expressions import RawSQL
from django.utils import timezone

from inbox import processor
from inbox.db import update_from, update_rows
from inbox.events import InboundMessage, StatusReport
from inbox.models import Message, WebhookEvent
from inbox.outbox import park_reports
from inbox.services import StatusOutcome, message_statuses_apply, messages_receive
from tiktok_channel.models import CHANNEL, PROVIDER, InfobipAccount, TikTokSender

logger = logging.getLogger(__name__)

INBOUND, DELIVERY, SEEN = "inbound", "delivery", "seen"
# Results kept in the ledger (`WebhookEvent.problems`) but not applied: a wrong shape or wrong types, or a shape
# the spec allows that we do not understand. Neither stops the other results of the body.
INVALID, UNRECOGNIZED = "invalid", "unrecognized"

MESSAGE_TYPES = {
    "TEXT": Message.Type.TEXT,
    "IMAGE": Message.Type.IMAGE,
    "SHARE_POST": Message.Type.SHARE_POST,
    "REACTION": Message.Type.REACTION,
    "REFERRAL_AD": Message.Type.REFERRAL,
    "REFERRAL_SHORT_LINK": Message.Type.REFERRAL,
}

# Delivery report status groups (Infobip groupName) → our delivery status.
STATUS_GROUPS = {
    "PENDING": Message.Status.ACCEPTED,
    "ACCEPTED": Message.Status.ACCEPTED,
    "DELIVERED": Message.Status.DELIVERED,
    "UNDELIVERABLE": Message.Status.FAILED,
    "EXPIRED": Message.Status.FAILED,
    "REJECTED": Message.Status.FAILED,
}
STATUS_GROUP_IDS = {0: "ACCEPTED", 1: "PENDING", 2: "UNDELIVERABLE", 3: "DELIVERED", 4: "EXPIRED", 5: "REJECTED"}
# Infobip refused a repeated destinations[].messageId: the earlier attempt went through, nothing failed.
DUPLICATE_MESSAGE_ID = "REJECTED_DUPLICATE_MESSAGE_ID"


# Per-process caches of the two lookups every webhook request makes. Only hits are cached, so a new account or
# sender works at once. Saving or deleting one clears them in this process.
# An account is cached with the identity of its row version (PostgreSQL's `ctid`, `xmin`): the webhook stores a
# request only if that version is still the row's (`account_guard`, checked inside the ledger's INSERT), so a rotated
# secret, a deactivation or a deletion by any process counts from the next request on. Senders (used by the
# processor to route inbound messages) are seen within LOOKUP_TTL_SECONDS.
LOOKUP_TTL_SECONDS = 30.0
_accounts: dict[str, InfobipAccount] = {}
_sender_inboxes: dict[tuple[int, str], tuple[float, int]] = {}
_ROW_VERSION = "ctid::text || ' ' || xmin::text"


def account_for_token(token: str, *, fresh: bool = False) -> InfobipAccount | None:
    """The active account whose webhook URL carries `token`, or None. From this process's cache unless `fresh`
    (on PostgreSQL; elsewhere always from the database: there is no row version to guard the cache with)."""
    if not fresh:
        cached = _accounts.get(token)
        if cached is not None:
            return cached
    accounts = InfobipAccount.objects.filter(webhook_token=token, active=True)
    postgresql = db_connection.vendor == "postgresql"
    if postgresql:
        accounts = accounts.annotate(row_version=RawSQL(_ROW_VERSION, []))  # noqa: S611 - constant SQL
    account = accounts.first()
    if account is None or not postgresql:
        _accounts.pop(token, None)
    else:
        _accounts[token] = account
    return account


def account_guard(account: InfobipAccount) -> tuple[str, list] | None:
    """A FROM clause (with its WHERE) that finds the account's row, once, only while it is the version
    `account_for_token` loaded (and active)."""
    version = getattr(account, "row_version", None)
    if version is None:
        return None
    ctid, xmin = version.split(" ")
    table = InfobipAccount._meta.db_table
    # ctid and xmin together: within one transaction (a test's) an update keeps xmin but moves the row (new ctid);
    # a slot reused after VACUUM belongs to a later transaction (new xmin).
    return (
        f"FROM {table} WHERE ctid = %s::tid AND xmin = %s::xid AND id = %s AND active",  # noqa: S608
        [ctid, xmin, account.pk],
    )


def inbox_for_sender(account_id: int, business_account_id: str) -> int | None:
    """The inbox of this account's active sender `business_account_id`, or None."""
    key = (account_id, business_account_id)
    now = time.monotonic()
    cached = _sender_inboxes.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    inbox_id = (
        TikTokSender.objects.filter(account_id=account_id, business_account_id=business_account_id, active=True)
        .values_list("inbox_id", flat=True)
        .first()
    )
    if inbox_id is not None:
        _sender_inboxes[key] = (now + LOOKUP_TTL_SECONDS, inbox_id)
    return inbox_id


def endpoints_of_accounts(account_ids: set[int]) -> dict[int, tuple[str, ...]]:
    """Each account's senders' business account ids (active or not: a report may come after a deactivation), in
    one query. Not cached: a report must never be refused because a sender added elsewhere is not seen yet."""
    endpoints: dict[int, list[str]] = {account_id: [] for account_id in account_ids}
    if account_ids:
        if db_connection.vendor == "postgresql":  # a constant statement, not compiled by the ORM for every batch
            with db_connection.cursor() as cursor:
                cursor.execute(_ENDPOINTS_SQL, [sorted(account_ids)])
                rows = cursor.fetchall()
        else:
            rows = (
                TikTokSender.objects.filter(account_id__in=account_ids)
                .values_list("account_id", "business_account_id")
                .order_by("account_id", "business_account_id")
            )
        for account_id, business_account_id in rows:
            endpoints[account_id].append(business_account_id)
    return {account_id: tuple(ids) for account_id, ids in endpoints.items()}


_ENDPOINTS_SQL = (
    f"SELECT account_id, business_account_id FROM {TikTokSender._meta.db_table} "  # noqa: S608 - the model's name
    "WHERE account_id = ANY(%s::bigint[]) ORDER BY 1, 2"
)


def clear_lookup_caches(**_kwargs) -> None:
    _accounts.clear()
    _sender_inboxes.clear()


class PayloadError(ValueError):
    """The body is not a webhook payload at all (not a JSON object with a `results` array); the message is the
    400 reason. One bad result is not this: it is kept with its reason and the others are applied."""


class ResultError(ValueError):
    """One result has the wrong shape or wrong types; the message is the reason kept in the ledger."""


def parse_body(body: bytes) -> list:
    """The `results` of a webhook body, each still to be checked (`triage`)."""
    # PostgreSQL cannot store U+0000 in text or jsonb: turn it into U+FFFD before it reaches any column.
    body = body.replace(b"\\u0000", b"\\ufffd")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise PayloadError("body is not valid JSON") from None
    if not isinstance(data, dict):
        raise PayloadError("body must be a JSON object")
    results = data.get("results")
    if results is None:
        raise PayloadError("missing 'results'")
    if not isinstance(results, list):
        raise PayloadError("'results' must be an array")
    return results


def classify(item: dict) -> str:
    if "message" in item:
        return INBOUND
    if "seenAt" in item:
        return SEEN
    if any(key in item for key in ("status", "error", "doneAt")):
        return DELIVERY
    return UNRECOGNIZED


def triage(item) -> tuple[str, str]:
    """The kind of one result, and for one we cannot apply the reason: (INVALID, why) for a wrong shape or
    wrong types, (UNRECOGNIZED, why) for a shape the spec allows but we do not understand."""
    if not isinstance(item, dict):
        return INVALID, "must be an object"
    kind = classify(item)
    try:
        if kind == INBOUND:
            _check_inbound(item)
        elif kind in (DELIVERY, SEEN):
            _check_report(item)
    except ResultError as exc:
        return INVALID, str(exc)
    if kind == INBOUND and item["message"].get("type") is None:
        return UNRECOGNIZED, "a message without a type"
    if kind == UNRECOGNIZED:
        return UNRECOGNIZED, "neither a message nor a delivery or seen report"
    return kind, ""


# The longest value each stored field takes (the columns it lands in): longer is a result we cannot store, kept
# unapplied with its reason instead of failing the whole request in the database.
ID_MAX_CHARS = 200  # messageId, sender, to, conversationId, context.id
URL_MAX_CHARS = 2048
MESSAGE_FIELD_MAX_CHARS = {
    "conversationId": ID_MAX_CHARS,
    "mediaUrl": URL_MAX_CHARS,
    "aiEmojiUrl": URL_MAX_CHARS,
    "embedUrl": URL_MAX_CHARS,
    "emoji": 64,
    "action": 16,
}


def _expect(item: dict, key: str, types: type | tuple, *, required: bool = False, max_chars: int = 0) -> None:
    value = item.get(key)
    if value is None:
        if required:
            raise ResultError(f"{key} is required")
        return
    if not isinstance(value, types) or isinstance(value, bool) and types is not bool:
        raise ResultError(f"{key} has the wrong type")
    if max_chars and len(value) > max_chars:
        raise ResultError(f"{key} is longer than {max_chars} characters")


def _check_inbound(item: dict) -> None:
    for key in ("messageId", "sender", "to"):
        _expect(item, key, str, required=True, max_chars=ID_MAX_CHARS)
    _expect(item, "receivedAt", str)
    _expect(item, "callbackData", str)
    message = item["message"]
    if not isinstance(message, dict):
        raise ResultError("message must be an object")
    if message.get("type") is not None and not isinstance(message["type"], str):
        raise ResultError("message.type must be a string")
    for key in (
        "text",
        "mediaUrl",
        "embedUrl",
        "conversationId",
        "emoji",
        "aiEmojiUrl",
        "action",
        "ref",
        "prefilledMessage",
        "adId",
        "adName",
        "advertiserId",
    ):
        value = message.get(key)
        if value is not None and not isinstance(value, str):
            raise ResultError(f"message.{key} has the wrong type")
        if value is not None and key in MESSAGE_FIELD_MAX_CHARS and len(value) > MESSAGE_FIELD_MAX_CHARS[key]:
            raise ResultError(f"message.{key} is longer than {MESSAGE_FIELD_MAX_CHARS[key]} characters")
    for key in ("context", "referral"):
        if message.get(key) is not None and not isinstance(message[key], dict):
            raise ResultError(f"message.{key} must be an object")
    context_id = (message.get("context") or {}).get("id")
    if context_id is not None and (not isinstance(context_id, str) or len(context_id) > ID_MAX_CHARS):
        raise ResultError(f"message.context.id must be a string of at most {ID_MAX_CHARS} characters")


def _check_report(item: dict) -> None:
    _expect(item, "messageId", str, max_chars=ID_MAX_CHARS)
    for key in ("sentAt", "doneAt", "seenAt", "callbackData", "bulkId"):
        _expect(item, key, str)
    for key in ("status", "error"):
        if item.get(key) is not None and not isinstance(item[key], dict):
            raise ResultError(f"{key} must be an object")


def parse_time(value: str | None) -> datetime | None:
    """Infobip's `2019-11-09T16:00:00.000+0000` (and other ISO 8601 forms) as an aware datetime."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    try:
        # UTC: PostgreSQL refuses offsets beyond ±15:59, which ISO 8601 (and Python) allow.
        parsed = parsed.astimezone(UTC)
    except OverflowError:
        return None
    # A timestamp from the future (a skewed clock) must not hold the reply window open longer.
    return min(parsed, timezone.now())


def _drop_empty(values: dict) -> dict:
    return {key: value for key, value in values.items() if value not in (None, "")}


def referral_of(message: dict, received_at: datetime) -> dict:
    """Ad / TikTok.me attribution carried by an inbound message, normalized; {} when none."""
    kind = message.get("type")
    if kind == "REFERRAL_AD":
        data = {
            "source": "ad",
            "ad_id": message.get("adId"),
            "ad_name": message.get("adName"),
            "advertiser_id": message.get("advertiserId"),
            "embed_url": message.get("embedUrl"),
            "message_material_id": message.get("messageMaterialId"),
        }
    elif kind == "REFERRAL_SHORT_LINK":
        data = {
            "source": "tiktok_me",
            "ref": message.get("ref"),
            "prefilled_message": message.get("prefilledMessage"),
            "prefilled_message_audit_status": message.get("prefilledMessageAuditStatus"),
        }
    elif isinstance(message.get("referral"), dict):
        ref = message["referral"]
        data = {
            "source": {"AD": "ad", "SHORT_LINK": "tiktok_me"}.get(ref.get("sourceType"), "other"),
            "source_type": ref.get("sourceType"),
            "source_id": ref.get("sourceId"),
            "source_name": ref.get("sourceName"),
            "source_url": ref.get("sourceUrl"),
            "creative_id": ref.get("creativeId"),
            "advertiser_id": ref.get("advertiserId"),
            "tracking_ref": ref.get("trackingRef"),
            "source_status": ref.get("sourceStatus"),
        }
    else:
        return {}
    return {**_drop_empty(data), "received_at": received_at.isoformat()}


def inbound_event(item: dict) -> InboundMessage:
    message = item["message"]
    received_at = parse_time(item.get("receivedAt")) or timezone.now()
    kind = message["type"]
    context = message.get("context") or {}
    return InboundMessage(
        channel=CHANNEL,
        endpoint_id=item["to"],
        channel_user_id=item["sender"],
        provider_message_id=item["messageId"],
        # Replies go to conversationId; in every official example it equals the sender. Keep both.
        provider_conversation_id=message.get("conversationId") or item["sender"],
        sent_at=received_at,
        type=MESSAGE_TYPES.get(kind, Message.Type.UNSUPPORTED),
        text=message.get("text") or "",
        media_url=message.get("mediaUrl") or message.get("aiEmojiUrl") or "",
        embed_url=message.get("embedUrl") or "",
        reaction_emoji=message.get("emoji") or "",
        reaction_action=message.get("action") or "",
        quoted_provider_message_id=context.get("id") or "",
        referral=referral_of(message, received_at),
        provider=PROVIDER,
        payload=item,
    )


def status_report(item: dict, endpoint_ids: tuple[str, ...] | None = None) -> StatusReport | None:
    """A delivery or seen report as a status change (scoped to `endpoint_ids`, see StatusReport); None when it
    changes nothing we track."""
    message_id = item.get("messageId")
    if not message_id:
        return None
    if "seenAt" in item:
        at = parse_time(item.get("seenAt")) or timezone.now()
        return StatusReport(
            channel=CHANNEL,
            provider_message_id=message_id,
            status=Message.Status.SEEN,
            at=at,
            endpoint_ids=endpoint_ids,
        )
    status = item.get("status") or {}
    group = status.get("groupName") or STATUS_GROUP_IDS.get(status.get("groupId"))
    if status.get("name") == DUPLICATE_MESSAGE_ID or group not in STATUS_GROUPS:
        return None
    ours = STATUS_GROUPS[group]
    at = parse_time(item.get("doneAt")) or parse_time(item.get("sentAt")) or timezone.now()
    error = {}
    if ours == Message.Status.FAILED:
        raw_error = item.get("error") or {}
        error = _drop_empty(
            {
                "status": status.get("name"),
                "status_description": status.get("description"),
                "name": raw_error.get("name"),
                "description": raw_error.get("description"),
                "code": raw_error.get("id"),
                "permanent": raw_error.get("permanent"),
            }
        )
    provider_status = _drop_empty({**status, "sentAt": item.get("sentAt"), "doneAt": item.get("doneAt")})
    return StatusReport(
        channel=CHANNEL,
        provider_message_id=message_id,
        status=ours,
        at=at,
        provider_status=provider_status,
        error=error,
        endpoint_ids=endpoint_ids,
    )


@dataclass
class Outcome:
    """What became of one request's results: counts per outcome, processing errors, and the results kept
    but not applied (`{"index", "reason"}`, invalid or unrecognized)."""

    counts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    problems: list[dict] = field(default_factory=list)

    def add(self, key: str, count: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + count

    @property
    def verdict(self) -> str:
        """Partial when a result failed or was invalid: the request is worth a look (and a replay)."""
        if self.errors or self.counts.get(INVALID):
            return WebhookEvent.Verdict.PARTIAL
        return WebhookEvent.Verdict.PROCESSED

    def record(self, event: WebhookEvent, result_count: int) -> None:
        event.result_count = result_count
        event.verdict = self.verdict
        event.summary = self.counts
        event.error = "\n".join(self.errors)
        event.problems = self.problems


LEDGER_FIELDS = ["result_count", "verdict", "summary", "error", "problems"]


def process_results(account: InfobipAccount | int, results: list) -> Outcome:
    """Apply each result as a batch of one; one result's failure is recorded and does not stop the others."""
    account_id = getattr(account, "pk", account)
    outcome = Outcome()
    for index, item in enumerate(results):
        try:
            with transaction.atomic():
                [one] = apply_results([(account_id, [item])])
        except (OperationalError, InterfaceError):
            raise  # the database itself is in trouble: fail the request so Infobip retries it
        except Exception as exc:  # noqa: BLE001 - kept in the ledger with the error, replayable
            logger.exception("webhook result %d for account %s failed", index, account_id)
            outcome.add("error")
            outcome.errors.append(f"results[{index}]: {type(exc).__name__}: {exc}")
            continue
        for key, count in one.counts.items():
            outcome.add(key, count)
        outcome.problems.extend({**problem, "index": index} for problem in one.problems)
    return outcome


def process_ledger(events: list[WebhookEvent], *, results: list[list] | None = None) -> None:
    """Apply stored webhook requests in bulk and record each one's verdict; the caller holds the transaction.

    `results`: the parsed bodies, when the caller has them already.
    """
    parsed: list[tuple[WebhookEvent, list]] = []
    for position, event in enumerate(events):
        try:
            parsed.append((event, results[position] if results is not None else parse_body(event.body.encode())))
        except PayloadError as exc:  # the webhook stores only bodies it parsed; a hand-edited row lands here
            event.verdict, event.error, event.summary, event.problems = WebhookEvent.Verdict.REJECTED, str(exc), {}, []
    from tiktok_channel import health  # health reads this module's result kinds

    # The connection's health: these authenticated requests arrived (once per batch, not in each webhook request).
    health.record_arrivals((event.connection_id, event.received_at, items) for event, items in parsed)
    for (event, items), outcome in zip(parsed, _apply_requests(parsed), strict=True):
        outcome.record(event, len(items))
    # One statement for the batch's verdicts (one UPDATE per request before: ~40 statements a batch under load).
    update_from(
        WebhookEvent,
        {"id": [event.pk for event in events]}
        | {name: [getattr(event, name) for event in events] for name in LEDGER_FIELDS},
    )


def _apply_requests(parsed: list[tuple[WebhookEvent, list]]) -> list[Outcome]:
    """All results of all the requests together (`apply_results`), in a fixed number of statements. If that
    fails for any reason but the database's own trouble, each request is applied result by result instead
    (`process_results`), so a result that fails is recorded against its request and does not hold back the others.

    In the processor's first try at a batch (`processor.redo_allowed()`) there is no savepoint: a failure asks the
    processor to roll the whole batch back and redo it (`RedoSeparately`), which lands in the fallback below.
    Elsewhere the all-together try is rolled back to a savepoint."""
    if processor.redo_allowed():
        try:
            return apply_results([(event.connection_id, results) for event, results in parsed])
        except (OperationalError, InterfaceError):
            raise
        except Exception as exc:  # noqa: BLE001 - redone request by request after the rollback
            logger.exception("bulk webhook processing failed; the batch of %d requests is redone", len(parsed))
            raise processor.RedoSeparately from exc
    try:
        with transaction.atomic():
            return apply_results([(event.connection_id, results) for event, results in parsed])
    except (OperationalError, InterfaceError):
        raise
    except Exception:  # noqa: BLE001 - retried result by result, where each failure is recorded
        logger.exception("bulk webhook processing failed; processing %d requests one result at a time", len(parsed))
        outcomes = []
        for event, results in parsed:
            with transaction.atomic():
                outcomes.append(process_results(event.connection_id, results))
        return outcomes


def apply_results(requests: list[tuple[int, list[dict]]]) -> list[Outcome]:
    """Apply the results of webhook requests, given as (account id, results), all together: the one path for
    a batch of requests and for a single result. Returns each request's outcome; the caller holds the
    transaction."""
    outcomes = [Outcome() for _ in requests]
    inbound: list[tuple[int, InboundMessage]] = []
    inbound_of: list[int] = []  # the request of each inbound item
    report_items: list[tuple[int, dict]] = []  # (request, raw item) of each delivery or seen report
    for position, (account_id, results) in enumerate(requests):
        for index, item in enumerate(results):
            kind, reason = triage(item)
            if kind in (INVALID, UNRECOGNIZED):
                outcomes[position].add(kind)
                outcomes[position].problems.append({"index": index, "reason": reason})
                continue
            if kind == INBOUND:
                inbox_id = inbox_for_sender(account_id, item["to"])
                if inbox_id is None:
                    outcomes[position].add("ignored_unknown_sender")
                    continue
                inbound.append((inbox_id, inbound_event(item)))
                inbound_of.append(position)
            elif kind in (DELIVERY, SEEN):
                report_items.append((position, item))
    for position, (_, created) in zip(inbound_of, messages_receive(inbound), strict=True):
        outcomes[position].add("inbound" if created else "duplicate")
    # A report applies only to messages sent through the account whose webhook received it (its senders): each is
    # built with its account's scope (one query for the batch), not built and then copied with it.
    scopes = endpoints_of_accounts({requests[position][0] for position, _ in report_items})
    reports: list[StatusReport] = []
    report_of: list[tuple[int, dict]] = []  # (request, raw item) of each report applied
    for position, item in report_items:
        report = status_report(item, scopes[requests[position][0]])
        if report is None:
            outcomes[position].add("ignored_report")
            continue
        reports.append(report)
        report_of.append((position, item))
    unmatched: list[StatusReport] = []
    for (position, item), report, result in zip(report_of, reports, message_statuses_apply(reports), strict=True):
        if result == StatusOutcome.UNKNOWN:
            unmatched.append(report)
            outcomes[position].add("unmatched_report")
        else:
            outcomes[position].add(f"{classify(item)}_{result}")
    park_reports(unmatched)  # the same report again: kept once
    return outcomes


def replay_event(event: WebhookEvent) -> Outcome:
    """Apply a stored webhook request again (admin action), as the processor does. Safe: effects are idempotent."""
    results = parse_body(event.body.encode())
    with transaction.atomic():
        [outcome] = _apply_requests([(event, results)])
        outcome.record(event, len(results))
        event.replayed_at = timezone.now()
        update_rows(WebhookEvent, [*LEDGER_FIELDS, "replayed_at"], [event])
    return outcome
