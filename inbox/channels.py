"""The one narrow door from the contact center back to a channel: "send this message".

A channel registers how it enqueues a send (its AppConfig.ready does it), so inbox never imports a
channel. Services call `enqueue_send` only from `transaction.on_commit`: the queued row exists first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from inbox.models import Message

logger = logging.getLogger(__name__)

# channel name → callable taking a message id that schedules the send (e.g. a Celery task's delay).
_senders: dict[str, Callable[[int], None]] = {}


def register(channel_name: str, send_callable: Callable[[int], None]) -> None:
    _senders[channel_name] = send_callable


def can_send(channel_name: str) -> bool:
    return channel_name in _senders


def enqueue_send(message: Message) -> None:
    """Schedule the send of a queued outbound message.

    Never raises: a broker outage must not fail the agent's request after the row is committed; the
    channel's sweeper re-enqueues messages left in `queued`.
    """
    send = _senders.get(message.channel)
    if send is None:
        logger.error("no sender registered for channel %r (message %s)", message.channel, message.pk)
        return
    try:
        send(message.pk)
    except Exception:  # noqa: BLE001 - the sweeper picks the row up again
        logger.warning("could not enqueue the send of message %s; the sweeper will", message.pk, exc_info=True)
