"""Every write of a Post: create (validated, stored), claim an upload run (a lease), record init and each chunk,
apply TikTok's status, fail. Each is one UPDATE/transaction that bumps `version`; staff watching the uploads page get
a `post.updated` live hint after the commit (inbox/live.py's one door; the page refetches on reconnect)."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from inbox import live
from tiktok_channel.direct.models import TikTokConnection
from tiktok_channel.direct.publishing import media
from tiktok_channel.direct.publishing.models import Post

logger = logging.getLogger(__name__)

Status = Post.Status
POST_MEDIA_DIR = "posts"
IN_FLIGHT = (Status.DRAFT, Status.UPLOADING)


class PostRefused(Exception):
    """The post cannot be made; `field` names the form field at fault, the message says why."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def media_path(name: str) -> Path:
    return Path(settings.MEDIA_ROOT) / name


def _store(upload, extension: str) -> str:
    """Copy an uploaded file (streamed, chunk by chunk) under MEDIA_ROOT/posts/ with a random name."""
    name = f"{POST_MEDIA_DIR}/{uuid.uuid4().hex}.{extension}"
    path = media_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    upload.seek(0)
    with path.open("wb") as out:
        for part in upload.chunks():
            out.write(part)
    return name


def post_create(
    *,
    connection: TikTokConnection,
    kind: str,
    title: str,
    description: str = "",
    privacy_level: str,
    privacy_options: list[str],
    disable_comment: bool,
    disable_duet: bool,
    disable_stitch: bool,
    files: list,
    creator: dict | None = None,
    user=None,
) -> Post:
    """Validate everything (type, size, duration, privacy among TikTok's options, caption length), store the
    file(s), create the post as a draft and enqueue its upload after the commit. Raises PostRefused with nothing
    stored. `creator`: the creator_info answer just fetched (the creator's own switches and duration limit)."""
    creator = creator or {}
    if kind not in Post.Kind.values:
        raise PostRefused("choose video or photos", "kind")
    if privacy_level not in privacy_options:
        raise PostRefused("choose one of the privacy options TikTok offers for this account", "privacy_level")
    if kind == Post.Kind.VIDEO and len(title.encode("utf-16-le")) // 2 > 2200:
        raise PostRefused("the caption is longer than TikTok's 2200 characters", "title")
    if kind == Post.Kind.PHOTO and len(title) > 90:
        raise PostRefused("a photo post's title is at most 90 characters", "title")
    if len(description) > 4000:
        raise PostRefused("the description is at most 4000 characters", "description")
    if not files:
        raise PostRefused("choose a file", "file")
    infos = []
    if kind == Post.Kind.VIDEO:
        if len(files) != 1:
            raise PostRefused("a video post has exactly one video file", "file")
        try:
            infos.append(
                media.inspect_video(files[0], files[0].size, max_seconds=creator.get("max_video_post_duration_sec"))
            )
        except media.MediaRefused as exc:
            raise PostRefused(str(exc), "file") from None
    else:
        if len(files) > settings.TIKTOK_POST_PHOTO_MAX_COUNT:
            raise PostRefused(f"at most {settings.TIKTOK_POST_PHOTO_MAX_COUNT} photos per post", "file")
        for upload in files:
            try:
                infos.append(media.inspect_photo(upload, upload.size))
            except media.MediaRefused as exc:
                raise PostRefused(f"{upload.name}: {exc}", "file") from None
    # The creator's own switches win: comments, duets or stitches the creator turned off stay off (§4.1).
    disable_comment = disable_comment or bool(creator.get("comment_disabled"))
    disable_duet = disable_duet or bool(creator.get("duet_disabled"))
    disable_stitch = disable_stitch or bool(creator.get("stitch_disabled"))
    stored = [_store(upload, info.extension) for upload, info in zip(files, infos, strict=True)]
    try:
        with transaction.atomic():
            post = Post.objects.create(
                connection=connection,
                kind=kind,
                title=title,
                description=description,
                privacy_level=privacy_level,
                disable_comment=disable_comment,
                disable_duet=kind == Post.Kind.VIDEO and disable_duet,
                disable_stitch=kind == Post.Kind.VIDEO and disable_stitch,
                files=stored,
                original_name=files[0].name[:255],
                content_type=infos[0].content_type,
                file_size=sum(upload.size for upload in files),
                duration_seconds=infos[0].duration_seconds,
                created_by=user if getattr(user, "is_authenticated", False) else None,
            )
            _announce(post.pk)
            from tiktok_channel.direct.publishing import tasks

            tasks.upload_post.delay_on_commit(post.pk)
    except Exception:
        for name in stored:
            media_path(name).unlink(missing_ok=True)
        raise
    return post


# --- live -----------------------------------------------------------------------------------------------------


def as_live_event(post: Post) -> dict:
    return {
        "type": "post.updated",
        "post_id": post.pk,
        "status": post.status,
        "chunks_done": post.chunks_done,
        "chunk_count": post.chunk_count,
        "bytes_done": post.bytes_done,
        "file_size": post.file_size,
        "reason": post.reason,
        "version": post.version,
    }


def watchers(post: Post) -> list[int]:
    ids = set(get_user_model().objects.filter(is_active=True, is_staff=True).values_list("pk", flat=True))
    if post.created_by_id:
        ids.add(post.created_by_id)
    return sorted(ids)


def _announce(post_id: int) -> None:
    """After the commit: the post as it is then, to the staff's (and its author's) sockets. A hint only."""

    def send() -> None:
        post = Post.objects.filter(pk=post_id).first()
        if post is None:
            return
        event = as_live_event(post)
        for user_id in watchers(post):
            live.send_now(live.user_group(user_id), event)

    transaction.on_commit(send)


def _update(post_id: int, condition: Q, **changes) -> bool:
    """One conditional UPDATE that bumps the version; announced when it changed the row."""
    with transaction.atomic():
        changed = Post.objects.filter(condition, pk=post_id).update(version=F("version") + 1, **changes) == 1
        if changed:
            _announce(post_id)
    return changed


# --- the upload run -------------------------------------------------------------------------------------------


def upload_claim(post_id: int) -> str | None:
    """Take the post's upload for this run: a lease token, or None when it is not in flight, another worker holds a
    live lease, or the run budget is spent (then the post fails)."""
    now = timezone.now()
    token = uuid.uuid4().hex
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    claimed = _update(
        post_id,
        Q(status__in=IN_FLIGHT) & free & Q(upload_runs__lt=settings.TIKTOK_UPLOAD_MAX_RUNS),
        lease_token=token,
        lease_until=now + timedelta(seconds=settings.TIKTOK_UPLOAD_LEASE_SECONDS),
        upload_runs=F("upload_runs") + 1,
    )
    if claimed:
        return token
    post_fail(
        post_id,
        "the upload was tried too many times without finishing",
        condition=Q(status__in=IN_FLIGHT, upload_runs__gte=settings.TIKTOK_UPLOAD_MAX_RUNS) & free,
    )
    return None


def _held(post_id: int, token: str, **extra) -> Q:
    return Q(status__in=IN_FLIGHT, lease_token=token, **extra)


def upload_started(
    post_id: int, token: str, *, publish_id: str, upload_url: str, chunk_size: int, chunk_count: int
) -> bool:
    """TikTok accepted the init: the upload starts from the first chunk (a new upload URL means a new upload)."""
    now = timezone.now()
    return _update(
        post_id,
        _held(post_id, token),
        status=Status.UPLOADING,
        publish_id=publish_id,
        upload_url=upload_url,
        upload_url_expires_at=now + timedelta(hours=1),
        chunk_size=chunk_size,
        chunk_count=chunk_count,
        chunks_done=0,
        bytes_done=0,
        reason="",
        lease_until=now + timedelta(seconds=settings.TIKTOK_UPLOAD_LEASE_SECONDS),
    )


def chunk_done(post_id: int, token: str, *, chunks_done: int, bytes_done: int) -> bool:
    """A chunk is TikTok's: remember it (a new worker resumes from the next one) and renew the lease."""
    return _update(
        post_id,
        _held(post_id, token),
        chunks_done=chunks_done,
        bytes_done=bytes_done,
        reason="",
        lease_until=timezone.now() + timedelta(seconds=settings.TIKTOK_UPLOAD_LEASE_SECONDS),
    )


def upload_waits(post_id: int, token: str, reason: str) -> bool:
    """The run stops for now (TikTok busy or unreachable): the reason shows, the lease is given back."""
    return _update(post_id, _held(post_id, token), reason=reason, lease_until=None, lease_token="")


def upload_restart(post_id: int, token: str, reason: str) -> bool:
    """The upload URL died (expired after an hour, or unknown): the next run starts with a new init."""
    return _update(
        post_id,
        _held(post_id, token),
        publish_id="",
        upload_url="",
        upload_url_expires_at=None,
        chunks_done=0,
        bytes_done=0,
        reason=reason,
    )


def upload_finished(post_id: int, token: str) -> bool:
    """Every byte is TikTok's (or it pulls the photos): processing and moderation; the status polls start."""
    now = timezone.now()
    changed = _update(
        post_id,
        _held(post_id, token),
        status=Status.PROCESSING,
        bytes_done=F("file_size"),
        chunks_done=F("chunk_count"),
        upload_url="",
        lease_token="",
        lease_until=None,
        processing_since=now,
        reason="",
    )
    if changed:
        from tiktok_channel.direct.publishing import tasks

        first = settings.TIKTOK_POST_STATUS_FIRST_POLL_SECONDS
        transaction.on_commit(lambda: tasks.poll_post_status.apply_async((post_id,), countdown=first))
    return changed


def _forget_files(post_id: int) -> None:
    """After the commit: a finished post's stored file(s) are deleted (TikTok has them, or will never take them)."""

    def delete() -> None:
        names = Post.objects.filter(pk=post_id).values_list("files", flat=True).first() or []
        for name in names:
            media_path(name).unlink(missing_ok=True)

    transaction.on_commit(delete)


def post_fail(post_id: int, reason: str, *, condition: Q | None = None) -> bool:
    """Failed, with the reason (never replaces published)."""
    condition = condition if condition is not None else ~Q(status__in=(Status.PUBLISHED, Status.FAILED))
    with transaction.atomic():
        failed = _update(
            post_id, condition, status=Status.FAILED, reason=reason[:1000], lease_token="", lease_until=None
        )
        if failed:
            _forget_files(post_id)
    return failed


# --- TikTok's status ------------------------------------------------------------------------------------------


def status_apply(post_id: int, *, tiktok_status: str, fail_reason: str = "", post_ids: list | None = None) -> Post:
    """What status/fetch said: PUBLISH_COMPLETE → published (with the public post id once moderation has passed),
    FAILED → failed with TikTok's reason; anything else keeps it processing. Forward only."""
    post_id_text = str(post_ids[0]) if post_ids else ""
    with transaction.atomic():
        post = Post.objects.select_for_update().get(pk=post_id)
        changes: dict = {"tiktok_status": tiktok_status, "polls": post.polls + 1}
        if post.status in (Status.PROCESSING, Status.PUBLISHED):
            if tiktok_status == "PUBLISH_COMPLETE":
                if post.status != Status.PUBLISHED:
                    changes.update(status=Status.PUBLISHED, published_at=timezone.now(), reason="")
                if post_id_text:
                    changes["tiktok_post_id"] = post_id_text
            elif tiktok_status == "FAILED" and post.status == Status.PROCESSING:
                from tiktok_channel.direct.publishing.client import reason_for

                code = fail_reason or "unknown"
                changes.update(status=Status.FAILED, reason=f"{reason_for(code)} ({code})")
        visible = any(getattr(post, k) != v for k, v in changes.items() if k != "polls")
        for name, value in changes.items():
            setattr(post, name, value)
        if visible:
            post.version += 1
        post.save(update_fields=[*changes, "version", "updated_at"])
        if visible:
            _announce(post.pk)
            if changes.get("status") in (Status.PUBLISHED, Status.FAILED):
                _forget_files(post.pk)
    return post


def poll_gave_up(post_id: int) -> bool:
    hours = settings.TIKTOK_POST_STATUS_GIVE_UP_SECONDS // 3600
    return post_fail(
        post_id,
        f"TikTok did not finish processing within {hours} h; check the account in TikTok's app",
        condition=Q(status=Status.PROCESSING),
    )


def stalled(now=None) -> tuple[list[int], list[int]]:
    """Posts whose upload has no live worker (a lease expired, or never claimed for a while), and posts processing
    with no poll in sight: the sweeper's work."""
    now = now or timezone.now()
    grace = now - timedelta(seconds=settings.TIKTOK_UPLOAD_LEASE_SECONDS)
    uploads = Post.objects.filter(
        Q(lease_until__lt=now) | Q(lease_until__isnull=True, updated_at__lt=grace), status__in=IN_FLIGHT
    )
    polls = Post.objects.filter(status=Status.PROCESSING, updated_at__lt=now - timedelta(hours=1))
    return list(uploads.values_list("pk", flat=True)), list(polls.values_list("pk", flat=True))
