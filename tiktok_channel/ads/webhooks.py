"""Ad review webhooks (Subscription API, §7.7) through the shared ledger.

The door (`/webhooks/tiktok-ads/<token>/`): POST, size, the secret path token (compared in constant time), and a
`TikTok-Signature` over the raw body with the app secret when one is sent (required when
TIKTOK_ADS_WEBHOOK_REQUIRE_SIGNATURE is on: whether TikTok signs these callbacks is unknown, §10). A body that is
not a JSON object with an `entry` list is refused 400. Then the row goes to the ledger (`inbox.WebhookEvent`,
provider `tiktok_ads`) and the shared processor hands it to `AdsBackend.process_webhooks`, which applies ad review
results (object 3) and keeps everything else unapplied with the reason.
"""

from __future__ import annotations

import hmac
import json
import logging
import time

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from inbox import providers
from inbox.db import update_rows
from inbox.models import WebhookEvent
from inbox.processor import store_pending
from tiktok_channel.ads import services
from tiktok_channel.direct.webhooks import SIGNATURE_HEADER, SignatureError, verify_signature
from tiktok_channel.models import CHANNEL

logger = logging.getLogger(__name__)

ADS_PROVIDER = "tiktok_ads"
LEDGER_HEADERS = {"content-length", "content-type", "user-agent", "x-forwarded-for", "x-request-id", "host"}


class EnvelopeError(ValueError):
    pass


def parse_envelope(body: bytes) -> dict:
    try:
        envelope = json.loads(body)
    except (ValueError, RecursionError):
        raise EnvelopeError("body is not valid JSON") from None
    if not isinstance(envelope, dict):
        raise EnvelopeError("body must be a JSON object")
    if not isinstance(envelope.get("entry"), list) or not all(isinstance(e, dict) for e in envelope["entry"]):
        raise EnvelopeError("'entry' must be a list of objects")
    if isinstance(envelope.get("object"), bool) or not isinstance(envelope.get("object"), int):
        raise EnvelopeError("'object' must be a number")
    return envelope


def _apply(event: WebhookEvent) -> None:
    try:
        envelope = parse_envelope(event.body.encode())
    except EnvelopeError as exc:
        event.verdict, event.error, event.summary = WebhookEvent.Verdict.REJECTED, str(exc), {}
        return
    if envelope["object"] != services.REVIEW_OBJECT_AD:
        event.verdict = WebhookEvent.Verdict.PARTIAL
        event.summary = {"unrecognized": 1}
        event.problems = [{"index": 0, "reason": f"object {envelope['object']} is not applied"}]
        return
    changed = services.reviews_apply(envelope["entry"])
    event.verdict = WebhookEvent.Verdict.PROCESSED
    event.summary = {"ads_changed": changed, "unchanged": len(envelope["entry"]) - changed}
    event.problems, event.error = [], ""


class AdsBackend(providers.Backend):
    """Receives only (no conversations): the ledger's rows of the review webhooks."""

    name = ADS_PROVIDER
    channel = CHANNEL

    def process_webhooks(self, events: list[WebhookEvent]) -> None:
        for event in events:
            _apply(event)
        update_rows(WebhookEvent, ["verdict", "summary", "problems", "error"], events)

    def replay_webhook(self, event: WebhookEvent) -> None:
        with transaction.atomic():
            self.process_webhooks([event])
            event.replayed_at = timezone.now()
            update_rows(WebhookEvent, ["replayed_at"], [event])


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status=status)


@csrf_exempt
def ads_webhook(request: HttpRequest, token: str) -> JsonResponse:
    if request.method != "POST":
        response = _error(405, "method_not_allowed", "use POST")
        response["Allow"] = "POST"
        return response
    expected = settings.TIKTOK_ADS_WEBHOOK_PATH_TOKEN
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        return _error(404, "unknown_webhook", "no such webhook")
    try:
        body = request.body
    except RequestDataTooBig:
        return _error(413, "body_too_large", f"body over {settings.WEBHOOK_MAX_BODY_BYTES} bytes")
    signature = request.headers.get(SIGNATURE_HEADER)
    if signature or settings.TIKTOK_ADS_WEBHOOK_REQUIRE_SIGNATURE:
        try:
            verify_signature(
                settings.TIKTOK_MARKETING_APP_SECRET,
                signature,
                body,
                now=time.time(),
                max_age=settings.TIKTOK_DIRECT_WEBHOOK_MAX_AGE_SECONDS,
            )
        except SignatureError as exc:
            return _error(401, "unauthenticated", str(exc))
    try:
        envelope = parse_envelope(body)
    except EnvelopeError as exc:
        return _error(400, "bad_payload", str(exc))
    text = body.decode("utf-8", errors="backslashreplace").replace("\x00", "\\x00")
    ledger = {
        "provider": ADS_PROVIDER,
        "connection_id": 0,
        "path_kind": f"object_{envelope['object']}"[:16],
        "received_at": timezone.now(),
        "headers": {name: value for name, value in request.headers.items() if name.lower() in LEDGER_HEADERS},
        "body": text,
    }
    try:
        if settings.WEBHOOK_PROCESSING == "deferred" and text.encode() == body:
            store_pending(**ledger, result_count=len(envelope["entry"]))
            return JsonResponse({"status": "accepted"})
        with transaction.atomic():
            event = WebhookEvent.objects.create(
                **ledger, verdict=WebhookEvent.Verdict.PENDING, result_count=len(envelope["entry"])
            )
            AdsBackend().process_webhooks([event])
    except DatabaseError:
        logger.exception("TikTok ads webhook: database unavailable")
        return _error(503, "unavailable", "try again later")
    return JsonResponse({"status": "ok", **event.summary})
