"""The live layer: a subscriber of the domain events (inbox/domain_events.py, the one door services use) that
sends the agents watching an inbox the small events their browsers expect.

Push is a hint: delivery is at most once and never blocks or fails the write that caused it
(Redis down means no live update, not a lost message). Clients reload from the REST API.

Events leave through one long-lived event loop per process (a daemon thread), so a request pays for
handing the event over, not for an event loop and a Redis connection of its own (bench/README.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from datetime import datetime

from channels.layers import get_channel_layer

from inbox import domain_events

logger = logging.getLogger(__name__)
# Per group_send, when its events were handed over and when they left (bench/README.md "Ticks"); off by default.
trace = logging.getLogger("inbox.trace")


# Events waiting together leave together: at most this many per group_send.
MAX_BATCH = 200


class _Publisher:
    """One event loop thread per process draining a FIFO queue: events leave in the order they were published."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.queue: asyncio.Queue = asyncio.Queue()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), name="live-publisher", daemon=True).start()
        ready.wait()

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(ready.set)
        self.loop.run_until_complete(self._drain())

    async def _drain(self) -> None:
        layer = get_channel_layer()
        while True:
            batch = [await self.queue.get()]
            while len(batch) < MAX_BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            # What piled up (a webhook batch of hundreds of messages) leaves as one message per group.
            by_group: dict[str, list[dict]] = {}
            handed: dict[str, list[float]] = {}
            for group, event, _, at in batch:
                by_group.setdefault(group, []).append(event)
                handed.setdefault(group, []).append(at)
            tracing = trace.isEnabledFor(logging.DEBUG)
            for group, events in by_group.items():
                message = (
                    {"type": "inbox.event", "event": events[0]}
                    if len(events) == 1
                    else {"type": "inbox.events", "events": events}
                )
                try:
                    await layer.group_send(group, message)
                except Exception as exc:  # noqa: BLE001 - a live hint must never take the publisher down
                    logger.warning("%d live events to %s not delivered: %r", len(events), group, exc)
                    continue
                if tracing:
                    ids = [event.get("message_id") for event in events]
                    trace.debug(
                        "publish %s",
                        json.dumps({"group": group, "messages": ids, "handed": handed[group], "sent": time.time()}),
                    )
            for *_, done, _ in batch:
                done.set()

    def put(self, items: list[tuple[str, dict]]) -> threading.Event:
        """Queue (group, event) pairs in order with one wake-up of the loop (a socket write per call: a batch's
        hundreds of events cost one, bench/README.md "Set-based intake", sixth session); one Event for them all."""
        done = threading.Event()
        at = time.time()
        self.loop.call_soon_threadsafe(self._queue_all, [(group, event, done, at) for group, event in items])
        return done

    def _queue_all(self, entries: list[tuple]) -> None:
        for entry in entries:
            self.queue.put_nowait(entry)


_publisher: _Publisher | None = None
_publisher_lock = threading.Lock()


def inbox_group(inbox_id: int) -> str:
    return f"inbox.{inbox_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def staff_group() -> str:
    """Staff users' browsers (pages outside any inbox, such as Ads)."""
    return "staff"


def send_now(group: str, event: dict) -> threading.Event:
    """Hand the event to this process's publisher; returns at once (an Event set once it has left)."""
    return send_many([(group, event)])


def send_many(items: list[tuple[str, dict]]) -> threading.Event:
    """Hand (group, event) pairs to this process's publisher, in order, in one hand-over; returns at once (an
    Event set once they have all left)."""
    global _publisher
    with _publisher_lock:
        if _publisher is None or _publisher.pid != os.getpid():  # a forked worker starts its own
            _publisher = _Publisher()
    return _publisher.put(items)


# The events several writers publish, built in one place so their shapes cannot drift apart.


def conversation_created(conversation_id: int) -> dict:
    return {"type": "conversation.created", "conversation_id": conversation_id, "version": 1}


def message_created(
    *, conversation_id: int, message_id: int, direction: str, version: int, status: str | None = None
) -> dict:
    event = {
        "type": "message.created",
        "conversation_id": conversation_id,
        "message_id": message_id,
        "direction": direction,
        "version": version,
    }
    if status is not None:  # outbound messages carry their delivery status
        event["status"] = status
    return event


def message_status(*, conversation_id: int, message_id: int, status: str, at: datetime, version: int) -> dict:
    return {
        "type": "message.status",
        "conversation_id": conversation_id,
        "message_id": message_id,
        "status": status,
        "at": at.isoformat(),
        "version": version,
    }


def mentioned(*, conversation_id: int, message_id: int, author_name: str) -> dict:
    """To one agent: a colleague mentioned them in a private note."""
    return {
        "type": "note.mentioned",
        "conversation_id": conversation_id,
        "message_id": message_id,
        "author": author_name,
        "version": 1,
    }


def conversation_labels(*, conversation_id: int, labels: list[str], version: int) -> dict:
    """A conversation's labels changed (names, sorted)."""
    return {"type": "conversation.labels", "conversation_id": conversation_id, "labels": labels, "version": version}


def conversation_team(*, conversation_id: int, team: dict | None, version: int) -> dict:
    """A conversation's team changed ({"id", "name"} or None)."""
    return {"type": "conversation.team", "conversation_id": conversation_id, "team": team, "version": version}


def labels_changed(*, inbox_id: int) -> dict:
    """An inbox's label catalogue changed: clients refetch /api/v1/labels/."""
    return {"type": "labels.changed", "inbox_id": inbox_id, "version": 1}


def contact_updated(*, contact_id: int) -> dict:
    """An agent edited a contact: clients showing it refetch /api/v1/contacts/{id}/ (and its conversations)."""
    return {"type": "contact.updated", "contact_id": contact_id, "version": 1}


# --- The live layer as a subscriber of the domain events -----------------------------------------------------


def message_version(attempt: int, status: str) -> int:
    """`inbox.services.common.message_version`, imported when called (the services import this module)."""
    from inbox.services.common import message_version

    return message_version(attempt, status)


def events_for(event: domain_events.DomainEvent) -> list[dict]:
    """The live events to the inbox's watchers of one domain event; shapes as the browser expects. No import
    statement on every call: one costs ~0.9 µs even of a loaded module, most of this function's time per inbound
    message (bench/README.md "Set-based intake, tenth session"); the events that need the services import them."""
    match event:
        case domain_events.ConversationCreated():
            return [conversation_created(event.conversation_id)]
        case domain_events.MessageReceived():
            return [
                message_created(
                    conversation_id=event.conversation_id,
                    message_id=event.message_id,
                    direction="in",
                    version=event.conversation_version,
                )
            ]
        case domain_events.MessageSentOutside():
            return [
                message_created(
                    conversation_id=event.conversation_id,
                    message_id=event.message_id,
                    direction="out",
                    status="accepted",
                    version=event.conversation_version,
                )
            ]
        case domain_events.MessageQueued():
            return [
                message_created(
                    conversation_id=event.conversation_id,
                    message_id=event.message_id,
                    direction="out",
                    status="queued",
                    version=event.conversation_version,
                )
            ]
        case domain_events.NoteAdded():
            return [
                message_created(
                    conversation_id=event.conversation_id,
                    message_id=event.message_id,
                    direction="note",
                    version=event.conversation_version,
                )
            ]
        case domain_events.MessageRetried():
            return [
                {
                    "type": "message.retried",
                    "conversation_id": event.conversation_id,
                    "message_id": event.message_id,
                    "attempt": event.attempt,
                    "status": "queued",
                    "version": message_version(event.attempt, "queued"),
                }
            ]
        case domain_events.MessageStatusChanged():
            return [
                message_status(
                    conversation_id=event.conversation_id,
                    message_id=event.message_id,
                    status=event.status,
                    at=event.at,
                    version=message_version(event.attempt, event.status),
                )
            ]
        case domain_events.MessagePublicStateChanged():
            # The message's version orders delivery updates only: a client refetches the message on this hint.
            return [
                {
                    "type": "message.updated",
                    "conversation_id": event.conversation_id,
                    "message_id": event.message_id,
                    "public_state": event.public_state,
                    "action_state": event.action_state,
                }
            ]
        case domain_events.ConversationResolved():
            return []  # its ConversationStatusChanged carries the same state
        case domain_events.ConversationChanged():
            return [
                {
                    "type": "conversation.updated",
                    "conversation_id": event.conversation_id,
                    "status": event.status,
                    "priority": event.priority,
                    "assignee_id": event.assignee_id,
                    "version": event.version,
                }
            ]
        case domain_events.ConversationLabelsChanged():
            return [
                conversation_labels(
                    conversation_id=event.conversation_id, labels=list(event.labels), version=event.version
                )
            ]
        case domain_events.ConversationTeamChanged():
            team = None if event.team_id is None else {"id": event.team_id, "name": event.team_name}
            return [conversation_team(conversation_id=event.conversation_id, team=team, version=event.version)]
        case domain_events.LabelsChanged():
            return [labels_changed(inbox_id=event.inbox_id)]
        case domain_events.ContactUpdated():
            return [contact_updated(contact_id=event.contact_id)]
        case domain_events.CsatRated():
            return [{"type": "csat.rated", "conversation_id": event.conversation_id, "rating": event.rating}]
        case domain_events.AgentAvailabilityChanged():
            return [{"type": "agent.availability", "user_id": event.user_id, "status": event.status}]
        case domain_events.ContentChanged():
            return [
                {
                    "type": "content.changed",
                    "subject": event.subject,
                    "connection_id": event.connection_id,
                    "version": event.version,
                }
            ]
        case domain_events.ConversionUpdated():
            from inbox.services.conversions import CONVERSION_RANK

            return [
                {
                    "type": "conversion.updated",
                    "conversation_id": event.conversation_id,
                    "conversion_id": event.conversion_id,
                    "status": event.status,
                    "version": CONVERSION_RANK[event.status],
                }
            ]
    return []


def on_domain_events(events: list[domain_events.DomainEvent]) -> None:
    """Subscriber (inbox/apps.py): hand each domain event's live events to this process's publisher, in order.

    Two agent-visible changes of one conversation in one transaction (e.g. assign and resolve) publish one
    `conversation.updated` each, as before. All of them are handed over at once (`send_many`)."""
    items: list[tuple[str, dict]] = []
    for event in events:
        if isinstance(event, domain_events.AdReviewChanged):
            items.append(
                (staff_group(), {"type": event.type, "ad_id": event.ad_id, "review_status": event.review_status})
            )
            continue
        group = inbox_group(event.inbox_id)
        items.extend((group, live_event) for live_event in events_for(event))
        if isinstance(event, domain_events.NoteAdded):
            for user_id in event.mentioned_user_ids:  # to the mentioned agent's own browsers, every tab
                items.append(
                    (
                        user_group(user_id),
                        mentioned(
                            conversation_id=event.conversation_id,
                            message_id=event.message_id,
                            author_name=event.author_name,
                        ),
                    )
                )
    if items:
        send_many(items)


# --- Revoking open sockets ---------------------------------------------------------------------------------------
# A socket joins its groups once, at connect. When what it may see shrinks (logout, deactivation, a membership
# change), its user's group gets a `session.revoked` control event: the consumer closes (CLOSE_REVOKED) and the page
# reconnects, which authorizes afresh (refused after logout or deactivation; the new set of inboxes otherwise).

SESSION_REVOKED = "session.revoked"


def sockets_revoke(user_ids) -> None:
    """Close the open sockets of these users once the current transaction commits (at once outside one)."""
    from django.db import transaction

    ids = sorted({int(pk) for pk in user_ids})

    def send() -> None:
        for user_id in ids:
            send_now(user_group(user_id), {"type": SESSION_REVOKED, "version": 1})

    if ids:
        transaction.on_commit(send)


def on_user_logged_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        sockets_revoke([user.pk])


def on_user_saved(sender, instance, created, **kwargs) -> None:
    if not created and not instance.is_active:
        sockets_revoke([instance.pk])


def on_members_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """Inbox.members changed, from either side (inbox.members.remove / user.inboxes.remove / clear)."""
    if action == "pre_clear":
        # pk_set is None for a clear: note who was there before the rows go.
        instance._members_before_clear = (
            [instance.pk] if reverse else list(instance.members.values_list("pk", flat=True))
        )
    elif action in ("post_add", "post_remove"):
        sockets_revoke([instance.pk] if reverse else pk_set or [])
    elif action == "post_clear":
        sockets_revoke(getattr(instance, "_members_before_clear", []))
