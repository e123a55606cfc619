"""The Posts page (`/posts/`) and its API (`/api/v1/videos/...`), mounted in config/urls.py."""

from django.urls import path

from tiktok_channel.direct.engagement import api, views

page_urlpatterns = [path("", views.posts_page, name="posts")]

api_urlpatterns = [
    path("videos/", api.VideoListView.as_view(), name="video-list"),
    path("videos/accounts/", api.AccountListView.as_view(), name="video-account-list"),
    path("videos/accounts/<int:pk>/sync/", api.SyncView.as_view(), name="video-account-sync"),
    path("videos/<int:pk>/", api.VideoDetailView.as_view(), name="video-detail"),
]
