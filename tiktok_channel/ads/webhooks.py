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
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from inbox import providers
from inbox.db import update_rows
from inbox.models import WebhookEvent
from inbox.webhooks import Parsed, WebhookDoor, WebhookRefused, receive
from tiktok_channel.ads import services
from tiktok_channel.direct.webhooks import SIGNATURE_HEADER, SignatureError, verify_signature
from tiktok_channel.models import CHANNEL

logger = logging.getLogger(__name__)

ADS_PROVIDER = "tiktok_ads"


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


class _Endpoint:
    """Ad review webhooks have one endpoint (no connection row): the ledger's connection_id is 0."""

    pk = 0


def _endpoint(token: str) -> _Endpoint | None:
    expected = settings.TIKTOK_ADS_WEBHOOK_PATH_TOKEN
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        return None
    return _Endpoint()


def _authenticate(_endpoint: _Endpoint, request: HttpRequest, body: bytes) -> None:
    signature = request.headers.get(SIGNATURE_HEADER)
    if not (signature or settings.TIKTOK_ADS_WEBHOOK_REQUIRE_SIGNATURE):
        return
    try:
        verify_signature(
            settings.TIKTOK_MARKETING_APP_SECRET,
            signature,
            body,
            now=time.time(),
            max_age=settings.TIKTOK_DIRECT_WEBHOOK_MAX_AGE_SECONDS,
        )
    except SignatureError as exc:
        raise WebhookRefused(401, "unauthenticated", str(exc)) from None


def _parse(_endpoint: _Endpoint, body: bytes) -> Parsed:
    try:
        envelope = parse_envelope(body)
    except EnvelopeError as exc:
        raise WebhookRefused(400, "bad_payload", str(exc)) from None
    return Parsed(result_count=len(envelope["entry"]), path_kind=f"object_{envelope['object']}"[:16])


DOOR = WebhookDoor(
    provider=ADS_PROVIDER,
    connection=_endpoint,
    authenticate=_authenticate,
    parse=_parse,
    process=lambda event, _: AdsBackend().process_webhooks([event]),
    json_only=False,
    signature_header=SIGNATURE_HEADER,
)


@csrf_exempt
def ads_webhook(request: HttpRequest, token: str) -> JsonResponse:
    """The shared door (inbox/webhooks.py): 405/400/413, 404 for a wrong token, 401, 400, then the ledger."""
    return receive(request, token, DOOR)
