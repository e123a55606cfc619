"""Agents' image uploads: checked by content (not by name), stored under an unguessable name.

TikTok fetches the image from PUBLIC_BASE_URL, so the stored file must be publicly reachable. A reply with an
upload is checked first and the file written only once the reply passed every check (`reply_queue(media_store=)`);
a reply that fails after that discards it, and `manage.py sweep_uploads` removes what a crash left behind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from uuid import uuid4

from django.conf import settings
from django.core.files.storage import default_storage

from inbox.errors import ApplicationError

logger = logging.getLogger(__name__)

UPLOAD_DIR = "uploads"
MAX_IMAGE_BYTES = 3 * 1024 * 1024
SIGNATURES = {b"\xff\xd8\xff": "jpg", b"\x89PNG\r\n\x1a\n": "png"}


@dataclass
class PendingImage:
    """A checked upload with its future name and public URL, not written yet."""

    upload: object
    name: str
    url: str

    def store(self) -> None:
        saved = default_storage.save(self.name, self.upload)
        if saved != self.name:  # a uuid4 name is never taken; if it were, the URL would point elsewhere
            default_storage.delete(saved)
            raise RuntimeError(f"upload name {self.name} was taken")

    def discard(self) -> None:
        if default_storage.exists(self.name):
            default_storage.delete(self.name)


def image_url(name: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}{settings.MEDIA_URL}{name}"


def image_prepare(upload) -> PendingImage:
    """Check an uploaded JPG/PNG by content (422 otherwise) and name it; nothing is written yet."""
    if upload.size > MAX_IMAGE_BYTES:
        raise ApplicationError(
            "image_too_large", "the image is larger than 3 MB", status=422, fields={"image": ["larger than 3 MB"]}
        )
    head = upload.read(8)
    upload.seek(0)
    extension = next((ext for magic, ext in SIGNATURES.items() if head.startswith(magic)), None)
    if extension is None:
        raise ApplicationError(
            "invalid_image",
            "only JPG and PNG images can be sent",
            status=422,
            fields={"image": ["not a JPG or PNG image"]},
        )
    name = f"{UPLOAD_DIR}/{uuid4().hex}.{extension}"
    return PendingImage(upload=upload, name=name, url=image_url(name))


def uploads_sweep(*, older_than: timedelta = timedelta(hours=1)) -> list[str]:
    """Delete uploads no message refers to, written more than `older_than` ago (a reply being queued right now
    may not have its row yet). Returns the deleted names."""
    from django.utils import timezone

    from inbox.models import Message

    try:
        _, files = default_storage.listdir(UPLOAD_DIR)
    except FileNotFoundError:
        return []
    cutoff = timezone.now() - older_than
    deleted = []
    for filename in sorted(files):
        name = f"{UPLOAD_DIR}/{filename}"
        if default_storage.get_modified_time(name) > cutoff:
            continue
        if Message.objects.filter(media_url__endswith=f"{settings.MEDIA_URL}{name}").exists():
            continue
        default_storage.delete(name)
        deleted.append(name)
    if deleted:
        logger.info("deleted %d orphan uploads", len(deleted))
    return deleted
