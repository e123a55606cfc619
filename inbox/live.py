"""The one door to the live layer: services publish small events to the agents watching an inbox.

Push is a hint: delivery is at most once and never blocks or fails the write that caused it
(Redis down means no live update, not a lost message). Clients reload from the REST API.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def inbox_group(inbox_id: int) -> str:
    return f"inbox.{inbox_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def send_now(group: str, event: dict) -> None:
    try:
        async_to_sync(get_channel_layer().group_send)(group, {"type": "inbox.event", "event": event})
    except Exception:  # noqa: BLE001 - a live hint must never break the write path
        logger.warning("live event %s to %s not delivered", event.get("type"), group, exc_info=True)


def publish_on_commit(*, inbox_id: int, event: dict) -> None:
    """Send `event` to the inbox's watchers once the current transaction commits."""
    group = inbox_group(inbox_id)
    transaction.on_commit(lambda: send_now(group, event))
