"""Receiving a provider's webhook into the ledger: the one door every provider's webhook view goes through.

Order matters: method, size and (where the provider sends JSON only) content type are checked without touching the
database; then the provider finds the connection by the URL's token and authenticates the request, before anything
is written; then the provider parses the body, and the request goes to the ledger (`inbox.WebhookEvent`):

- deferred (WEBHOOK_PROCESSING=deferred, production): one INSERT that also wakes the processor
  (`inbox.processor.store_pending`), and 200. The processor applies pending requests in batches.
  A provider may keep its connections in a per-process cache: it then gives a guard (`WebhookDoor.guard`, a FROM
  clause that finds the connection's row only as it was loaded), and the INSERT stores nothing when the row changed or
  went (a rotated secret, a deactivation, a deletion, by any process): the request is then run again against a
  fresh lookup, so a stale cache never lets a request in. No extra round trip when nothing changed.
- inline (tests, and bodies that are not UTF-8): the ledger row and its effects in one transaction.

Either way a request answered 200 is durably stored, and a request that fails before that leaves nothing
half-written (the provider retries it). The provider supplies the steps (`WebhookDoor`); the statuses and reasons
of the answers are the core's, the same for every provider.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, transaction
from django.db import connection as db_connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from inbox.models import WebhookEvent
from inbox.processor import store_pending

logger = logging.getLogger(__name__)

# The request headers the ledger keeps (lower case); anything else (credentials, cookies, tokens a proxy adds under
# names we cannot know) is dropped. A provider's signature header is never kept, even if listed.
LEDGER_HEADERS = {
    "accept",
    "accept-encoding",
    "content-encoding",
    "content-length",
    "content-type",
    "date",
    "host",
    "user-agent",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-real-ip",
    "x-request-id",
}


class WebhookRefused(Exception):
    """A provider's step refuses the request: answered `status` with `{"code", "message"}`; with `keep`, the
    request is also stored in the ledger as rejected (the reason as its error) for an admin to see."""

    def __init__(self, status: int, code: str, message: str, *, keep: bool = False) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.keep = status, code, message, keep


@dataclass
class Parsed:
    """What a provider read from a body: the ledger's `path_kind` and `result_count`, what goes to `process`, and
    extra keys of the 200 answer."""

    result_count: int
    data: Any = None
    path_kind: str | None = None  # None: the one `receive` was given
    answer: dict = field(default_factory=dict)


@dataclass
class WebhookDoor:
    """A provider's steps. `connection(token)` → the connection or None (404); `authenticate(connection, request,
    body)` and `parse(connection, body)` raise WebhookRefused; `process(event, parsed)` applies one stored row
    inline (the caller holds the transaction).

    `guard`, for a provider whose `connection` answers from a per-process cache: `guard(connection)` → `(sql,
    params)`, a FROM clause with its WHERE (`FROM table WHERE …`) that finds one row, only while the connection is
    still as it was loaded (or None: nothing to check); `connection(token, fresh=True)` must then look it up in the
    database (and refresh the cache). A FROM clause, not a SELECT: the ledger's INSERT joins it (`INSERT … SELECT
    … FROM …`), which costs PostgreSQL a little less than an `EXISTS` subquery (bench/README.md, "tenth session,
    branch status6")."""

    provider: str
    connection: Callable[..., Any]
    authenticate: Callable[[Any, HttpRequest, bytes], None]
    parse: Callable[[Any, bytes], Parsed]
    process: Callable[[WebhookEvent, Parsed], None]
    json_only: bool = True
    signature_header: str | Callable[[Any], str] = ""
    guard: Callable[[Any], tuple[str, list] | None] | None = None
    # Called once when `authenticate` refused a request for good (after a fresh lookup, with a cache): to count it.
    on_refused: Callable[[Any, WebhookRefused], None] | None = None


class MetaHeaders:
    """Request headers read straight from the WSGI environ, case-insensitively, one at a time: what a webhook's
    few lookups need, without building Django's `request.headers` (every header of the request parsed)."""

    __slots__ = ("meta",)
    UNPREFIXED = ("CONTENT_TYPE", "CONTENT_LENGTH")

    def __init__(self, meta: dict) -> None:
        self.meta = meta

    def get(self, name: str, default: str | None = None) -> str | None:
        key = name.upper().replace("-", "_")
        return self.meta.get(key if key in self.UNPREFIXED else f"HTTP_{key}", default)

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None


class _Stale(Exception):
    """The cached connection changed or went before the request was stored: run it again with a fresh lookup."""


def error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status=status)


# Each allowed header's WSGI environ key, and the name the ledger stores it under (as `request.headers` names it).
_LEDGER_META = {
    ("" if name in ("content-type", "content-length") else "HTTP_") + name.upper().replace("-", "_"): name.title()
    for name in sorted(LEDGER_HEADERS)
}


def ledger_headers(request: HttpRequest, *, hidden: str = "") -> dict[str, str]:
    """Request headers fit to store: only the allow-list (LEDGER_HEADERS), never `hidden` (a signature header).
    Read from the environ for the allowed names only (not every header of the request parsed)."""
    hidden = hidden.lower()
    meta = request.META
    return {name: meta[key] for key, name in _LEDGER_META.items() if key in meta and name.lower() != hidden}


def ledger_text(body: bytes) -> str:
    """The body as storable text: invalid UTF-8 escaped, NUL (which PostgreSQL text refuses) made visible."""
    return body.decode("utf-8", errors="backslashreplace").replace("\x00", "\\x00")


def _too_large() -> JsonResponse:
    return error(413, "body_too_large", f"body over {settings.WEBHOOK_MAX_BODY_BYTES} bytes")


def _unavailable(provider: str) -> JsonResponse:
    logger.exception("%s webhook: database unavailable", provider)
    return error(503, "unavailable", "try again later")


def _preamble(request: HttpRequest, *, json_only: bool) -> JsonResponse | None:
    """The checks that need no database: the refusal, or None."""
    if request.method != "POST":
        response = error(405, "method_not_allowed", "use POST")
        response["Allow"] = "POST"
        return response
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return error(400, "bad_content_length", "Content-Length is not a number")
    if length > settings.WEBHOOK_MAX_BODY_BYTES:
        return _too_large()
    content_type = request.content_type or ""
    if json_only and content_type != "application/json" and not content_type.endswith("+json"):
        return error(415, "unsupported_media_type", "Content-Type must be application/json")
    return None


def _accepted(answer: dict) -> HttpResponse:
    """The deferred path's 200: a plain response with the JSON written here (the keys are few and known)."""
    body = json.dumps({"status": "accepted", **answer}, separators=(",", ":")).encode()
    return HttpResponse(body, content_type="application/json")


def _still_current(door: WebhookDoor, connection) -> bool:
    """Whether a cached connection is still as it was loaded (the slow paths' check; the deferred INSERT checks it
    itself)."""
    guard = door.guard(connection) if door.guard is not None else None
    if guard is None:
        return True
    sql, params = guard
    with db_connection.cursor() as cursor:
        cursor.execute(f"SELECT EXISTS (SELECT 1 {sql})", params)
        return bool(cursor.fetchone()[0])


def receive(request: HttpRequest, token: str, door: WebhookDoor, *, path_kind: str = "any") -> HttpResponse:
    """Check, authenticate, parse and store one webhook request (see the module's docstring); the answer."""
    refused = _preamble(request, json_only=door.json_only)
    if refused is not None:
        return refused
    try:
        return _receive(request, token, door, path_kind=path_kind, fresh=False)
    except _Stale:  # the cache was behind: once more from the database
        try:
            return _receive(request, token, door, path_kind=path_kind, fresh=True)
        except _Stale:  # changed again while this request was being read: let the provider retry
            return error(503, "unavailable", "the webhook's settings changed; try again")


def _receive(request: HttpRequest, token: str, door: WebhookDoor, *, path_kind: str, fresh: bool) -> HttpResponse:
    cached = door.guard is not None and not fresh
    try:
        connection = door.connection(token, fresh=True) if fresh else door.connection(token)
    except DatabaseError:
        return _unavailable(door.provider)
    if connection is None:
        return error(404, "unknown_webhook", "no such webhook")
    try:
        body = request.body
    except RequestDataTooBig:
        return _too_large()
    try:
        door.authenticate(connection, request, body)
    except WebhookRefused as exc:
        if cached:  # perhaps refused by a secret rotated since it was cached: decide on the current one
            raise _Stale from None
        if door.on_refused is not None:
            door.on_refused(connection, exc)
        return error(exc.status, exc.code, exc.message)

    received_at = timezone.now()
    text = ledger_text(body)
    hidden = door.signature_header(connection) if callable(door.signature_header) else door.signature_header
    ledger = {
        "provider": door.provider,
        "connection_id": connection.pk,
        "path_kind": path_kind,
        "received_at": received_at,
        "headers": ledger_headers(request, hidden=hidden),
        "body": text,
    }
    try:
        try:
            parsed = door.parse(connection, body)
        except WebhookRefused as exc:
            if cached and not _still_current(door, connection):
                raise _Stale from None
            if exc.keep:
                WebhookEvent.objects.create(**ledger, verdict=WebhookEvent.Verdict.REJECTED, error=exc.message)
            return error(exc.status, exc.code, exc.message)
        ledger["result_count"] = parsed.result_count
        if parsed.path_kind is not None:
            ledger["path_kind"] = parsed.path_kind
        if settings.WEBHOOK_PROCESSING == "deferred" and text.encode() == body:
            # Stored is what the provider needs to hear about: the processor applies it within milliseconds.
            guard = door.guard(connection) if cached else None
            if not store_pending(**ledger, guard=guard):
                raise _Stale
            return _accepted(parsed.answer)
        if cached and not _still_current(door, connection):
            raise _Stale
        try:
            with transaction.atomic():
                event = WebhookEvent.objects.create(**ledger, verdict=WebhookEvent.Verdict.PENDING)
                door.process(event, parsed)
        except DatabaseError:
            raise
        except Exception as exc:  # noqa: BLE001 - keep the request for replay, answer 200
            logger.exception("%s webhook processing failed for connection %s", door.provider, connection.pk)
            WebhookEvent.objects.create(
                **ledger, verdict=WebhookEvent.Verdict.FAILED, error=f"{type(exc).__name__}: {exc}"
            )
            return JsonResponse({"status": "stored", **parsed.answer})
    except DatabaseError:
        return _unavailable(door.provider)
    return JsonResponse({"status": "ok", **parsed.answer, **event.summary})
