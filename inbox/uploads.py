"""Agents' image uploads: checked by content (not by name), stored under an unguessable name.

TikTok fetches the image from PUBLIC_BASE_URL, so the stored file must be publicly reachable.
"""

from __future__ import annotations

from uuid import uuid4

from django.conf import settings
from django.core.files.storage import default_storage

from inbox.errors import ApplicationError

MAX_IMAGE_BYTES = 3 * 1024 * 1024
SIGNATURES = {b"\xff\xd8\xff": "jpg", b"\x89PNG\r\n\x1a\n": "png"}


def image_store(upload) -> str:
    """Save an uploaded JPG/PNG and return its public URL; refuse anything else (422)."""
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
    name = default_storage.save(f"uploads/{uuid4().hex}.{extension}", upload)
    return f"{settings.PUBLIC_BASE_URL}{settings.MEDIA_URL}{name}"
