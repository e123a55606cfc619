from django.urls import path

from inbox.automation import api

urlpatterns = [
    path("availability/", api.MyAvailabilityView.as_view(), name="my-availability"),
    path("inboxes/<int:pk>/availability/", api.InboxAvailabilityView.as_view(), name="inbox-availability"),
    path("inboxes/<int:pk>/routing/", api.InboxRoutingView.as_view(), name="inbox-routing"),
    path("teams/", api.TeamListView.as_view(), name="team-list"),
    path("automation-rules/", api.RuleListView.as_view(), name="automation-rule-list"),
    path("automation-rules/<int:pk>/", api.RuleDetailView.as_view(), name="automation-rule-detail"),
    path("conversations/<int:pk>/csat/", api.ConversationCsatView.as_view(), name="conversation-csat"),
    path("automation-runs/", api.RunListView.as_view(), name="automation-run-list"),
]
