"""Admin for TikTok apps and their connected business accounts. Secrets and tokens are never shown back."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from tiktok_channel.direct import tokens
from tiktok_channel.direct.models import TikTokApp, TikTokConnection


class TikTokAppForm(forms.ModelForm):
    """The secret is write-only: never rendered back; leaving the box empty keeps the stored value."""

    client_secret = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False), help_text="Leave empty to keep."
    )
    api_base_url = forms.URLField(assume_scheme="https", help_text="e.g. https://business-api.tiktok.com")
    auth_base_url = forms.URLField(assume_scheme="https", help_text="e.g. https://www.tiktok.com")

    class Meta:
        model = TikTokApp
        fields = ["name", "client_key", "client_secret", "api_base_url", "auth_base_url", "inbox", "active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["client_secret"] = ""
        if not self.instance.pk:
            self.initial.setdefault("api_base_url", TikTokApp._meta.get_field("api_base_url").get_default())
            self.initial.setdefault("auth_base_url", TikTokApp._meta.get_field("auth_base_url").get_default())

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("client_secret") and self.instance.pk:
            cleaned["client_secret"] = self.instance.client_secret
        if not cleaned.get("client_secret"):
            self.add_error("client_secret", "The app secret is required.")
        return cleaned


class ConnectionInline(admin.TabularInline):
    model = TikTokConnection
    extra = 0
    can_delete = False
    fields = ["account_id", "display_name", "state", "access_token_expires_at", "last_error"]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


def _copyable(element_id: str, value: str) -> str:
    return format_html(
        '<code style="user-select:all;word-break:break-all" id="{}">{}</code> '
        '<button type="button" class="button copy-button" data-copy-target="{}">Copy</button>',
        element_id,
        value,
        element_id,
    )


@admin.register(TikTokApp)
class TikTokAppAdmin(admin.ModelAdmin):
    form = TikTokAppForm
    list_display = ["name", "client_key", "inbox", "active", "connection_count", "connect_button"]
    list_select_related = ["inbox"]
    search_fields = ["name", "client_key", "connections__account_id", "connections__display_name"]
    readonly_fields = ["connect_button", "webhook_url_for_tiktok", "redirect_uri_for_tiktok", "client_secret_stored"]
    inlines = [ConnectionInline]

    class Media:
        js = ["inbox/admin-copy.js"]

    fieldsets = [
        (None, {"fields": ["name", "client_key", "client_secret", "client_secret_stored", "inbox", "active"]}),
        (
            "Paste these into TikTok's developer portal",
            {"fields": ["redirect_uri_for_tiktok", "webhook_url_for_tiktok"]},
        ),
        ("Connect a TikTok business account", {"fields": ["connect_button"]}),
        ("Hosts", {"fields": ["api_base_url", "auth_base_url"], "classes": ["collapse"]}),
    ]

    @admin.display(description="Connect")
    def connect_button(self, obj: TikTokApp) -> str:
        if not obj.pk:
            return "Shown after saving."
        return format_html('<a class="button" href="{}">Connect a TikTok account</a>', obj.connect_url)

    @admin.display(description="Webhook URL")
    def webhook_url_for_tiktok(self, obj: TikTokApp) -> str:
        return _copyable("webhook-url", obj.webhook_url) if obj.pk else "Shown after saving."

    @admin.display(description="Redirect URI")
    def redirect_uri_for_tiktok(self, obj: TikTokApp) -> str:
        return _copyable("redirect-uri", TikTokApp.redirect_uri())

    @admin.display(description="Stored secret")
    def client_secret_stored(self, obj: TikTokApp) -> str:
        return ("•" * 8) if obj.pk and obj.client_secret else "— not set —"

    @admin.display(description="Accounts")
    def connection_count(self, obj: TikTokApp) -> int:
        return obj.connections.count()


@admin.register(TikTokConnection)
class TikTokConnectionAdmin(admin.ModelAdmin):
    """Connections come from the Connect round trip; here they are looked at, reconnected or disconnected."""

    list_display = ["__str__", "account_id", "app", "state", "access_token_expires_at", "last_error"]
    list_filter = ["state", "app"]
    list_select_related = ["app"]
    search_fields = ["account_id", "display_name", "username"]
    fields = [
        "app",
        "account_id",
        "display_name",
        "username",
        "state",
        "last_error",
        "scopes",
        "tokens_stored",
        "access_token_expires_at",
        "refresh_token_expires_at",
        "last_refreshed_at",
        "connected_by",
        "connected_at",
        "buttons",
    ]
    readonly_fields = fields
    actions = ["disconnect_selected"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="Tokens")
    def tokens_stored(self, obj: TikTokConnection) -> str:
        return "stored (encrypted)" if obj.access_token else "none"

    @admin.display(description="Actions")
    def buttons(self, obj: TikTokConnection) -> str:
        reconnect = format_html('<a class="button" href="{}">Reconnect</a>', obj.app.connect_url)
        if obj.state == TikTokConnection.State.DISCONNECTED:
            return reconnect
        disconnect = reverse("admin:tiktok_channel_tiktokconnection_disconnect", args=[obj.pk])
        return format_html('{} <a class="button" href="{}">Disconnect</a>', reconnect, disconnect)

    def get_urls(self):
        return [
            path(
                "<int:connection_id>/disconnect/",
                self.admin_site.admin_view(self.disconnect_view),
                name="tiktok_channel_tiktokconnection_disconnect",
            ),
            *super().get_urls(),
        ]

    def disconnect_view(self, request: HttpRequest, connection_id: int) -> HttpResponse:
        """GET: confirm; POST: revoke the token at TikTok and forget it."""
        connection = get_object_or_404(TikTokConnection, pk=connection_id)
        if not self.has_change_permission(request, connection):
            return HttpResponse(status=403)
        if request.method == "POST":
            self._disconnect(request, connection)
            return HttpResponseRedirect(reverse("admin:tiktok_channel_tiktokconnection_change", args=[connection.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Disconnect {connection}?",
            "connection": connection,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/tiktok_channel/disconnect_confirm.html", context)

    def _disconnect(self, request: HttpRequest, connection: TikTokConnection) -> None:
        problem = tokens.disconnect(connection.pk)
        if problem:
            self.message_user(
                request,
                f"{connection} is disconnected here; TikTok did not confirm the revoke: {problem}",
                messages.WARNING,
            )
        else:
            self.message_user(request, f"{connection} is disconnected and its token revoked.", messages.SUCCESS)

    @admin.action(description="Disconnect the selected accounts (revokes their tokens)")
    def disconnect_selected(self, request, queryset) -> None:
        for connection in queryset:
            self._disconnect(request, connection)
