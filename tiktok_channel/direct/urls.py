from django.urls import path

from tiktok_channel.direct import media, oauth, webhooks

# Under /tiktok/: the Connect round trip.
urlpatterns = [
    path("apps/<int:app_id>/connect/", oauth.connect, name="tiktok_direct_connect"),
    path("oauth/callback/", oauth.callback, name="tiktok_direct_callback"),
    path("media/<str:business_id>/<str:message_id>/", media.received_image, name="tiktok_direct_media"),
]

# Under /webhooks/tiktok/: one URL per app.
webhook_urlpatterns = [
    path("<str:token>/", webhooks.tiktok_webhook, name="tiktok_direct_webhook"),
]
