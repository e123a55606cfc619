"""The one door to the live layer: services publish small events to the agents watching an inbox.

Push is a hint: delivery is at most once and never blocks or fails the write that caused it
(Redis down means no live update, not a lost message). Clients reload from the REST API.

Events leave through one long-lived event loop per process (a daemon thread), so a request pays for
handing the event over, not for an event loop and a Redis connection of its own (bench/README.md).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from concurrent.futures import Future

from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

_publisher: tuple[int, asyncio.AbstractEventLoop] | None = None
_publisher_lock = threading.Lock()


def inbox_group(inbox_id: int) -> str:
    return f"inbox.{inbox_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def _publisher_loop() -> asyncio.AbstractEventLoop:
    """This process's publishing loop (a forked worker starts its own)."""
    global _publisher
    with _publisher_lock:
        if _publisher is None or _publisher[0] != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="live-publisher", daemon=True).start()
            _publisher = (os.getpid(), loop)
        return _publisher[1]


def _report_failure(group: str, event_type: str, future: Future) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.warning("live event %s to %s not delivered: %r", event_type, group, future.exception())


def send_now(group: str, event: dict) -> Future:
    """Hand the event to the publishing loop; returns at once (the future is for tests and shutdown)."""
    message = {"type": "inbox.event", "event": event}
    future = asyncio.run_coroutine_threadsafe(get_channel_layer().group_send(group, message), _publisher_loop())
    future.add_done_callback(lambda done: _report_failure(group, event.get("type", "?"), done))
    return future


def publish_on_commit(*, inbox_id: int, event: dict) -> None:
    """Send `event` to the inbox's watchers once the current transaction commits."""
    group = inbox_group(inbox_id)
    transaction.on_commit(lambda: send_now(group, event))
