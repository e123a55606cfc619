"""Thin Celery tasks: ids in, `uploader` does the work; the sweeper (beat) hands stalled posts to a worker."""

from __future__ import annotations

import logging

from celery import shared_task

from tiktok_channel.direct.publishing import services, uploader

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def upload_post(post_id: int) -> str:
    """One upload run; a run that must wait (TikTok busy, a chunk not taken) schedules the next one itself."""
    outcome = uploader.run_upload(post_id)
    if outcome.retry_in is not None:
        upload_post.apply_async((post_id,), countdown=outcome.retry_in)
    return outcome.done


@shared_task(ignore_result=True)
def poll_post_status(post_id: int) -> None:
    wait = uploader.poll_status(post_id)
    if wait is not None:
        poll_post_status.apply_async((post_id,), countdown=wait)


@shared_task(ignore_result=True)
def resume_stalled_posts() -> dict[str, int]:
    """Beat: uploads whose worker died (its lease expired) go to another worker, which resumes from the next chunk;
    posts processing without a recent poll are polled again."""
    uploads, polls = services.stalled()
    for post_id in uploads:
        upload_post.delay(post_id)
    for post_id in polls:
        poll_post_status.delay(post_id)
    return {"uploads": len(uploads), "polls": len(polls)}
