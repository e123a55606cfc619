"""What TikTok tells us about a connected business account's posts: its videos with their latest figures, and one
snapshot per UTC day of each video's figures and of the account's followers (the growth charts read these).

Engagement data stays in this product (TikTok's terms): it is never sent anywhere else."""

from __future__ import annotations

from django.db import models

from tiktok_channel.direct.models import TikTokConnection


class AccountEngagement(models.Model):
    """A connection's latest account figures and the state of its engagement sync (one row per connection)."""

    connection = models.OneToOneField(TikTokConnection, on_delete=models.CASCADE, related_name="engagement")
    followers = models.BigIntegerField(null=True, blank=True)
    following = models.BigIntegerField(null=True, blank=True)
    total_likes = models.BigIntegerField(null=True, blank=True)
    videos_count = models.BigIntegerField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True, help_text="When the last sync finished.")
    sync_requested_at = models.DateTimeField(null=True, blank=True, help_text="When a sync was last asked for.")
    sync_error = models.TextField(blank=True, help_text="Why the last sync did not finish ('' when it did).")
    next_try_at = models.DateTimeField(null=True, blank=True, help_text="A throttled sync tries again then.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "TikTok account engagement"

    def __str__(self) -> str:
        return f"engagement of {self.connection}"


class Video(models.Model):
    """A post of the business account (video or photos), with the figures of the last sync."""

    class State(models.TextChoices):
        PUBLISHED = "published", "Published"
        REMOVED = "removed", "Removed"

    connection = models.ForeignKey(TikTokConnection, on_delete=models.CASCADE, related_name="videos")
    video_id = models.CharField(max_length=64, help_text="TikTok's item_id (a 64-bit number, kept as a string).")
    media_type = models.CharField(max_length=16, default="VIDEO")
    caption = models.TextField(blank=True)
    cover_url = models.URLField(max_length=2048, blank=True, help_text="Temporary: TikTok's URLs expire.")
    share_url = models.URLField(max_length=2048, blank=True)
    posted_at = models.DateTimeField(null=True, blank=True, help_text="TikTok's create_time.")
    views = models.BigIntegerField(default=0)
    likes = models.BigIntegerField(default=0)
    comments = models.BigIntegerField(default=0)
    shares = models.BigIntegerField(default=0)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PUBLISHED)
    removed_at = models.DateTimeField(null=True, blank=True)
    figures_at = models.DateTimeField(null=True, blank=True, help_text="When the figures were last read.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-posted_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "video_id"], name="video_unique_per_connection"),
        ]
        indexes = [models.Index(fields=["connection", "-posted_at"], name="video_connection_posted")]

    def __str__(self) -> str:
        return f"video {self.video_id}"


class VideoSnapshot(models.Model):
    """A video's figures on one UTC day (the last sync of that day wins)."""

    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="snapshots")
    day = models.DateField()
    views = models.BigIntegerField(default=0)
    likes = models.BigIntegerField(default=0)
    comments = models.BigIntegerField(default=0)
    shares = models.BigIntegerField(default=0)
    taken_at = models.DateTimeField()

    class Meta:
        ordering = ["video", "day"]
        constraints = [models.UniqueConstraint(fields=["video", "day"], name="videosnapshot_one_per_day")]

    def __str__(self) -> str:
        return f"{self.video} on {self.day}"


class AccountSnapshot(models.Model):
    """An account's followers (and totals) on one UTC day (the last sync of that day wins)."""

    connection = models.ForeignKey(TikTokConnection, on_delete=models.CASCADE, related_name="account_snapshots")
    day = models.DateField()
    followers = models.BigIntegerField(null=True, blank=True)
    following = models.BigIntegerField(null=True, blank=True)
    total_likes = models.BigIntegerField(null=True, blank=True)
    videos_count = models.BigIntegerField(null=True, blank=True)
    taken_at = models.DateTimeField()

    class Meta:
        ordering = ["connection", "day"]
        constraints = [models.UniqueConstraint(fields=["connection", "day"], name="accountsnapshot_one_per_day")]

    def __str__(self) -> str:
        return f"{self.connection} on {self.day}"
