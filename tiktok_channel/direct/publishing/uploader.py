"""The work of the Celery tasks: one upload run (init if needed, then the chunks in order from where the post says
it got to) and one status poll. Every step is recorded through `services` before the next; a worker killed at any
point leaves a post the next run resumes: from the next chunk (its progress was stored after each chunk), or, when
TikTok already had the chunk in flight, from what TikTok's own `Content-Range` answer says it holds (416)."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from tiktok_channel.direct import tokens
from tiktok_channel.direct.client import PERMANENT, REAUTHORIZE, RETRYABLE, THROTTLED, TOKEN_INVALID
from tiktok_channel.direct.models import TikTokConnection
from tiktok_channel.direct.publishing import client, media, services
from tiktok_channel.direct.publishing.client import PostingError
from tiktok_channel.direct.publishing.models import Post

logger = logging.getLogger(__name__)

Status = Post.Status


@dataclass(frozen=True)
class Outcome:
    """What a run did; `retry_in`: seconds until the task should run again (None: do not)."""

    done: str
    retry_in: float | None = None


def _token(connection: TikTokConnection) -> str:
    token = tokens.usable_access_token(connection)
    if not token:
        raise PostingError(REAUTHORIZE, "", f"the TikTok account {connection} must be reconnected")
    return token


def call(connection: TikTokConnection, fn, **kwargs) -> dict:
    """A Content Posting call with the account's token, refreshed once when TikTok says it is no longer valid."""
    token = _token(connection)
    try:
        return fn(connection.app, access_token=token, **kwargs)
    except PostingError as exc:
        if exc.kind != TOKEN_INVALID:
            raise
    tokens.refresh_connection(connection.pk, stale_access_token=token)
    connection.refresh_from_db()
    return fn(connection.app, access_token=_token(connection), **kwargs)


def creator_info(connection: TikTokConnection) -> dict:
    """§4.1: who posts, the privacy options TikTok offers them, their switches and longest video."""
    return call(connection, client.creator_info)


def photo_urls(post: Post) -> list[str]:
    from django.urls import reverse

    names = [name.rsplit("/", 1)[-1] for name in post.files]
    return [f"{settings.PUBLIC_BASE_URL}{reverse('publishing:media', args=[name])}" for name in names]


def _init(post: Post, lease: str) -> bool:
    """creator_info first (§4.1: before every direct post; the privacy option must still be offered), then init."""
    info = call(post.connection, client.creator_info)
    options = info.get("privacy_level_options") or []
    if post.privacy_level not in options:
        raise PostingError(PERMANENT, "privacy_level_option_mismatch", "the privacy option is no longer offered")
    if post.kind == Post.Kind.PHOTO:
        data = call(
            post.connection,
            client.photo_init,
            body={
                "media_type": "PHOTO",
                "post_mode": "DIRECT_POST",
                "post_info": {
                    "title": post.title,
                    "description": post.description,
                    "privacy_level": post.privacy_level,
                    "disable_comment": post.disable_comment or bool(info.get("comment_disabled")),
                    "auto_add_music": True,
                    "brand_content_toggle": False,
                    "brand_organic_toggle": False,
                },
                "source_info": {"source": "PULL_FROM_URL", "photo_images": photo_urls(post), "photo_cover_index": 0},
            },
        )
        publish_id = str(data.get("publish_id") or "")
        if not publish_id:
            raise PostingError(RETRYABLE, "", "TikTok's init answer lacks publish_id")
        started = services.upload_started(
            post.pk, lease, publish_id=publish_id, upload_url="", chunk_size=0, chunk_count=0
        )
        return started and services.upload_finished(post.pk, lease)
    chunk_size, chunk_count = media.chunk_plan(post.file_size)
    data = call(
        post.connection,
        client.video_init,
        post_info={
            "title": post.title,
            "privacy_level": post.privacy_level,
            "disable_duet": post.disable_duet or bool(info.get("duet_disabled")),
            "disable_comment": post.disable_comment or bool(info.get("comment_disabled")),
            "disable_stitch": post.disable_stitch or bool(info.get("stitch_disabled")),
            "brand_content_toggle": False,
            "brand_organic_toggle": False,
        },
        source_info={
            "source": "FILE_UPLOAD",
            "video_size": post.file_size,
            "chunk_size": chunk_size,
            "total_chunk_count": chunk_count,
        },
    )
    publish_id, upload_url = str(data.get("publish_id") or ""), str(data.get("upload_url") or "")
    if not publish_id or not upload_url:
        raise PostingError(RETRYABLE, "", "TikTok's init answer lacks publish_id or upload_url")
    return services.upload_started(
        post.pk, lease, publish_id=publish_id, upload_url=upload_url, chunk_size=chunk_size, chunk_count=chunk_count
    )


def _chunks(post: Post, lease: str) -> Outcome:
    path = services.media_path(post.files[0])
    size, chunk_size, count = post.file_size, post.chunk_size, post.chunk_count
    index = post.chunks_done
    tries = 0
    with path.open("rb") as stream:
        while index < count:
            start, end = media.chunk_range(index, size, chunk_size, count)
            stream.seek(start)
            data = stream.read(end - start + 1)
            answer = client.put_chunk(
                post.upload_url, data, start=start, end=end, total=size, content_type=post.content_type
            )
            if answer.outcome in (client.CHUNK_ACCEPTED, client.UPLOAD_COMPLETE):
                index += 1
                tries = 0
                if not services.chunk_done(post.pk, lease, chunks_done=index, bytes_done=end + 1):
                    return Outcome("lease_lost")
                continue
            if answer.outcome == client.OUT_OF_STEP and answer.uploaded is not None:
                # TikTok holds more (or less) than we recorded: the chunk a killed worker had sent. Go on from there.
                held = answer.uploaded
                if held >= size:
                    index = count
                elif held % chunk_size == 0 and held // chunk_size < count:
                    index = held // chunk_size
                else:
                    services.upload_restart(post.pk, lease, f"TikTok holds {held} bytes, not a chunk boundary")
                    return Outcome("restart", 1)
                if not services.chunk_done(post.pk, lease, chunks_done=index, bytes_done=min(held, size)):
                    return Outcome("lease_lost")
                continue
            if answer.outcome == client.URL_DEAD:
                services.upload_restart(post.pk, lease, "the upload address expired; starting the upload again")
                return Outcome("restart", 1)
            if answer.outcome == client.CHUNK_RETRY:
                tries += 1
                if tries < settings.TIKTOK_UPLOAD_CHUNK_TRIES:
                    continue
                services.upload_waits(post.pk, lease, f"chunk {index + 1} of {count} did not go up: {answer.detail}")
                return Outcome("waiting", _backoff(post.upload_runs))
            services.post_fail(post.pk, f"TikTok refused chunk {index + 1} of {count}: {answer.detail}")
            return Outcome("failed")
    return Outcome("uploaded") if services.upload_finished(post.pk, lease) else Outcome("lease_lost")


def _backoff(n: int, first: float = 5.0, cap: float = 300.0) -> float:
    return min(cap, first * 2 ** max(0, n - 1)) * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security


def run_upload(post_id: int) -> Outcome:
    """One upload run of a post (a Celery task's body)."""
    lease = services.upload_claim(post_id)
    if lease is None:
        return Outcome("not_claimed")
    post = Post.objects.select_related("connection__app").get(pk=post_id)
    try:
        if post.kind == Post.Kind.PHOTO:
            # TikTok pulls the photos itself: once it has a publish id, only the polls remain.
            done = services.upload_finished(post.pk, lease) if post.publish_id else _init(post, lease)
            return Outcome("uploaded" if done else "lease_lost")
        expired = post.upload_url_expires_at is not None and post.upload_url_expires_at <= timezone.now()
        if not post.publish_id or not post.upload_url or expired:
            if not _init(post, lease):
                return Outcome("lease_lost")
            post.refresh_from_db()
        return _chunks(post, lease)
    except PostingError as exc:
        if exc.kind in (THROTTLED, RETRYABLE, TOKEN_INVALID):
            wait = exc.retry_after or _backoff(post.upload_runs)
            services.upload_waits(post_id, lease, f"{exc.reason}; trying again in {wait:.0f} s")
            return Outcome("waiting", wait)
        services.post_fail(post_id, exc.reason)
        return Outcome("failed")
    except OSError as exc:
        services.post_fail(post_id, f"the stored file could not be read ({type(exc).__name__})")
        return Outcome("failed")


def poll_status(post_id: int) -> float | None:
    """One status fetch; the seconds until the next, or None when done (published with its public id, failed, or
    given up)."""
    post = Post.objects.select_related("connection__app").get(pk=post_id)
    if post.status not in (Status.PROCESSING, Status.PUBLISHED) or (
        post.status == Status.PUBLISHED and post.tiktok_post_id
    ):
        return None
    started = post.processing_since or post.created_at
    if (timezone.now() - started).total_seconds() > settings.TIKTOK_POST_STATUS_GIVE_UP_SECONDS:
        if post.status == Status.PROCESSING:
            services.poll_gave_up(post_id)
        return None
    try:
        data = call(post.connection, client.status_fetch, publish_id=post.publish_id)
    except PostingError as exc:
        if exc.kind in (THROTTLED, RETRYABLE, TOKEN_INVALID):
            return exc.retry_after or _next_poll(post.polls)
        if post.status == Status.PROCESSING:
            services.post_fail(post_id, exc.reason)
        return None
    post = services.status_apply(
        post_id,
        tiktok_status=str(data.get("status") or ""),
        fail_reason=str(data.get("fail_reason") or ""),
        post_ids=data.get("publicaly_available_post_id") or data.get("publicly_available_post_id") or [],
    )
    if post.status == Status.FAILED or (post.status == Status.PUBLISHED and post.tiktok_post_id):
        return None
    return _next_poll(post.polls)


def _next_poll(polls: int) -> float:
    first, cap = settings.TIKTOK_POST_STATUS_FIRST_POLL_SECONDS, settings.TIKTOK_POST_STATUS_MAX_POLL_SECONDS
    return min(cap, first * 1.5 ** max(0, polls - 1)) * random.uniform(0.8, 1.2)  # noqa: S311
