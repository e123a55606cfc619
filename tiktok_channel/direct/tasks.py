"""Celery beat: refresh TikTok access tokens before they expire (TIKTOK_DIRECT_REFRESH_AHEAD_SECONDS ahead)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from tiktok_channel.direct import tokens

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def refresh_expiring_tokens() -> dict[str, int]:
    """Refresh every connected account whose access token expires soon; one failing never stops the others.
    Safe to run twice at once: each refresh is decided under the connection's row lock."""
    outcomes: dict[str, int] = {}
    for connection_id in tokens.connections_due(timezone.now()):
        try:
            outcome = tokens.refresh_connection(connection_id)
        except Exception:  # noqa: BLE001 - the next beat tries again
            logger.exception("refreshing TikTok connection %s failed", connection_id)
            outcome = "error"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes
