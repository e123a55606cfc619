"""TikTok ads (Marketing API): the advertiser authorization, the ad accounts it grants, campaigns, ad groups, ads,
their daily metrics, and hashed custom audiences. Ids are TikTok's 64-bit ids kept as strings (§1 of the notes)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from tiktok_channel.fields import EncryptedTextField


class AdvertiserAuthorization(models.Model):
    """One consent of TikTok's advertiser authorization (§2.2): a long-term token, valid until revoked."""

    access_token = EncryptedTextField()
    scope = models.JSONField(default=list, blank=True, help_text="TikTok's numeric permission ids.")
    advertiser_ids = models.JSONField(default=list, blank=True, help_text="The advertisers the token may manage.")
    authorized_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Advertiser authorization #{self.pk}"


class AdAccount(models.Model):
    """An advertiser account the authorization can manage; staff choose which ones are in use."""

    authorization = models.ForeignKey(AdvertiserAuthorization, on_delete=models.CASCADE, related_name="accounts")
    advertiser_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    currency = models.CharField(max_length=8, blank=True)
    timezone = models.CharField(max_length=64, blank=True, help_text="Reports' days are in this time zone.")
    in_use = models.BooleanField(default=False)
    metrics_synced_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["name", "advertiser_id"]

    def __str__(self) -> str:
        return self.name or self.advertiser_id


class Campaign(models.Model):
    account = models.ForeignKey(AdAccount, on_delete=models.CASCADE, related_name="campaigns")
    campaign_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=512)
    objective_type = models.CharField(max_length=64)
    budget_mode = models.CharField(max_length=64, blank=True)
    budget = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    operation_status = models.CharField(max_length=16, default="DISABLE")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class AdGroup(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="adgroups")
    adgroup_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=512)
    placement_type = models.CharField(max_length=64, blank=True)
    location_ids = models.JSONField(default=list, blank=True)
    age_groups = models.JSONField(default=list, blank=True)
    gender = models.CharField(max_length=32, blank=True)
    budget_mode = models.CharField(max_length=64, blank=True)
    budget = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    schedule_start_time = models.DateTimeField(null=True, blank=True)
    schedule_end_time = models.DateTimeField(null=True, blank=True)
    operation_status = models.CharField(max_length=16, default="DISABLE")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class Ad(models.Model):
    class Review(models.TextChoices):
        PENDING = "pending", "In review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    adgroup = models.ForeignKey(AdGroup, on_delete=models.CASCADE, related_name="ads")
    ad_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=512)
    ad_text = models.TextField(blank=True)
    call_to_action = models.CharField(max_length=64, blank=True)
    landing_page_url = models.URLField(max_length=2048, blank=True)
    image_id = models.CharField(max_length=200, blank=True)
    image_url = models.URLField(max_length=2048, blank=True)
    operation_status = models.CharField(max_length=16, default="DISABLE")
    review_status = models.CharField(max_length=16, choices=Review.choices, default=Review.PENDING)
    reject_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class AdMetricDaily(models.Model):
    """One ad's figures on one day of the advertiser's time zone (§7.5); a re-pull overwrites the day."""

    ad = models.ForeignKey(Ad, on_delete=models.CASCADE, related_name="metrics")
    date = models.DateField()
    spend = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    impressions = models.PositiveBigIntegerField(default=0)
    clicks = models.PositiveBigIntegerField(default=0)
    conversions = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["date"]
        constraints = [models.UniqueConstraint(fields=["ad", "date"], name="admetricdaily_ad_date")]

    def __str__(self) -> str:
        return f"{self.ad_id} {self.date}"


class CustomAudience(models.Model):
    """A customer-file audience: only counts and TikTok's ids are kept, never an identifier (raw or hashed)."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Emails"
        PHONE = "phone", "Phone numbers"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        UPLOADED = "uploaded", "Uploaded"
        FAILED = "failed", "Failed"

    account = models.ForeignKey(AdAccount, on_delete=models.CASCADE, related_name="audiences")
    name = models.CharField(max_length=128)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    audience_id = models.CharField(max_length=64, blank=True, help_text="TikTok's custom_audience_id.")
    rows_total = models.PositiveIntegerField(default=0)
    rows_valid = models.PositiveIntegerField(default=0)
    rows_bad = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    # The hashed file waiting for the upload task (SHA-256 hex only); emptied once TikTok has it.
    pending_hashes = models.TextField(blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name
