"""Logging filters: webhook URLs carry the account's secret token, so request logs mask it."""

from __future__ import annotations

import logging
import re

# /webhooks/infobip/tiktok/<token>/... (tiktok_channel/urls.py) and /webhooks/tiktok/<token>/ (TikTok's own, per
# app: tiktok_channel/direct/urls.py), /webhooks/tiktok-ads/<token>/ (ad reviews): the token names the URL.
WEBHOOK_TOKEN = re.compile(r"(/webhooks/(?:infobip/[^/\s]+|tiktok|tiktok-ads)/)[^/\s?\"']+")


def mask_webhook_tokens(text: str) -> str:
    return WEBHOOK_TOKEN.sub(r"\1***", text)


class MaskWebhookTokens(logging.Filter):
    """On django.request, django.server and uvicorn.access: the message is rendered with the token masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is logged as it is
            return True
        if "/webhooks/" in message:
            record.msg, record.args = mask_webhook_tokens(message), ()
        return True


def install() -> None:
    """Add the filter to the access loggers configured by runserver and uvicorn themselves (reconfiguring them in
    LOGGING would drop their handlers)."""
    for name in ("django.server", "uvicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, MaskWebhookTokens) for f in logger.filters):
            logger.addFilter(MaskWebhookTokens())
