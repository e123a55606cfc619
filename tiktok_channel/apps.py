from django.apps import AppConfig


class TikTokChannelConfig(AppConfig):
    name = "tiktok_channel"
    verbose_name = "TikTok over Infobip"

    def ready(self) -> None:
        # The contact center reaches the channel only through these hooks (inbox/channels.py).
        from inbox import channels
        from tiktok_channel.models import CHANNEL
        from tiktok_channel.tasks import enqueue_conversion, enqueue_event, enqueue_send

        channels.register(CHANNEL, enqueue_send)
        channels.register_events(CHANNEL, enqueue_event)
        channels.register_conversions(CHANNEL, enqueue_conversion)
