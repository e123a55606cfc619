"""Drive routing and automation through the real webhook: signed Infobip requests, applied inline."""

from __future__ import annotations

from datetime import datetime

from inbox.models import Conversation
from tests.tiktok_channel.webhooks import post
from tiktok_channel.sandbox import payloads as p


def user_writes(client, account, user_id: str, text: str = "Hi!", *, at: datetime | None = None, **content):
    """A TikTok user's message arrives through the signed webhook; returns the conversation."""
    message = content.pop("content", None) or p.text_content(text)
    body = p.inbound_event(p.inbound_result(user_id=user_id, business_id="biz-1", content=message, received_at=at))
    response = post(client, account, body, kind="inbound")
    assert response.status_code == 200, response.content
    return Conversation.objects.get(contact__channel_user_id=user_id)
