"""Infobip's webhook: inbound messages, delivery reports and seen reports, in any mix.

The core's door (`inbox.webhooks.receive`) checks method, size and content type, stores and answers; here are
Infobip's steps: the account by its unguessable token, the account's authentication (a failure counts in its
health), the body's `results` (an unreadable body is kept in the ledger as rejected, and answered 400).
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from inbox.models import WebhookEvent
from inbox.webhooks import MetaHeaders, Parsed, WebhookDoor, WebhookRefused, receive
from tiktok_channel import health
from tiktok_channel.infobip_webhooks import PayloadError, account_for_token, account_guard, parse_body, process_ledger
from tiktok_channel.models import PROVIDER, InfobipAccount
from tiktok_channel.webhook_auth import AuthError, verify

logger = logging.getLogger(__name__)


def _authenticate(account: InfobipAccount, request: HttpRequest, body: bytes) -> None:
    try:
        verify(account.webhook_auth_settings(), MetaHeaders(request.META), body)
    except AuthError as exc:
        raise WebhookRefused(401, "unauthenticated", str(exc)) from None


def _refused(account: InfobipAccount, exc: WebhookRefused) -> None:
    logger.warning("webhook auth failed for account %s: %s", account.pk, exc.message)
    health.record_signature_failure(account.pk)


def _parse(account: InfobipAccount, body: bytes) -> Parsed:
    # The arrival is recorded for the health page by the processor (`process_ledger`), once per batch.
    try:
        results = parse_body(body)
    except PayloadError as exc:
        raise WebhookRefused(400, "bad_payload", str(exc), keep=True) from None
    return Parsed(result_count=len(results), data=results, answer={"results": len(results)})


def _process(event: WebhookEvent, parsed: Parsed) -> None:
    process_ledger([event], results=[parsed.data])


DOOR = WebhookDoor(
    provider=PROVIDER,
    connection=account_for_token,
    authenticate=_authenticate,
    parse=_parse,
    process=_process,
    signature_header=lambda account: account.signature_header,
    guard=account_guard,
    on_refused=_refused,
)


@csrf_exempt
def infobip_webhook(request: HttpRequest, token: str, kind: str = "any") -> HttpResponse:
    return receive(request, token, DOOR, path_kind=kind)
