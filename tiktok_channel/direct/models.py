"""A TikTok app (TikTok API for Business credentials) and the business accounts connected to it with OAuth."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.urls import reverse

from inbox.fields import EncryptedTextField

# The name of the direct backend in inbox.providers (a conversation's `provider`).
DIRECT_PROVIDER = "tiktok_direct"


def new_webhook_path_token() -> str:
    return secrets.token_urlsafe(24)


def default_api_base_url() -> str:
    return settings.TIKTOK_DIRECT_API_BASE_URL


def default_auth_base_url() -> str:
    return settings.TIKTOK_DIRECT_AUTH_BASE_URL


class TikTokApp(models.Model):
    """An app of TikTok's developer portal (TikTok API for Business): its key and secret sign our calls, its
    secret signs TikTok's webhooks; every business account that authorized it delivers to one webhook URL."""

    name = models.CharField(max_length=120, unique=True)
    client_key = models.CharField(max_length=200, help_text="The app id (client key) from TikTok's portal.")
    client_secret = EncryptedTextField(help_text="The app secret: signs token calls and TikTok's webhooks.")
    api_base_url = models.URLField(default=default_api_base_url, help_text="e.g. https://business-api.tiktok.com")
    auth_base_url = models.URLField(default=default_auth_base_url, help_text="e.g. https://www.tiktok.com")
    inbox = models.ForeignKey("inbox.Inbox", on_delete=models.PROTECT, related_name="tiktok_apps")
    webhook_path_token = models.CharField(max_length=64, unique=True, default=new_webhook_path_token, editable=False)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "TikTok app (direct)"
        verbose_name_plural = "TikTok apps (direct)"

    def __str__(self) -> str:
        return self.name

    @property
    def webhook_url(self) -> str:
        return f"{settings.PUBLIC_BASE_URL}{reverse('tiktok_direct_webhook', args=[self.webhook_path_token])}"

    @property
    def connect_url(self) -> str:
        return f"{settings.PUBLIC_BASE_URL}{reverse('tiktok_direct_connect', args=[self.pk])}"

    @staticmethod
    def redirect_uri() -> str:
        """The OAuth callback to register in TikTok's portal (one for every app: the state names the app)."""
        return f"{settings.PUBLIC_BASE_URL}{reverse('tiktok_direct_callback')}"

    def api_url(self, path: str) -> str:
        return f"{self.api_base_url.rstrip('/')}{settings.TIKTOK_DIRECT_API_PATH}{path}"


class TikTokConnection(models.Model):
    """A TikTok business account connected to an app (OAuth): its tokens, their expiry, and whether it can send."""

    class State(models.TextChoices):
        CONNECTED = "connected", "Connected"
        REAUTHORIZATION_NEEDED = "reauthorization_needed", "Re-authorization needed"
        DISCONNECTED = "disconnected", "Disconnected"

    app = models.ForeignKey(TikTokApp, on_delete=models.CASCADE, related_name="connections")
    account_id = models.CharField(
        max_length=200, unique=True, help_text="TikTok's open_id of the business account (its business_id)."
    )
    display_name = models.CharField(max_length=200, blank=True)
    username = models.CharField(max_length=200, blank=True)
    scopes = models.TextField(blank=True, help_text="Granted scopes, comma-separated.")
    access_token = EncryptedTextField(blank=True)
    refresh_token = EncryptedTextField(blank=True)
    access_token_expires_at = models.DateTimeField(null=True, blank=True)
    refresh_token_expires_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=32, choices=State.choices, default=State.CONNECTED)
    last_error = models.TextField(blank=True)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    connected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    connected_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["display_name", "account_id"]
        verbose_name = "TikTok connection (direct)"
        verbose_name_plural = "TikTok connections (direct)"
        indexes = [
            models.Index(fields=["state", "access_token_expires_at"], name="tiktokconn_state_expiry"),
        ]

    def __str__(self) -> str:
        return self.display_name or self.username or self.account_id
