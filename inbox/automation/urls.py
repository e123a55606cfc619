from django.urls import path

from inbox.automation import api

urlpatterns = [
    path("availability/", api.MyAvailabilityView.as_view(), name="my-availability"),
    path("inboxes/<int:pk>/availability/", api.InboxAvailabilityView.as_view(), name="inbox-availability"),
    path("teams/", api.TeamListView.as_view(), name="team-list"),
]
