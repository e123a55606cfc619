"""Infobip's webhook: inbound messages, delivery reports and seen reports, in any mix.

Order matters: method, size and content type are checked without touching the database; the
account is looked up by its unguessable token and the request authenticated before anything is
written. Then the request goes to the ledger:

- deferred (WEBHOOK_PROCESSING=deferred, production): one INSERT, a wake-up for the webhook processor
  (`inbox.processor`), and 200. The processor applies pending requests in batches.
- inline (tests, and bodies that are not UTF-8): the ledger row and its effects in one transaction.

Either way a request answered 200 is durably stored, and a request that fails before that leaves nothing
half-written (Infobip retries it).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from inbox.models import WebhookEvent
from inbox.processor import store_pending
from tiktok_channel import health
from tiktok_channel.infobip_webhooks import PayloadError, account_for_token, ledger_text, parse_body, process_ledger
from tiktok_channel.models import PROVIDER, InfobipAccount
from tiktok_channel.webhook_auth import AuthError, verify

logger = logging.getLogger(__name__)

# The request headers the ledger keeps (lower case); anything else (credentials, cookies, tokens a proxy adds under
# names we cannot know) is dropped. The account's signature header is never kept, even if listed.
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


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status=status)


def ledger_headers(request: HttpRequest, account: InfobipAccount) -> dict[str, str]:
    """Request headers fit to store: only the allow-list (LEDGER_HEADERS), never the account's signature header."""
    hidden = account.signature_header.lower()
    return {
        name: value
        for name, value in request.headers.items()
        if name.lower() in LEDGER_HEADERS and name.lower() != hidden
    }


@csrf_exempt
def infobip_webhook(request: HttpRequest, token: str, kind: str = "any") -> JsonResponse:
    if request.method != "POST":
        response = _error(405, "method_not_allowed", "use POST")
        response["Allow"] = "POST"
        return response
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        return _error(400, "bad_content_length", "Content-Length is not a number")
    if length > settings.WEBHOOK_MAX_BODY_BYTES:
        return _error(413, "body_too_large", f"body over {settings.WEBHOOK_MAX_BODY_BYTES} bytes")
    content_type = request.content_type or ""
    if content_type != "application/json" and not content_type.endswith("+json"):
        return _error(415, "unsupported_media_type", "Content-Type must be application/json")

    try:
        account = account_for_token(token)
    except DatabaseError:
        logger.exception("webhook: database unavailable")
        return _error(503, "unavailable", "try again later")
    if account is None:
        return _error(404, "unknown_webhook", "no such webhook")
    try:
        body = request.body
    except RequestDataTooBig:
        return _error(413, "body_too_large", f"body over {settings.WEBHOOK_MAX_BODY_BYTES} bytes")
    try:
        verify(account.webhook_auth_settings(), request.headers, body)
    except AuthError as exc:
        logger.warning("webhook auth failed for account %s: %s", account.pk, exc)
        health.record_signature_failure(account.pk)
        return _error(401, "unauthenticated", str(exc))

    received_at = timezone.now()
    text = ledger_text(body)
    ledger = {
        "provider": PROVIDER,
        "connection_id": account.pk,
        "path_kind": kind,
        "received_at": received_at,
        "headers": ledger_headers(request, account),
        "body": text,
    }
    try:
        try:
            results = parse_body(body)
        except PayloadError as exc:
            WebhookEvent.objects.create(**ledger, verdict=WebhookEvent.Verdict.REJECTED, error=str(exc))
            return _error(400, "bad_payload", str(exc))
        health.record_webhook(account.pk, results)
        if settings.WEBHOOK_PROCESSING == "deferred" and text.encode() == body:
            # Stored is what Infobip needs to hear about: the processor applies it within milliseconds.
            store_pending(
                provider=PROVIDER,
                connection_id=account.pk,
                path_kind=kind,
                received_at=received_at,
                headers=ledger["headers"],
                body=text,
                result_count=len(results),
            )
            return JsonResponse({"status": "accepted", "results": len(results)})
        try:
            with transaction.atomic():
                event = WebhookEvent.objects.create(
                    **ledger, verdict=WebhookEvent.Verdict.PENDING, result_count=len(results)
                )
                process_ledger([event], results=[results])
        except DatabaseError:
            raise
        except Exception as exc:  # noqa: BLE001 - keep the request for replay, answer 200
            logger.exception("webhook processing failed for account %s", account.pk)
            WebhookEvent.objects.create(
                **ledger,
                result_count=len(results),
                verdict=WebhookEvent.Verdict.FAILED,
                error=f"{type(exc).__name__}: {exc}",
            )
            return JsonResponse({"status": "stored", "results": len(results)})
    except DatabaseError:
        logger.exception("webhook: database unavailable")
        return _error(503, "unavailable", "try again later")
    return JsonResponse({"status": "ok", "results": len(results), **event.summary})
