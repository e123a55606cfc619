"""Domain events: what happened in the contact center, announced once, after the transaction commits.

Services call `emit(...)` — the one door — inside their transaction; subscribers (the live layer, automation,
report roll-ups) are called after commit, in emission order, and never run for a rolled-back change. Writes that
must commit with the change (the roll-ups' marks) subscribe before commit (`subscribe_before_commit`): inside a
batch that calls `run_before_commit()` (the webhook processor) they join its transaction, else they run after
commit, first. A subscriber that fails is logged and does not stop the others: it must never
fail the write that caused the event.

Each event type is a frozen dataclass with a `type` name; `check(event)` validates it against its schema
(its annotated fields). The test suite checks every event any service emits (tests/conftest.py).
"""

from __future__ import annotations

import dataclasses
import logging
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from django.db import transaction

from inbox import collector

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DomainEvent:
    type: ClassVar[str]
    inbox_id: int


@dataclass(frozen=True)
class ConversationEvent(DomainEvent):
    """Something that happened in one conversation (most events)."""

    conversation_id: int


@dataclass(frozen=True)
class ConversationCreated(ConversationEvent):
    type: ClassVar[str] = "conversation.created"
    contact_id: int
    provider: str


@dataclass(frozen=True)
class MessageReceived(ConversationEvent):
    """A new inbound message was stored (never for a redelivery)."""

    type: ClassVar[str] = "message.received"
    message_id: int
    message_type: str
    sent_at: datetime
    conversation_version: int
    reopened: bool  # the conversation was resolved and this message reopened it


@dataclass(frozen=True)
class MessageSentOutside(ConversationEvent):
    """The business sent a message outside the inbox (e.g. from the provider's own app); stored as outbound."""

    type: ClassVar[str] = "message.sent_outside"
    message_id: int
    sent_at: datetime
    conversation_version: int


@dataclass(frozen=True)
class MessageQueued(ConversationEvent):
    """An agent's reply was stored `queued`; the outbox sends it."""

    type: ClassVar[str] = "message.queued"
    message_id: int
    author_id: int | None
    conversation_version: int


@dataclass(frozen=True)
class MessageRetried(ConversationEvent):
    type: ClassVar[str] = "message.retried"
    message_id: int
    attempt: int
    author_id: int | None


@dataclass(frozen=True)
class NoteAdded(ConversationEvent):
    """An agent wrote a private note (never sent to the contact); `mentioned_user_ids` were @mentioned."""

    type: ClassVar[str] = "note.added"
    message_id: int
    author_id: int | None
    author_name: str
    mentioned_user_ids: tuple[int, ...]
    conversation_version: int


@dataclass(frozen=True)
class MessageStatusChanged(ConversationEvent):
    """An outbound message moved up the status ladder (accepted, delivered, seen) or failed."""

    type: ClassVar[str] = "message.status_changed"
    message_id: int
    attempt: int
    status: str
    previous_status: str
    at: datetime


@dataclass(frozen=True)
class MessagePublicStateChanged(ConversationEvent):
    """A public message (a comment) was hidden, shown again or deleted — or an agent's request to do so is pending
    or failed (`action_state`: pending, failed, done). `actor_id` None: the provider reported it."""

    type: ClassVar[str] = "message.public_state_changed"
    message_id: int
    public_state: str
    action: str
    action_state: str
    actor_id: int | None


@dataclass(frozen=True)
class ConversationChanged(ConversationEvent):
    """Base of the agent-visible changes of a conversation: each carries the conversation's new state."""

    type: ClassVar[str] = "conversation.changed"
    status: str
    priority: str
    assignee_id: int | None
    version: int
    actor_id: int | None


@dataclass(frozen=True)
class ConversationConnectionChanged(ConversationChanged):
    """The connection the conversation belongs to can send again, or no longer can (e.g. waiting for an admin to
    re-authorize it): what the composer allows changed."""

    type: ClassVar[str] = "conversation.connection_changed"


@dataclass(frozen=True)
class ConversationSubjectChanged(ConversationChanged):
    """What a comment conversation is about (the post's cover, caption, link) changed."""

    type: ClassVar[str] = "conversation.subject_changed"


@dataclass(frozen=True)
class ConversationAssigned(ConversationChanged):
    type: ClassVar[str] = "conversation.assigned"
    previous_assignee_id: int | None


@dataclass(frozen=True)
class ConversationStatusChanged(ConversationChanged):
    type: ClassVar[str] = "conversation.status_changed"
    previous_status: str


@dataclass(frozen=True)
class ConversationResolved(ConversationChanged):
    """Emitted with ConversationStatusChanged when the new status is `resolved` (CSAT and reports hook here)."""

    type: ClassVar[str] = "conversation.resolved"


@dataclass(frozen=True)
class ConversationPriorityChanged(ConversationChanged):
    type: ClassVar[str] = "conversation.priority_changed"
    previous_priority: str


@dataclass(frozen=True)
class ConversionUpdated(ConversationEvent):
    type: ClassVar[str] = "conversion.updated"
    conversion_id: int
    status: str


@dataclass(frozen=True)
class ConversationLabelsChanged(ConversationEvent):
    type: ClassVar[str] = "conversation.labels_changed"
    labels: tuple[str, ...]  # names, sorted
    version: int
    actor_id: int | None


@dataclass(frozen=True)
class ConversationTeamChanged(ConversationEvent):
    """The conversation was handed to a team (automation's assign_team); `team_id` None: to no team."""

    type: ClassVar[str] = "conversation.team_changed"
    team_id: int | None
    team_name: str
    version: int
    actor_id: int | None


@dataclass(frozen=True)
class LabelsChanged(DomainEvent):
    """An inbox's label catalogue changed (a label created, renamed, recoloured or deleted)."""

    type: ClassVar[str] = "labels.changed"


@dataclass(frozen=True)
class ContactUpdated(DomainEvent):
    """An agent edited a contact; emitted once per inbox the contact has a conversation in."""

    type: ClassVar[str] = "contact.updated"
    contact_id: int
    actor_id: int | None


@dataclass(frozen=True)
class AgentAvailabilityChanged(DomainEvent):
    """An agent's effective availability changed (chosen in the UI, or offline after the last tab closed);
    emitted once per inbox the agent is a member of. `status` is online, busy or offline."""

    type: ClassVar[str] = "agent.availability_changed"
    user_id: int
    status: str


@dataclass(frozen=True)
class CsatRated(ConversationEvent):
    """The customer rated a resolved conversation (1 to 5) on the public survey page."""

    type: ClassVar[str] = "csat.rated"
    survey_id: int
    rating: int


@dataclass(frozen=True)
class ContentChanged(DomainEvent):
    """A provider's content pages changed for a connection of this inbox (not conversations: e.g. a TikTok
    account's posts and their figures were synced, a post was published or removed, or the connection's state
    changed). `subject` names what to refetch ("videos"); `version` grows with each change (milliseconds)."""

    type: ClassVar[str] = "content.changed"
    subject: str
    connection_id: int
    version: int


@dataclass(frozen=True)
class AdReviewChanged(DomainEvent):
    """A provider reported an ad's review result (approved or rejected). Ads belong to no inbox: `inbox_id` is 0
    and the live layer tells staff (the Ads page) instead of an inbox's watchers."""

    type: ClassVar[str] = "ad.review_changed"
    ad_id: str
    review_status: str


EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    ConversationCreated,
    MessageReceived,
    MessageSentOutside,
    MessageQueued,
    MessageRetried,
    NoteAdded,
    MessageStatusChanged,
    MessagePublicStateChanged,
    ConversationAssigned,
    ConversationConnectionChanged,
    ConversationSubjectChanged,
    ConversationStatusChanged,
    ConversationResolved,
    ConversationPriorityChanged,
    ConversionUpdated,
    ConversationLabelsChanged,
    ConversationTeamChanged,
    LabelsChanged,
    ContactUpdated,
    AgentAvailabilityChanged,
    CsatRated,
    ContentChanged,
    AdReviewChanged,
)

Subscriber = Callable[[list[DomainEvent]], None]
_subscribers: list[Subscriber] = []
_before_commit: list[Subscriber] = []


def subscribe(subscriber: Subscriber) -> None:
    """Call `subscriber(events)` after each commit that emitted events (once per commit, in emission order)."""
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)


def subscribe_before_commit(subscriber: Subscriber) -> None:
    """Call `subscriber(events)` for writes that must commit with the change that emitted the events — only those
    (the report roll-ups' marks: rows a task refreshes later); never a push, a task or anything else that must not
    happen for a change that is rolled back.

    When the emitting transaction calls `run_before_commit()` at the end of its atomic block (the webhook
    processor's batch), the subscriber runs there, inside the transaction: its writes commit with the batch in one
    commit, and a failure fails the batch (it is retried whole). Otherwise it runs after commit, before the
    `subscribe` subscribers, in its own transaction, a failure logged as theirs."""
    if subscriber not in _before_commit:
        _before_commit.append(subscriber)


class _Dispatch:
    """The on-commit callback of one `emit` call; `early`: its events went to the before-commit subscribers."""

    __slots__ = ("events", "early")

    def __init__(self, events: list[DomainEvent]) -> None:
        self.events, self.early = events, False

    def __call__(self) -> None:
        _dispatch(self.events, early=self.early)


def emit(*events: DomainEvent) -> None:
    """Announce `events` once the current transaction commits (at once outside a transaction).

    One on-commit callback per call: a batch service emits its hundreds of events in one call. Django drops
    the callback with a rolled-back savepoint, so events of a change that did not happen never leave.
    """
    if events:
        transaction.on_commit(_Dispatch(list(events)))


def run_before_commit(using: str | None = None) -> None:
    """Hand the events emitted so far in the current transaction to the before-commit subscribers now, inside it.
    Call it last in the outermost atomic block of a batch (inbox/processor.py). Events of rolled-back savepoints
    are not among them (Django dropped their callbacks); after commit the before-commit subscribers are not called
    again for these events. An exception propagates: the transaction must not commit without these writes."""
    connection = transaction.get_connection(using)
    if not _before_commit or not connection.in_atomic_block:
        return
    # Django keeps a transaction's on-commit callbacks as (savepoint ids, callback, robust) in `run_on_commit`.
    dispatches = [call for _, call, _ in connection.run_on_commit if isinstance(call, _Dispatch) and not call.early]
    events = [event for dispatch in dispatches for event in dispatch.events]
    if not events:
        return
    with collector.paused():
        for subscriber in list(_before_commit):
            subscriber(events)
    for dispatch in dispatches:
        dispatch.early = True


def _dispatch(events: list[DomainEvent], *, early: bool = False) -> None:
    # A batch's events (thousands) with the cyclic collector paused, as the batch that made them (inbox.collector).
    with collector.paused():
        for subscriber in ([] if early else list(_before_commit)) + list(_subscribers):
            try:
                subscriber(events)
            except Exception:  # noqa: BLE001 - a subscriber must never fail the write that caused the events
                logger.exception("domain event subscriber %r failed on %d events", subscriber, len(events))


# --- Schemas --------------------------------------------------------------------------------------------------


def _matches(value, annotation) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if origin is tuple:  # tuple[X, ...]: immutable, so a frozen event stays frozen
        (item, _) = typing.get_args(annotation)
        return isinstance(value, tuple) and all(_matches(element, item) for element in value)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def check(event: DomainEvent) -> None:
    """Raise ValueError unless `event` is of a known type and every field has its declared type."""
    if type(event) not in EVENT_TYPES:
        raise ValueError(f"unknown domain event type {type(event).__name__}")
    hints = typing.get_type_hints(type(event))
    for field in dataclasses.fields(event):
        value = getattr(event, field.name)
        if not _matches(value, hints[field.name]):
            raise ValueError(f"{event.type}.{field.name} = {value!r} is not {hints[field.name]}")
