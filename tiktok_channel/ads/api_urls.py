from django.urls import path

from tiktok_channel.ads import api

urlpatterns = [
    path("", api.AdsIndexView.as_view(), name="ads-index"),
    path("ads/<str:ad_id>/", api.AdDetailView.as_view(), name="ads-ad"),
    path("campaigns/<str:campaign_id>/", api.CampaignDetailView.as_view(), name="ads-campaign"),
    path("<str:level>/<int:pk>/status/", api.StatusView.as_view(), name="ads-status"),
]
