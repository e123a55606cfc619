"""Outgoing webhooks of automation rules: one signed POST per try, classified, recorded on the delivery row.

Signature (as Stripe's): header `X-Inbox-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` with
the rule's secret; the receiver recomputes it over the raw body and refuses old timestamps (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from inbox.automation.models import WebhookDelivery

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = (5, 10)  # connect, read
RETRY = "retry"
DELIVERED = "delivered"
FAILED = "failed"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _private_host(url: str) -> str | None:
    """The reason a URL may not be posted to (it resolves to a private, loopback or link-local address)."""
    host = urlsplit(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError as exc:
        return f"cannot resolve {host}: {exc}"
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast:
            return f"{host} resolves to a non-public address"
    return None


def webhook_attempt(delivery_id: int, *, final: bool) -> str:
    """One try of a pending delivery: delivered, retry (5xx, 408, 429, network) or failed (other 4xx, a refused
    address, or `final` and still not delivered). Records the try on the row."""
    delivery = WebhookDelivery.objects.select_related("run__rule").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
        return FAILED if delivery is None else delivery.status
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "TikTokInbox-Automation/1",
        "X-Inbox-Delivery": str(delivery.pk),
        "X-Inbox-Signature": signature(delivery.run.rule.webhook_secret, int(time.time()), body),
    }
    status_code, error, verdict = None, "", RETRY
    refused = None if settings.AUTOMATION_WEBHOOK_ALLOW_PRIVATE else _private_host(delivery.url)
    if refused:
        error, verdict = refused, FAILED
    else:
        try:
            response = requests.post(
                delivery.url, data=body, headers=headers, timeout=TIMEOUT_SECONDS, allow_redirects=False
            )
            status_code = response.status_code
            if 200 <= status_code < 300:
                verdict = DELIVERED
            elif status_code in (408, 429) or status_code >= 500:
                error = f"HTTP {status_code}"
            else:
                error, verdict = f"HTTP {status_code} (not retried)", FAILED
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
    if verdict == RETRY and final:
        verdict = FAILED
    with transaction.atomic():
        row = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
        row.attempts += 1
        row.last_status_code = status_code
        row.last_error = error
        row.tries = [*row.tries, {"at": timezone.now().isoformat(), "status_code": status_code, "error": error}]
        if verdict != RETRY:
            row.status = WebhookDelivery.Status.DELIVERED if verdict == DELIVERED else WebhookDelivery.Status.FAILED
            row.finished_at = timezone.now()
        row.save()
    if verdict != DELIVERED:
        logger.warning(
            "automation webhook %s to %s: %s (%s)", delivery_id, urlsplit(delivery.url).hostname, verdict, error
        )
    return verdict
