from django.apps import AppConfig


class TikTokChannelConfig(AppConfig):
    name = "tiktok_channel"
    verbose_name = "TikTok over Infobip"
