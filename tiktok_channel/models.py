"""Infobip accounts and the TikTok business accounts (senders) connected through them."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models

from inbox.fields import EncryptedTextField
from tiktok_channel.webhook_auth import HMAC_ALGORITHMS, WebhookAuth

CHANNEL = "tiktok"
# The name of the Infobip backend in inbox.providers (a conversation's `provider`).
PROVIDER = "infobip"


def new_webhook_token() -> str:
    return secrets.token_urlsafe(24)


class InfobipAccount(models.Model):
    class AuthMode(models.TextChoices):
        HMAC = "hmac", "HMAC signature"
        BASIC = "basic", "Basic (username and password)"
        HEADER = "header", "Static secret header"

    class HmacAlgorithm(models.TextChoices):
        HMAC_MD5 = "HMAC_MD5"
        HMAC_SHA_1 = "HMAC_SHA_1"
        HMAC_SHA_224 = "HMAC_SHA_224"
        HMAC_SHA_256 = "HMAC_SHA_256"
        HMAC_SHA_384 = "HMAC_SHA_384"
        HMAC_SHA_512 = "HMAC_SHA_512"

    class SetupState(models.TextChoices):
        MANUAL = "manual", "Not set up from here (manual)"
        COMPLETE = "complete", "Set up"
        PARTIAL = "partial", "Partly set up: finish in Infobip's portal"
        FAILED = "failed", "Setup failed"

    class SignatureEncoding(models.TextChoices):
        HEX = "hex", "hex"
        BASE64 = "base64", "base64"

    name = models.CharField(max_length=120, unique=True)
    base_url = models.URLField(help_text="Your Infobip API base URL, e.g. https://xxxxx.api.infobip.com")
    api_key = EncryptedTextField(help_text="Needs scopes tiktok:manage and saas:tiktok-ads:manage.")
    webhook_auth = models.CharField(max_length=16, choices=AuthMode.choices, default=AuthMode.HMAC)
    hmac_algorithm = models.CharField(max_length=16, choices=HmacAlgorithm.choices, default=HmacAlgorithm.HMAC_SHA_256)
    signature_header = models.CharField(
        max_length=100,
        default="X-Hub-Signature",
        help_text="Header carrying the HMAC signature, or the static secret in 'header' mode.",
    )
    signature_encoding = models.CharField(
        max_length=8, choices=SignatureEncoding.choices, default=SignatureEncoding.HEX
    )
    signature_prefix = models.CharField(max_length=32, blank=True, help_text="e.g. sha256=")
    webhook_secret = EncryptedTextField(blank=True, help_text="HMAC key, or the static header's value.")
    basic_username = models.CharField(max_length=200, blank=True)
    basic_password = EncryptedTextField(blank=True)
    webhook_token = models.CharField(max_length=64, unique=True, default=new_webhook_token, editable=False)
    webhook_base_url = models.URLField(
        blank=True,
        editable=False,
        help_text="Where this account's webhooks reach us (scheme://host:port); empty: PUBLIC_BASE_URL. "
        "Set by make run's demo so every process posts where its web server listens.",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # What the one-step setup (tiktok_channel/setup.py) created in Infobip's Subscriptions Management, by the ids
    # Infobip returned; teardown deletes exactly these. Empty: not created by us (or not yet).
    subscription_channel = models.CharField(
        max_length=40, default="TIKTOK", help_text="Infobip's subscription channel for TikTok events."
    )
    client_certificate_id = models.CharField(
        max_length=255,
        blank=True,
        help_text="Optional: an Infobip client certificate id (mutual TLS); enables Infobip's connection test.",
    )
    infobip_security_id = models.CharField(max_length=255, blank=True, editable=False)
    infobip_profile_id = models.CharField(max_length=255, blank=True, editable=False)
    infobip_subscription_id = models.CharField(max_length=255, blank=True, editable=False)
    setup_state = models.CharField(max_length=16, choices=SetupState.choices, default=SetupState.MANUAL, editable=False)
    setup_message = models.TextField(blank=True, editable=False)
    setup_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(hmac_algorithm__in=list(HMAC_ALGORITHMS)), name="account_known_hmac_algorithm"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def webhook_url(self) -> str:
        """The URL to paste into Infobip's notification profile (all event kinds)."""
        base = (self.webhook_base_url or settings.PUBLIC_BASE_URL).rstrip("/")
        return f"{base}/webhooks/infobip/tiktok/{self.webhook_token}/"

    def webhook_auth_settings(self) -> WebhookAuth:
        return WebhookAuth(
            mode=self.webhook_auth,
            secret=self.webhook_secret or "",
            hmac_algorithm=self.hmac_algorithm,
            signature_header=self.signature_header,
            signature_encoding=self.signature_encoding,
            signature_prefix=self.signature_prefix,
            username=self.basic_username,
            password=self.basic_password or "",
        )


class TikTokSender(models.Model):
    """A TikTok business account reachable through an Infobip account; its messages land in one inbox."""

    account = models.ForeignKey(InfobipAccount, on_delete=models.CASCADE, related_name="senders")
    business_account_id = models.CharField(max_length=200, unique=True)
    display_name = models.CharField(max_length=200, blank=True)
    inbox = models.ForeignKey("inbox.Inbox", on_delete=models.PROTECT, related_name="tiktok_senders")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "TikTok sender"

    def __str__(self) -> str:
        return self.display_name or self.business_account_id


# The direct provider's models live in their own package; imported here so Django finds them.
from tiktok_channel.direct.engagement.models import (  # noqa: E402
    AccountEngagement,
    AccountSnapshot,
    Video,
    VideoSnapshot,
)
from tiktok_channel.direct.models import DIRECT_PROVIDER, TikTokApp, TikTokConnection  # noqa: E402

__all__ = [
    "CHANNEL",
    "DIRECT_PROVIDER",
    "PROVIDER",
    "AccountEngagement",
    "AccountSnapshot",
    "Ad",
    "AdAccount",
    "AdGroup",
    "AdMetricDaily",
    "AdvertiserAuthorization",
    "Campaign",
    "CustomAudience",
    "InfobipAccount",
    "Post",
    "TikTokApp",
    "TikTokConnection",
    "TikTokSender",
    "Video",
    "VideoSnapshot",
]
from tiktok_channel.ads.models import (  # noqa: E402, F401
    Ad,
    AdAccount,
    AdGroup,
    AdMetricDaily,
    AdvertiserAuthorization,
    Campaign,
    CustomAudience,
)
from tiktok_channel.direct.publishing.models import Post  # noqa: E402, F401
