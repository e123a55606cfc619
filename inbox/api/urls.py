from django.urls import include, path

from inbox.api import views

urlpatterns = [
    path("conversations/", views.ConversationListView.as_view(), name="conversation-list"),
    path("conversations/unread-counts/", views.UnreadCountsView.as_view(), name="conversation-unread-counts"),
    path("conversations/<int:pk>/", views.ConversationDetailView.as_view(), name="conversation-detail"),
    path("conversations/<int:pk>/messages/", views.MessageListView.as_view(), name="conversation-messages"),
    path("conversations/<int:pk>/assign/", views.AssignView.as_view(), name="conversation-assign"),
    path("conversations/<int:pk>/unassign/", views.UnassignView.as_view(), name="conversation-unassign"),
    path("conversations/<int:pk>/resolve/", views.ResolveView.as_view(), name="conversation-resolve"),
    path("conversations/<int:pk>/reopen/", views.ReopenView.as_view(), name="conversation-reopen"),
    path("conversations/<int:pk>/snooze/", views.SnoozeView.as_view(), name="conversation-snooze"),
    path("conversations/<int:pk>/priority/", views.PriorityView.as_view(), name="conversation-priority"),
    path("conversations/<int:pk>/read/", views.ReadView.as_view(), name="conversation-read"),
    path("conversations/<int:pk>/typing/", views.TypingView.as_view(), name="conversation-typing"),
    path("conversations/<int:pk>/conversions/", views.ConversionListView.as_view(), name="conversation-conversions"),
    path("conversations/<int:pk>/notes/", views.NoteCreateView.as_view(), name="conversation-notes"),
    path("inboxes/<int:pk>/members/", views.InboxMembersView.as_view(), name="inbox-members"),
    path("labels/", views.LabelListView.as_view(), name="label-list"),
    path("labels/<int:pk>/", views.LabelDetailView.as_view(), name="label-detail"),
    path("canned-responses/", views.CannedResponseListView.as_view(), name="canned-list"),
    path("canned-responses/<int:pk>/", views.CannedResponseDetailView.as_view(), name="canned-detail"),
    path("limits/", views.LimitsView.as_view(), name="limits"),
    path("messages/<int:pk>/", views.MessageDetailView.as_view(), name="message-detail"),
    path("messages/<int:pk>/retry/", views.MessageRetryView.as_view(), name="message-retry"),
    path("messages/<int:pk>/hide/", views.MessageActionView.as_view(action_name="hide"), name="message-hide"),
    path("messages/<int:pk>/unhide/", views.MessageActionView.as_view(action_name="unhide"), name="message-unhide"),
    path("messages/<int:pk>/delete/", views.MessageActionView.as_view(action_name="delete"), name="message-delete"),
    path("contacts/", views.ContactListView.as_view(), name="contact-list"),
    path("contacts/<int:pk>/", views.ContactDetailView.as_view(), name="contact-detail"),
    path("reports/", include("inbox.reports.urls")),
    # Routing and automation: availability, teams, automation rules, CSAT (inbox/automation/).
    path("", include("inbox.automation.urls")),
]
