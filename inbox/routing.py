"""Websocket routes of the agent inbox."""

from django.urls import path

from inbox.consumers import InboxConsumer

websocket_urlpatterns = [path("ws/inbox/", InboxConsumer.as_asgi())]
