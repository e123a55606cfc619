"""A post on its way to TikTok: the file(s), the choices made for it, and how far the upload and TikTok have got."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from tiktok_channel.fields import EncryptedTextField


def new_key() -> str:
    return uuid.uuid4().hex


class Post(models.Model):
    """draft (validated, stored, waiting for a worker) → uploading (init done, chunks going up) → processing
    (TikTok has every byte, or pulls the photos; moderation) → published | failed (with the reason)."""

    class Kind(models.TextChoices):
        VIDEO = "video", "Video"
        PHOTO = "photo", "Photos"

    class Status(models.TextChoices):
        DRAFT = "draft", "Waiting to upload"
        UPLOADING = "uploading", "Uploading"
        PROCESSING = "processing", "Processing at TikTok"
        PUBLISHED = "published", "Published"
        FAILED = "failed", "Failed"

    key = models.CharField(max_length=32, unique=True, default=new_key, editable=False)
    connection = models.ForeignKey("tiktok_channel.TikTokConnection", on_delete=models.CASCADE, related_name="posts")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.VIDEO)
    title = models.TextField(blank=True, help_text="The caption (video) or title (photos).")
    description = models.TextField(blank=True, help_text="Photos only: the description under the title.")
    privacy_level = models.CharField(max_length=40)
    disable_comment = models.BooleanField(default=False)
    disable_duet = models.BooleanField(default=False)
    disable_stitch = models.BooleanField(default=False)
    # The stored file(s), relative to MEDIA_ROOT; a video has one, a photo post up to 35.
    files = models.JSONField(default=list)
    original_name = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=40)
    file_size = models.BigIntegerField(default=0)
    duration_seconds = models.FloatField(null=True, blank=True)
    chunk_size = models.BigIntegerField(default=0)
    chunk_count = models.PositiveIntegerField(default=0)
    chunks_done = models.PositiveIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0)
    publish_id = models.CharField(max_length=64, blank=True)
    # A capability URL (it carries an upload token), valid an hour: encrypted like every token.
    upload_url = EncryptedTextField(blank=True)
    upload_url_expires_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    tiktok_status = models.CharField(max_length=40, blank=True)
    reason = models.TextField(blank=True, help_text="Why it failed, or why it waits.")
    tiktok_post_id = models.CharField(max_length=40, blank=True)
    upload_runs = models.PositiveIntegerField(default=0)
    polls = models.PositiveIntegerField(default=0)
    lease_token = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    processing_since = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "lease_until"], name="tiktokpost_status_lease")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.title[:40] or self.original_name}"
