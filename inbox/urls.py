"""The agents' pages (the data comes from /api/v1/, live hints from /ws/inbox/)."""

from django.urls import path

from inbox import views

app_name = "inbox"

urlpatterns = [
    path("", views.inbox_page, name="home"),
    path("c/<int:pk>/", views.inbox_page, name="conversation"),
]
