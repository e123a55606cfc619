"""The narrow doors from the contact center back to a channel: send this message, tell the user we are
typing or have read, report this conversion.

A channel registers how it schedules each of these (its AppConfig.ready does it), so inbox never imports a
channel. Services call the `enqueue_*` functions only from `transaction.on_commit` (or outside any
transaction): the row a task loads exists first. None of them raises: a broker outage must not fail an
agent's request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from inbox.models import Conversation, Conversion, Message

logger = logging.getLogger(__name__)

# What an agent's activity tells the user, best effort (kinds of `enqueue_event`).
EVENT_TYPING = "typing"
EVENT_READ = "read"
EVENT_KINDS = (EVENT_TYPING, EVENT_READ)

# channel name → callable taking a message id that schedules the send (e.g. a Celery task's delay).
_senders: dict[str, Callable[[int], None]] = {}
# channel name → callable taking (conversation id, event kind) that schedules the event.
_event_senders: dict[str, Callable[[int, str], None]] = {}
# channel name → callable taking a conversion id that schedules its report.
_conversion_reporters: dict[str, Callable[[int], None]] = {}


def register(channel_name: str, send_callable: Callable[[int], None]) -> None:
    _senders[channel_name] = send_callable


def register_events(channel_name: str, event_callable: Callable[[int, str], None]) -> None:
    _event_senders[channel_name] = event_callable


def register_conversions(channel_name: str, report_callable: Callable[[int], None]) -> None:
    _conversion_reporters[channel_name] = report_callable


def can_send(channel_name: str) -> bool:
    return channel_name in _senders


def can_send_events(channel_name: str) -> bool:
    return channel_name in _event_senders


def can_report_conversions(channel_name: str) -> bool:
    return channel_name in _conversion_reporters


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


def enqueue_event(conversation: Conversation, kind: str) -> None:
    """Schedule a typing indicator or read receipt to the conversation's user. Best effort: a channel
    without events, or a broker outage, only logs (nothing is recorded, nothing retried)."""
    if kind not in EVENT_KINDS:
        logger.error("unknown event kind %r (conversation %s)", kind, conversation.pk)
        return
    channel = conversation.contact.channel
    send = _event_senders.get(channel)
    if send is None:
        logger.debug("channel %r sends no %s events", channel, kind)
        return
    try:
        send(conversation.pk, kind)
    except Exception:  # noqa: BLE001 - an event is a courtesy, never worth failing the agent's request
        logger.warning("could not enqueue the %s event of conversation %s", kind, conversation.pk, exc_info=True)


def enqueue_conversion(conversion: Conversion) -> None:
    """Schedule the report of a queued conversion. Never raises; the row stays `queued` if this fails."""
    channel = conversion.conversation.contact.channel
    report = _conversion_reporters.get(channel)
    if report is None:
        logger.error("no conversion reporter registered for channel %r (conversion %s)", channel, conversion.pk)
        return
    try:
        report(conversion.pk)
    except Exception:  # noqa: BLE001 - the row is committed; an admin can see it stayed queued
        logger.warning("could not enqueue the report of conversion %s", conversion.pk, exc_info=True)
