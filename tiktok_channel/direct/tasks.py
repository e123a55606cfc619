"""Celery beat: refresh TikTok access tokens before they expire (TIKTOK_DIRECT_REFRESH_AHEAD_SECONDS ahead); sync
the comments of connected accounts' recent videos (TIKTOK_COMMENT_SYNC_*)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from tiktok_channel.direct import comments, tokens

logger = logging.getLogger(__name__)

# One comment sync per account at a time; a run is at most TIKTOK_COMMENT_SYNC_MAX_CALLS calls with their timeouts,
# and a worker killed mid-run leaves the lock to expire.
SYNC_LOCK_SECONDS = 120


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


@shared_task(ignore_result=True)
def sync_comments_all() -> int:
    """One sync task per connection that may list comments."""
    ids = comments.connections_to_sync()
    for connection_id in ids:
        sync_comments.delay(connection_id)
    return len(ids)


@shared_task(bind=True, ignore_result=True, max_retries=3)
def sync_comments(self, connection_id: int, video_ids: list[str] | None = None) -> dict:
    """Sync one account's comments (or those of `video_ids`). One run per account at a time; a run TikTok
    throttled is tried again after TIKTOK_DIRECT_THROTTLE_WAIT_SECONDS (TikTok sends no Retry-After)."""
    lock = f"tiktok_direct:comment-sync:{connection_id}"
    if not cache.add(lock, "1", timeout=SYNC_LOCK_SECONDS):
        return {"stopped": "already_running"}
    try:
        report = comments.sync_connection(connection_id, video_ids=video_ids)
    finally:
        cache.delete(lock)
    if report.stopped == "throttled" and self.request.retries < self.max_retries:
        raise self.retry(countdown=settings.TIKTOK_DIRECT_THROTTLE_WAIT_SECONDS)
    return report.__dict__


def sync_video_soon(connection_id: int, video_id: str) -> None:
    """A comment arrived on a video whose cover we do not show yet: fetch it (and its comments) once a minute at
    most."""
    if cache.add(f"tiktok_direct:video-sync:{connection_id}:{video_id}", "1", timeout=60):
        transaction.on_commit(lambda: sync_comments.delay(connection_id, [video_id]))
