"""The engagement sync and the post / authorization webhooks: the one place that writes videos, their daily
snapshots and the account's figures.

Every write of a connection's engagement rows first locks its `AccountEngagement` row, so a sync and a webhook
about the same account never interleave; snapshots are upserts on (video, UTC day) and (connection, UTC day): the
last sync of a day wins. A sync reads everything from TikTok first (no lock held while TikTok answers), then
writes in one transaction; a throttled or failed read writes nothing but the reason and when to try again.
Changes reach open Posts pages through `inbox.services.content_changed` (domain event → live layer)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from inbox.services import content_changed
from tiktok_channel.direct import client, tokens
from tiktok_channel.direct.client import TikTokError
from tiktok_channel.direct.engagement import wire
from tiktok_channel.direct.engagement.models import AccountEngagement, AccountSnapshot, Video, VideoSnapshot
from tiktok_channel.direct.models import TikTokConnection

logger = logging.getLogger(__name__)

State = TikTokConnection.State
SUBJECT = "videos"
FIGURES = ("views", "likes", "comments", "shares")
SCOPES = ("video.list", "user.info.stats")  # the posts with their figures; the followers

# What a sync did.
SYNCED = "synced"
THROTTLED = "throttled"  # TikTok said "too many requests": try again after `retry_after`
RETRY = "retry"  # TikTok could not answer now (5xx, timeout): try again with backoff
NOT_CONNECTED = "not_connected"
REAUTHORIZATION_NEEDED = "reauthorization_needed"
FAILED = "failed"  # refused for good (a permanent code): the next beat tries again, nothing sooner


@dataclass
class SyncOutcome:
    status: str
    videos: int = 0
    pages: int = 0
    skipped: int = 0
    retry_after: float | None = None
    error: str = ""
    complete: bool = False  # the whole listing was read (the last page said has_more: false)
    removed: list[str] = field(default_factory=list)


class _Stop(Exception):
    def __init__(self, outcome: SyncOutcome) -> None:
        super().__init__(outcome.error)
        self.outcome = outcome


def utc_day(at: datetime):
    return at.astimezone(UTC).date()


def _call(connection: TikTokConnection, do):
    """`do(access_token)`, refreshing an invalid token once (as the backend's sends do); a connection that needs a
    new consent, or a throttled / failed call, stops the sync with its outcome."""
    token = tokens.usable_access_token(connection)
    if token is None:
        raise _Stop(
            SyncOutcome(REAUTHORIZATION_NEEDED if connection.state == State.REAUTHORIZATION_NEEDED else NOT_CONNECTED)
        )
    for refreshed in (False, True):
        try:
            return do(token)
        except TikTokError as exc:
            if exc.kind == client.REAUTHORIZE:
                # A permission of the posts (video.list, user.info.stats) not granted: only the sync stops; the
                # account's messages are not held for it.
                reason = f"TikTok refused the sync ({exc}): reconnect the account granting {', '.join(SCOPES)}"
                raise _Stop(SyncOutcome(FAILED, error=reason)) from None
            if exc.kind == client.TOKEN_INVALID and refreshed:
                tokens.mark_reauthorization_needed(connection.pk, f"TikTok refused a fresh token: {exc}")
                raise _Stop(SyncOutcome(REAUTHORIZATION_NEEDED, error=str(exc))) from None
            if exc.kind == client.THROTTLED:
                wait = exc.retry_after or settings.TIKTOK_DIRECT_THROTTLE_WAIT_SECONDS
                raise _Stop(
                    SyncOutcome(THROTTLED, retry_after=wait, error=f"TikTok: too many requests ({exc})")
                ) from None
            if exc.kind == client.RETRYABLE:
                raise _Stop(SyncOutcome(RETRY, error=str(exc))) from None
            if exc.kind != client.TOKEN_INVALID:
                raise _Stop(SyncOutcome(FAILED, error=str(exc))) from None
            if tokens.refresh_connection(connection.pk, stale_access_token=token) == tokens.TRANSIENT:
                raise _Stop(SyncOutcome(RETRY, error=str(exc))) from None
            connection.refresh_from_db()
            if connection.state != State.CONNECTED or not connection.access_token:
                raise _Stop(SyncOutcome(REAUTHORIZATION_NEEDED, error=str(exc))) from None
            token = connection.access_token
    raise AssertionError("unreachable")


def _read(connection: TikTokConnection) -> tuple[wire.AccountFigures, list[wire.VideoFigures], SyncOutcome]:
    """Everything TikTok says now: the account's figures and every post, page by page (cursor paging)."""
    figures = _call(connection, lambda token: wire.account_figures(connection, access_token=token))
    videos: dict[str, wire.VideoFigures] = {}
    outcome = SyncOutcome(SYNCED)
    cursor: int | None = None
    complete = False
    seen_cursors: set[int] = set()
    while outcome.pages < settings.TIKTOK_ENGAGEMENT_MAX_PAGES:
        page = _call(connection, lambda token, at=cursor: wire.video_page(connection, access_token=token, cursor=at))
        outcome.pages += 1
        outcome.skipped += page.skipped
        for video in page.videos:
            videos.setdefault(video.video_id, video)  # a post moving between pages is counted once
        if not page.has_more:
            complete = True
            break
        if page.cursor is None or page.cursor in seen_cursors:
            outcome.error = "TikTok's cursor did not move: the list was read up to there"
            break
        seen_cursors.add(page.cursor)
        cursor = page.cursor
    if not complete and not outcome.error:
        outcome.error = f"only the newest {outcome.pages} pages were read (TIKTOK_ENGAGEMENT_MAX_PAGES)"
    outcome.videos = len(videos)
    outcome.complete = complete
    return figures, list(videos.values()), outcome


def sync_connection(connection_id: int) -> SyncOutcome:
    """Sync one connection's posts, their figures and the account's followers; returns what happened. The rows are
    written only when the whole listing was read (a throttled page leaves everything as it was, with the reason)."""
    connection = TikTokConnection.objects.select_related("app").filter(pk=connection_id).first()
    if connection is None or connection.state != State.CONNECTED or not connection.app.active:
        return SyncOutcome(NOT_CONNECTED)
    granted = {scope.strip() for scope in connection.scopes.split(",") if scope.strip()}
    missing = [scope for scope in SCOPES if granted and scope not in granted]
    if missing:
        outcome = SyncOutcome(FAILED, error=f"the account did not grant {', '.join(missing)}: reconnect it to sync")
        _sync_failed(connection, outcome)
        return outcome
    try:
        figures, videos, outcome = _read(connection)
    except _Stop as stop:
        _sync_failed(connection, stop.outcome)
        return stop.outcome
    _record(connection, figures, videos, outcome)
    logger.info(
        "TikTok engagement of connection %s synced: %d videos in %d pages", connection_id, outcome.videos, outcome.pages
    )
    return outcome


def _engagement_locked(connection: TikTokConnection) -> AccountEngagement:
    AccountEngagement.objects.get_or_create(connection=connection)
    return AccountEngagement.objects.select_for_update().get(connection=connection)


def _sync_failed(connection: TikTokConnection, outcome: SyncOutcome) -> None:
    if outcome.status == NOT_CONNECTED:
        return
    now = timezone.now()
    with transaction.atomic():
        engagement = _engagement_locked(connection)
        engagement.sync_error = (outcome.error or outcome.status.replace("_", " "))[:1000]
        engagement.next_try_at = now + timedelta(seconds=outcome.retry_after) if outcome.retry_after else None
        engagement.save(update_fields=["sync_error", "next_try_at", "updated_at"])
        content_changed(inbox_id=connection.app.inbox_id, subject=SUBJECT, connection_id=connection.pk)


def _record(
    connection: TikTokConnection, figures: wire.AccountFigures, videos: list[wire.VideoFigures], outcome: SyncOutcome
) -> None:
    now = timezone.now()
    day = utc_day(now)
    with transaction.atomic():
        engagement = _engagement_locked(connection)
        existing = {
            video.video_id: video
            for video in Video.objects.select_for_update().filter(
                connection=connection, video_id__in=[v.video_id for v in videos]
            )
        }
        new, changed = [], []
        for item in videos:
            row = existing.get(item.video_id) or Video(connection=connection, video_id=item.video_id)
            row.media_type = item.media_type
            row.caption = item.caption or row.caption
            row.cover_url = item.cover_url or row.cover_url
            row.share_url = item.share_url or row.share_url
            row.posted_at = item.posted_at or row.posted_at
            for name in FIGURES:
                value = getattr(item, name)
                if value is not None:
                    setattr(row, name, value)
            row.state, row.removed_at = Video.State.PUBLISHED, None  # listed: public again
            row.figures_at = now
            (changed if row.pk else new).append(row)
        Video.objects.bulk_create(new)
        Video.objects.bulk_update(
            changed,
            [
                "media_type",
                "caption",
                "cover_url",
                "share_url",
                "posted_at",
                *FIGURES,
                "state",
                "removed_at",
                "figures_at",
            ],
        )
        if outcome.complete:  # the whole listing was read: a published post missing from it is gone
            gone = Video.objects.filter(connection=connection, state=Video.State.PUBLISHED).exclude(
                video_id__in=[v.video_id for v in videos]
            )
            outcome.removed = list(gone.values_list("video_id", flat=True))
            gone.update(state=Video.State.REMOVED, removed_at=now, updated_at=now)
        rows = new + changed
        VideoSnapshot.objects.bulk_create(
            [
                VideoSnapshot(
                    video=row,
                    day=day,
                    views=row.views,
                    likes=row.likes,
                    comments=row.comments,
                    shares=row.shares,
                    taken_at=now,
                )
                for row in rows
            ],
            update_conflicts=True,
            unique_fields=["video", "day"],
            update_fields=[*FIGURES, "taken_at"],
        )
        for name in ("followers", "following", "total_likes", "videos_count"):
            value = getattr(figures, name)
            if value is not None:
                setattr(engagement, name, value)
        AccountSnapshot.objects.bulk_create(
            [
                AccountSnapshot(
                    connection=connection,
                    day=day,
                    followers=engagement.followers,
                    following=engagement.following,
                    total_likes=engagement.total_likes,
                    videos_count=engagement.videos_count,
                    taken_at=now,
                )
            ],
            update_conflicts=True,
            unique_fields=["connection", "day"],
            update_fields=["followers", "following", "total_likes", "videos_count", "taken_at"],
        )
        engagement.synced_at = now
        engagement.sync_error = outcome.error
        if outcome.skipped:
            engagement.sync_error = (
                f"{outcome.skipped} entries without an item_id were skipped. {outcome.error}".strip()
            )
        engagement.next_try_at = None
        engagement.save()
        content_changed(inbox_id=connection.app.inbox_id, subject=SUBJECT, connection_id=connection.pk)


def sync_requested(connection_id: int) -> datetime | None:
    """Note that a sync was asked for ("Sync now"); returns when, or None when the connection cannot be synced."""
    with transaction.atomic():
        connection = TikTokConnection.objects.select_related("app").filter(pk=connection_id).first()
        if connection is None or connection.state != State.CONNECTED:
            return None
        engagement = _engagement_locked(connection)
        engagement.sync_requested_at = timezone.now()
        engagement.save(update_fields=["sync_requested_at", "updated_at"])
    return engagement.sync_requested_at


def sync_retry_scheduled(connection_id: int, at: datetime) -> None:
    AccountEngagement.objects.filter(connection_id=connection_id).update(next_try_at=at, updated_at=timezone.now())


# --- Webhooks (applied by the direct provider's ledger processor) ------------------------------------------------


def video_published(connection: TikTokConnection, *, video_id: str, at: datetime) -> bool:
    """A post became public: known or new (figures follow with the next sync). True if something changed."""
    with transaction.atomic():
        _engagement_locked(connection)
        video = Video.objects.select_for_update().filter(connection=connection, video_id=video_id).first()
        if video is None:
            Video.objects.create(connection=connection, video_id=video_id, posted_at=at)
        elif video.state == Video.State.PUBLISHED:
            return False
        else:
            video.state, video.removed_at = Video.State.PUBLISHED, None
            video.save(update_fields=["state", "removed_at", "updated_at"])
        content_changed(inbox_id=connection.app.inbox_id, subject=SUBJECT, connection_id=connection.pk)
    return True


def video_removed(connection: TikTokConnection, *, video_id: str, at: datetime) -> bool:
    """A post is no longer public (deleted, made private, taken down): kept with its history, marked removed."""
    with transaction.atomic():
        _engagement_locked(connection)
        video = Video.objects.select_for_update().filter(connection=connection, video_id=video_id).first()
        if video is None:
            video = Video(connection=connection, video_id=video_id)
        elif video.state == Video.State.REMOVED:
            return False
        video.state, video.removed_at = Video.State.REMOVED, at
        video.save()
        content_changed(inbox_id=connection.app.inbox_id, subject=SUBJECT, connection_id=connection.pk)
    return True


def authorization_removed(connection: TikTokConnection, *, reason: str) -> bool:
    """The user removed the app's access on TikTok: the connection needs a new consent (banner, email, replies
    held, as when TikTok refuses a refresh). True if it changed."""
    changed = tokens.mark_reauthorization_needed(connection.pk, reason)
    if changed:
        with transaction.atomic():
            content_changed(inbox_id=connection.app.inbox_id, subject=SUBJECT, connection_id=connection.pk)
    return changed
