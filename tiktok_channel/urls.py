from django.urls import path

from tiktok_channel.views import infobip_webhook

urlpatterns = [
    path("<str:token>/", infobip_webhook, name="infobip_webhook"),
    # Kind-specific URLs for per-message webhooks (webhooks.delivery.url / webhooks.seen.url); the
    # results are still classified by shape, the path only labels the ledger entry.
    path("<str:token>/inbound/", infobip_webhook, {"kind": "inbound"}, name="infobip_webhook_inbound"),
    path("<str:token>/delivery/", infobip_webhook, {"kind": "delivery"}, name="infobip_webhook_delivery"),
    path("<str:token>/seen/", infobip_webhook, {"kind": "seen"}, name="infobip_webhook_seen"),
]
