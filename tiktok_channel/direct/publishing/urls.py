from django.urls import path

from tiktok_channel.direct.publishing import views

app_name = "publishing"

# Under /posts/ (the /posts/ page itself, the videos with their metrics, is another module's).
urlpatterns = [
    path("new/", views.new_post, name="new"),
    path("uploads/", views.uploads, name="uploads"),
    path("uploads/data/", views.uploads_data, name="uploads_data"),
    path("media/<str:name>", views.post_media, name="media"),
]
