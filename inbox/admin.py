from django.contrib import admin

from inbox.models import AuditLog, CannedResponse, Contact, Conversation, Inbox, Label, Message, ParkedReport


@admin.register(Inbox)
class InboxAdmin(admin.ModelAdmin):
    list_display = ["name", "time_zone", "created_at"]
    search_fields = ["name"]
    filter_horizontal = ["members"]


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["__str__", "channel", "endpoint_id", "channel_user_id", "first_seen_at", "last_seen_at"]
    list_filter = ["channel"]
    search_fields = ["display_name", "channel_user_id", "endpoint_id"]


class MessageInline(admin.TabularInline):
    model = Message
    fields = ["sent_at", "direction", "type", "text", "status", "provider_message_id"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ["-sent_at"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["__str__", "inbox", "status", "priority", "assignee", "last_inbound_at", "last_activity_at"]
    list_filter = ["status", "priority", "inbox", "assignee"]
    search_fields = ["contact__display_name", "contact__channel_user_id", "provider_conversation_id"]
    list_select_related = ["inbox", "contact", "assignee"]
    raw_id_fields = ["contact"]
    readonly_fields = [
        "version",
        "created_at",
        "updated_at",
        "last_message_id",
        "last_message_at",
        "last_message_direction",
        "last_message_type",
        "last_message_preview",
        "unread_count",
    ]
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "conversation", "direction", "type", "status", "sent_at", "provider_message_id"]
    list_filter = ["direction", "type", "status", "channel"]
    search_fields = ["text", "provider_message_id", "conversation__contact__channel_user_id"]
    list_select_related = ["conversation__contact", "conversation__inbox"]
    raw_id_fields = ["conversation", "author"]
    date_hierarchy = "sent_at"


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ["created_at", "action", "actor_kind", "actor", "conversation", "message"]
    list_filter = ["actor_kind", "action"]
    raw_id_fields = ["conversation", "message", "actor"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the audit trail is append-only, for admins too


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    list_display = ["name", "color", "inbox"]
    list_filter = ["inbox"]
    search_fields = ["name"]


@admin.register(CannedResponse)
class CannedResponseAdmin(admin.ModelAdmin):
    list_display = ["short_code", "inbox", "owner", "updated_at"]
    list_filter = ["inbox"]
    search_fields = ["short_code", "text"]
    raw_id_fields = ["owner"]


@admin.register(ParkedReport)
class ParkedReportAdmin(admin.ModelAdmin):
    """Reports that arrived before their message; read-only (the outbox applies them)."""

    list_display = ["provider_message_id", "channel", "status", "at", "received_at", "applied_at"]
    list_filter = ["channel", "status"]
    search_fields = ["provider_message_id"]
    readonly_fields = [f.name for f in ParkedReport._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


from inbox.automation import admin as _automation_admin  # noqa: E402, F401 - routing and automation models
