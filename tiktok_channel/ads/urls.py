from django.urls import path

from tiktok_channel.ads import views, webhooks

# Under /ads/: the staff page and its forms.
urlpatterns = [
    path("", views.ads_page, name="tiktok_ads_page"),
    path("connect/", views.connect, name="tiktok_ads_connect"),
    path("callback/", views.callback, name="tiktok_ads_callback"),
    path("accounts/", views.accounts_choose, name="tiktok_ads_accounts"),
    path("campaigns/", views.campaign_create, name="tiktok_ads_campaign_create"),
    path("campaigns/<int:pk>/", views.campaign_detail, name="tiktok_ads_campaign"),
    path("campaigns/<int:campaign_pk>/adgroups/", views.adgroup_create, name="tiktok_ads_adgroup_create"),
    path("adgroups/<int:adgroup_pk>/ads/", views.ad_create, name="tiktok_ads_ad_create"),
    path("ads/<int:pk>/", views.ad_detail, name="tiktok_ads_ad"),
    path("<str:level>/<int:pk>/status/", views.status_change, name="tiktok_ads_status"),
    path("audiences/", views.audience_create, name="tiktok_ads_audience_create"),
]

# Under /webhooks/tiktok-ads/: the review webhooks (Subscription API).
webhook_urlpatterns = [
    path("<str:token>/", webhooks.ads_webhook, name="tiktok_ads_webhook"),
]
