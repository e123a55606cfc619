"""Celery: the beat syncs every connected account's posts and figures; "Sync now" enqueues one. Thin: ids in, the
service does the work. A throttled or failed sync is tried again with exponential backoff and jitter (at least
TikTok's throttle wait), at most TIKTOK_ENGAGEMENT_RETRIES times; the next beat starts afresh."""

from __future__ import annotations

import logging
import random
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tiktok_channel.direct.engagement import services
from tiktok_channel.direct.models import TikTokConnection

logger = logging.getLogger(__name__)

FIRST_SYNC_AGAIN_SECONDS = 600


def backoff_seconds(attempt: int, at_least: float | None = None) -> float:
    """Before try `attempt + 1`: base × 2^attempt with ±20 % jitter, never less than TikTok's wait."""
    wait = settings.TIKTOK_ENGAGEMENT_BACKOFF_SECONDS * 2**attempt * random.uniform(0.8, 1.2)  # noqa: S311
    return max(wait, at_least or 0)


def schedule_sync(connection_id: int, *, attempt: int = 0, countdown: float = 0) -> None:
    """Enqueue a sync once the current transaction commits (at once outside one)."""
    transaction.on_commit(
        lambda: sync_engagement.apply_async((connection_id,), {"attempt": attempt}, countdown=countdown or None)
    )


@shared_task(ignore_result=True)
def sync_engagement(connection_id: int, attempt: int = 0) -> str:
    outcome = services.sync_connection(connection_id)
    if outcome.status in (services.THROTTLED, services.RETRY):
        if attempt < settings.TIKTOK_ENGAGEMENT_RETRIES:
            wait = backoff_seconds(attempt, outcome.retry_after)
            services.sync_retry_scheduled(connection_id, timezone.now() + timedelta(seconds=wait))
            schedule_sync(connection_id, attempt=attempt + 1, countdown=wait)
        else:
            logger.warning("TikTok engagement sync of connection %s gave up for now: %s", connection_id, outcome.error)
    return outcome.status


@shared_task(ignore_result=True)
def sync_all_engagement(*, only_new: bool = False) -> int:
    """Beat: one sync task per connected account (each alone, so one account's throttling never delays another).
    `only_new` (a beat entry every minute): only accounts never synced and not asked for in the last
    FIRST_SYNC_AGAIN_SECONDS, so a newly connected account shows its posts within a minute."""
    rows = TikTokConnection.objects.filter(state=TikTokConnection.State.CONNECTED, app__active=True)
    if only_new:
        before = timezone.now() - timedelta(seconds=FIRST_SYNC_AGAIN_SECONDS)
        rows = rows.exclude(engagement__synced_at__isnull=False).exclude(engagement__sync_requested_at__gt=before)
    ids = list(rows.order_by("pk").values_list("pk", flat=True))
    for connection_id in ids:
        if only_new:
            services.sync_requested(connection_id)
        schedule_sync(connection_id)
    return len(ids)
