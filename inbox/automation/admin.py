"""Admin of routing and automation (imported by inbox/admin.py)."""

from django.contrib import admin

from inbox.automation.models import AgentAvailability, InboxRouting, Team


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "inbox")
    list_filter = ("inbox",)
    filter_horizontal = ("members",)


@admin.register(AgentAvailability)
class AgentAvailabilityAdmin(admin.ModelAdmin):
    list_display = ("user", "status", "present", "open_sockets", "capacity", "last_assigned_at")
    list_editable = ("capacity",)
    readonly_fields = ("present", "open_sockets", "last_disconnect_at", "last_assigned_at", "changed_at")


@admin.register(InboxRouting)
class InboxRoutingAdmin(admin.ModelAdmin):
    list_display = ("inbox", "auto_assign")
