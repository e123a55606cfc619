"""Admin of routing and automation (imported by inbox/admin.py)."""

import secrets

from django import forms
from django.contrib import admin

from inbox.automation import hours, rules
from inbox.automation.models import (
    AgentAvailability,
    AutomationRule,
    AutomationRun,
    CsatSurvey,
    InboxRouting,
    OutOfHoursReply,
    Team,
    WebhookDelivery,
)
from inbox.errors import ApplicationError


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


class InboxRoutingForm(forms.ModelForm):
    class Meta:
        model = InboxRouting
        fields = (
            "inbox",
            "auto_assign",
            "business_hours_enabled",
            "time_zone",
            "weekly_hours",
            "holidays",
            "out_of_hours_reply",
            "csat_enabled",
            "csat_message",
            "first_response_minutes",
        )

    def clean(self):
        data = super().clean()
        try:
            data.update(
                hours.clean_hours(
                    time_zone=data.get("time_zone") or "",
                    weekly_hours=data.get("weekly_hours") or {},
                    holidays=data.get("holidays") or [],
                )
            )
        except ApplicationError as error:
            raise forms.ValidationError(error.message) from None
        return data


@admin.register(InboxRouting)
class InboxRoutingAdmin(admin.ModelAdmin):
    form = InboxRoutingForm
    list_display = (
        "inbox",
        "auto_assign",
        "business_hours_enabled",
        "time_zone",
        "csat_enabled",
        "first_response_minutes",
    )


@admin.register(OutOfHoursReply)
class OutOfHoursReplyAdmin(admin.ModelAdmin):
    list_display = ("conversation", "period_start", "outcome", "created_at")
    readonly_fields = [f.name for f in OutOfHoursReply._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


class RunInline(admin.TabularInline):
    model = AutomationRun
    extra = 0
    can_delete = False
    fields = ("event_key", "conversation", "outcome", "results", "created_at")
    readonly_fields = fields
    ordering = ("-created_at",)
    max_num = 0


class AutomationRuleForm(forms.ModelForm):
    class Meta:
        model = AutomationRule
        fields = ("inbox", "name", "event", "no_reply_minutes", "conditions", "actions", "active", "position")

    def clean(self):
        data = super().clean()
        inbox = data.get("inbox")
        if inbox is None:
            return data
        try:
            cleaned = rules.clean_rule(
                inbox_id=inbox.pk,
                event=data.get("event"),
                no_reply_minutes=data.get("no_reply_minutes"),
                conditions=data.get("conditions") or [],
                actions=data.get("actions") or [],
            )
        except ApplicationError as error:
            raise forms.ValidationError(f"{error.message} ({', '.join(error.fields)})") from None
        data.update(cleaned)
        return data


@admin.register(AutomationRule)
class AutomationRuleAdmin(admin.ModelAdmin):
    form = AutomationRuleForm
    list_display = ("name", "inbox", "event", "active", "position")
    list_filter = ("inbox", "event", "active")
    inlines = [RunInline]

    def save_model(self, request, obj, form, change) -> None:
        if not obj.webhook_secret:
            obj.webhook_secret = secrets.token_urlsafe(32)
        super().save_model(request, obj, form, change)


@admin.register(AutomationRun)
class AutomationRunAdmin(admin.ModelAdmin):
    list_display = ("rule", "event_key", "conversation", "outcome", "created_at")
    list_filter = ("outcome", "event")
    readonly_fields = [f.name for f in AutomationRun._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("url", "status", "attempts", "last_status_code", "created_at")
    list_filter = ("status",)
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(CsatSurvey)
class CsatSurveyAdmin(admin.ModelAdmin):
    list_display = ("conversation", "rating", "outcome", "created_at", "rated_at")
    list_filter = ("rating", "outcome")
    search_fields = ("comment",)
    readonly_fields = [f.name for f in CsatSurvey._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
