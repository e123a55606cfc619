"""Websocket routes of the agent inbox (the consumer arrives with the inbox UI issue)."""

websocket_urlpatterns: list = []
