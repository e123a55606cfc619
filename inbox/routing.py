"""Websocket routes of the agent inbox."""

from django.urls import path

from inbox.consumers import InboxConsumer, StaffPageConsumer

websocket_urlpatterns = [
    path("ws/inbox/", InboxConsumer.as_asgi()),
    # Staff pages outside the inbox: their live hints without counting the user present for auto-assignment.
    path("ws/staff/", StaffPageConsumer.as_asgi()),
    path("ws/staff/inboxes/", StaffPageConsumer.as_asgi(with_inboxes=True)),
]
