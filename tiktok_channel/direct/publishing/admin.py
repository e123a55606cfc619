"""Posts in Django admin: read-only (they are written by the upload tasks; staff post from /posts/new/)."""

from django.contrib import admin

from tiktok_channel.direct.publishing.models import Post


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    list_display = ["__str__", "connection", "status", "chunks_done", "chunk_count", "tiktok_post_id", "created_at"]
    list_filter = ["status", "kind"]
    search_fields = ["title", "publish_id", "tiktok_post_id"]
    exclude = ["upload_url"]  # a capability URL: never shown

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
