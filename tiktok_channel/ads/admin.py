"""Ads rows in the Django admin, read-only: they change through TikTok (the Ads page), never by hand here. The
advertiser token is never shown."""

from __future__ import annotations

from django.contrib import admin

from tiktok_channel.ads.models import Ad, AdAccount, AdvertiserAuthorization, Campaign, CustomAudience


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AdvertiserAuthorization)
class AdvertiserAuthorizationAdmin(ReadOnlyAdmin):
    list_display = ["id", "advertiser_ids", "authorized_by", "created_at"]
    exclude = ["access_token"]


@admin.register(AdAccount)
class AdAccountAdmin(ReadOnlyAdmin):
    list_display = ["advertiser_id", "name", "currency", "timezone", "in_use", "metrics_synced_at", "last_error"]


@admin.register(Campaign)
class CampaignAdmin(ReadOnlyAdmin):
    list_display = ["campaign_id", "name", "objective_type", "operation_status", "account"]


@admin.register(Ad)
class AdAdmin(ReadOnlyAdmin):
    list_display = ["ad_id", "name", "operation_status", "review_status", "reject_reason"]
    list_filter = ["review_status", "operation_status"]


@admin.register(CustomAudience)
class CustomAudienceAdmin(ReadOnlyAdmin):
    list_display = ["name", "kind", "status", "rows_total", "rows_valid", "rows_bad", "audience_id", "created_at"]
    exclude = ["pending_hashes"]
