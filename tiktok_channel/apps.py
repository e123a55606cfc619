from django.apps import AppConfig


class TikTokChannelConfig(AppConfig):
    name = "tiktok_channel"
    verbose_name = "TikTok (over Infobip, and direct)"

    def ready(self) -> None:
        # The contact center reaches the channel only through its backend (inbox/providers.py).
        from django.db.models.signals import post_delete, post_save

        from tiktok_channel.infobip_webhooks import clear_lookup_caches
        from tiktok_channel.models import InfobipAccount, TikTokSender

        for model in (InfobipAccount, TikTokSender):
            post_save.connect(clear_lookup_caches, sender=model, dispatch_uid=f"clear-lookups-{model.__name__}")
            post_delete.connect(clear_lookup_caches, sender=model, dispatch_uid=f"clear-lookups-del-{model.__name__}")
        from inbox import providers
        from tiktok_channel.ads.webhooks import AdsBackend
        from tiktok_channel.backend import InfobipBackend
        from tiktok_channel.direct.backend import DirectBackend

        providers.register(InfobipBackend())
        providers.register(DirectBackend())
        providers.register(AdsBackend())
        # Its beat task (Celery's autodiscovery looks only at `<app>.tasks`).
        from tiktok_channel.ads import tasks as ads_tasks  # noqa: F401
        from tiktok_channel.direct import tasks  # noqa: F401
        from tiktok_channel.direct.engagement import tasks as engagement_tasks  # noqa: F401
        from tiktok_channel.direct.publishing import tasks as publishing_tasks  # noqa: F401
