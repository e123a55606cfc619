"""Shared builders for the inbox tests."""

from datetime import timedelta

from django.utils import timezone
from rest_framework.test import APIClient

from inbox.events import InboundMessage
from inbox.services import message_receive


def receive(inbox, user_id, n, *, text="hello", minutes_ago=0, **kw):
    event = InboundMessage(
        channel="tiktok",
        endpoint_id="biz-1",
        channel_user_id=user_id,
        provider_message_id=f"{user_id}-{n}",
        provider_conversation_id=user_id,
        sent_at=timezone.now() - timedelta(minutes=minutes_ago),
        type=kw.pop("type", "text"),
        text=text,
        provider=kw.pop("provider", "infobip"),
        **kw,
    )
    message, _ = message_receive(inbox_id=inbox.pk, event=event)
    return message.conversation


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client
