import json

from django import forms
from django.contrib import admin, messages
from django.template.loader import render_to_string
from django.utils.html import format_html

from inbox import providers
from inbox.errors import ApplicationError
from inbox.models import WebhookEvent
from tiktok_channel.health import account_health
from tiktok_channel.infobip_webhooks import PayloadError, replay_event
from tiktok_channel.models import PROVIDER, InfobipAccount, TikTokSender
from tiktok_channel.setup import account_disconnect, account_setup, webhook_test

SECRET_FIELDS = ["api_key", "webhook_secret", "basic_password"]


class InfobipAccountForm(forms.ModelForm):
    """Secrets are write-only: never rendered back; leaving the box empty keeps the stored value."""

    base_url = forms.URLField(assume_scheme="https", help_text=InfobipAccount._meta.get_field("base_url").help_text)
    api_key = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False), help_text="Leave empty to keep."
    )
    webhook_secret = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False), help_text="Leave empty to keep."
    )
    basic_password = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False), help_text="Leave empty to keep."
    )

    class Meta:
        model = InfobipAccount
        fields = [
            "name",
            "base_url",
            "active",
            "api_key",
            "webhook_auth",
            "hmac_algorithm",
            "signature_header",
            "signature_encoding",
            "signature_prefix",
            "webhook_secret",
            "basic_username",
            "basic_password",
            "subscription_channel",
            "client_certificate_id",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in SECRET_FIELDS:
            self.initial[name] = ""
        self.fields["subscription_channel"].required = False

    def clean(self):
        cleaned = super().clean()
        instance = self.instance
        cleaned["subscription_channel"] = cleaned.get("subscription_channel") or "TIKTOK"
        for name in SECRET_FIELDS:
            if not cleaned.get(name) and instance.pk:
                cleaned[name] = getattr(instance, name)
        if not cleaned.get("api_key"):
            self.add_error("api_key", "An API key is required.")
        auth = cleaned.get("webhook_auth")
        # HMAC without a secret is fine: Set up generates one (until then every webhook is refused).
        if auth == InfobipAccount.AuthMode.HEADER and not cleaned.get("webhook_secret"):
            self.add_error("webhook_secret", f"Required for {auth} authentication.")
        if auth == InfobipAccount.AuthMode.BASIC and not (
            cleaned.get("basic_username") and cleaned.get("basic_password")
        ):
            self.add_error("basic_password", "Basic authentication needs a username and a password.")
        return cleaned


class TikTokSenderInline(admin.TabularInline):
    model = TikTokSender
    extra = 1
    fields = ["business_account_id", "display_name", "inbox", "active"]


def _masked(value: str) -> str:
    if not value:
        return "— not set —"
    return "•" * 8 + (value[-4:] if len(value) >= 12 else "")


@admin.register(InfobipAccount)
class InfobipAccountAdmin(admin.ModelAdmin):
    form = InfobipAccountForm
    list_display = ["name", "base_url", "webhook_auth", "active", "sender_count", "created_at"]
    list_filter = ["webhook_auth", "active"]
    search_fields = ["name", "base_url", "senders__business_account_id"]
    readonly_fields = [
        "webhook_url_for_infobip",
        "api_key_stored",
        "connection_health",
        "setup_state",
        "setup_message",
        "setup_at",
        "infobip_security_id",
        "infobip_profile_id",
        "infobip_subscription_id",
    ]
    inlines = [TikTokSenderInline]
    actions = ["set_up", "test_webhook", "disconnect"]

    class Media:
        js = ["inbox/admin-copy.js"]
        css = {"all": ["tiktok_channel/health.css"]}

    fieldsets = [
        (None, {"fields": ["name", "base_url", "active", "api_key", "api_key_stored"]}),
        (
            "Set up through Infobip's API (select the account in the list, action “Set up in Infobip”)",
            {
                "fields": [
                    "connection_health",
                    "setup_state",
                    "setup_message",
                    "setup_at",
                    "subscription_channel",
                    "client_certificate_id",
                    "infobip_security_id",
                    "infobip_profile_id",
                    "infobip_subscription_id",
                ]
            },
        ),
        (
            "Webhook (Set up fills this in; by hand: paste the URL into your Infobip notification profile)",
            {
                "fields": [
                    "webhook_url_for_infobip",
                    "webhook_auth",
                    "hmac_algorithm",
                    "signature_header",
                    "signature_encoding",
                    "signature_prefix",
                    "webhook_secret",
                    "basic_username",
                    "basic_password",
                ]
            },
        ),
    ]

    @admin.display(description="Webhook URL")
    def webhook_url_for_infobip(self, obj: InfobipAccount) -> str:
        if not obj.pk:
            return "Shown after saving."
        return format_html(
            '<code style="user-select:all" id="webhook-url">{}</code> '
            '<button type="button" class="button copy-button" data-copy-target="webhook-url">Copy</button>',
            obj.webhook_url,
        )

    def has_delete_permission(self, request, obj=None) -> bool:
        # What Set up created in Infobip would be orphaned (and keep posting to a dead URL): Disconnect first.
        if obj is not None and (obj.infobip_subscription_id or obj.infobip_profile_id or obj.infobip_security_id):
            return False
        return super().has_delete_permission(request, obj)

    @admin.display(description="Health")
    def connection_health(self, obj: InfobipAccount) -> str:
        if not obj.pk:
            return "Shown after saving."
        return render_to_string("tiktok_channel/_health.html", {"account": obj, "health": account_health(obj)})

    @admin.action(description="Set up in Infobip (security, notification profile, subscription)")
    def set_up(self, request, queryset) -> None:
        for account in queryset:
            try:
                report = account_setup(account.pk)
            except ApplicationError as exc:
                self.message_user(request, f"{account.name}: {exc.message}", messages.ERROR)
                continue
            level = {"complete": messages.SUCCESS, "partial": messages.WARNING}.get(report.state, messages.ERROR)
            self.message_user(request, f"{account.name}: {report.state}. {report.message}", level)

    @admin.action(description="Test the webhook (Infobip's connection test, then a signed request of ours)")
    def test_webhook(self, request, queryset) -> None:
        for account in queryset:
            outcome = webhook_test(account.pk)
            self.message_user(
                request,
                f"{account.name}: Infobip's test {outcome['infobip']['result']} "
                f"{'; '.join(outcome['infobip']['reasons'])} · our signed request {outcome['ours']['result']} "
                f"{outcome['ours'].get('status') or outcome['ours'].get('reason', '')}",
                messages.SUCCESS if outcome["ok"] else messages.ERROR,
            )

    @admin.action(description="Disconnect (delete in Infobip what Set up created, then deactivate)")
    def disconnect(self, request, queryset) -> None:
        for account in queryset:
            report = account_disconnect(account.pk)
            level = messages.ERROR if report.state == "failed" else messages.SUCCESS
            self.message_user(request, f"{account.name}: {report.message}", level)

    @admin.display(description="Stored API key")
    def api_key_stored(self, obj: InfobipAccount) -> str:
        return _masked(obj.api_key) if obj.pk else "—"

    @admin.display(description="Senders")
    def sender_count(self, obj: InfobipAccount) -> int:
        return obj.senders.count()


@admin.register(TikTokSender)
class TikTokSenderAdmin(admin.ModelAdmin):
    list_display = ["business_account_id", "display_name", "account", "inbox", "active"]
    list_filter = ["active", "account", "inbox"]
    search_fields = ["business_account_id", "display_name"]
    list_select_related = ["account", "inbox"]


def _result_kind(result: object) -> str:
    if not isinstance(result, dict):
        return "unrecognized"
    if "message" in result:
        return "inbound"
    if "seenAt" in result:
        return "seen"
    if "status" in result:
        return "delivery"
    return "unrecognized"


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    """The ledger: read-only (nothing to save), replayable, with the body pretty-printed."""

    list_display = ["id", "received_at", "provider", "connection_id", "kind", "result_count", "verdict", "replayed_at"]
    list_filter = ["verdict", "path_kind", "provider"]
    search_fields = ["body", "error"]
    date_hierarchy = "received_at"
    readonly_fields = ["kind", "body_pretty", "headers_pretty"] + [
        f.name for f in WebhookEvent._meta.fields if f.name not in ("body", "headers")
    ]
    exclude = ["body", "headers"]
    actions = ["replay"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Kind")
    def kind(self, obj: WebhookEvent) -> str:
        """What the request carried: the URL's kind, or for the one all-purpose URL ("any") the results' kind."""
        if obj.path_kind != "any":
            return obj.path_kind
        try:
            results = json.loads(obj.body).get("results")
        except (ValueError, AttributeError):
            return "unparsable (all-events URL)"
        kinds = sorted({_result_kind(result) for result in results or []}) if isinstance(results, list) else []
        return (", ".join(kinds) or "empty") + " (all-events URL)"

    @admin.display(description="Body")
    def body_pretty(self, obj: WebhookEvent) -> str:
        try:
            text = json.dumps(json.loads(obj.body), indent=2, ensure_ascii=False, sort_keys=False)
        except ValueError:
            text = obj.body
        return format_html('<pre style="white-space:pre-wrap;margin:0">{}</pre>', text)

    @admin.display(description="Headers")
    def headers_pretty(self, obj: WebhookEvent) -> str:
        return format_html(
            '<pre style="white-space:pre-wrap;margin:0">{}</pre>', json.dumps(obj.headers, indent=2, sort_keys=True)
        )

    @admin.action(description="Replay the selected webhook requests")
    def replay(self, request, queryset) -> None:
        for event in queryset:
            if event.provider != PROVIDER:  # another provider's request: its backend replays it
                backend = providers.get(event.provider)
                if backend is None:
                    self.message_user(request, f"#{event.pk}: no provider {event.provider!r}", messages.ERROR)
                    continue
                backend.replay_webhook(event)
                self.message_user(request, f"#{event.pk} replayed: {event.summary}", messages.SUCCESS)
                continue
            try:
                outcome = replay_event(event)
            except PayloadError as exc:
                self.message_user(request, f"#{event.pk}: {exc}", messages.ERROR)
                continue
            level = messages.WARNING if outcome.errors else messages.SUCCESS
            self.message_user(request, f"#{event.pk} replayed: {outcome.counts}", level)


# TikTok apps and connections of the direct provider (registered on import).
# Ads rows (read-only).
from tiktok_channel.ads import admin as ads_admin  # noqa: E402, F401
from tiktok_channel.direct import admin as direct_admin  # noqa: E402, F401
from tiktok_channel.direct.publishing import admin as publishing_admin  # noqa: E402, F401
