"""Provider backends: what the contact center asks of a provider, and which one serves a conversation.

A provider (Infobip's TikTok API, TikTok's own API, a test double) is a `Backend` registered under a
unique name by its app's `AppConfig.ready`. A conversation belongs to a connection — the sender or account
the user wrote to — and `Conversation.provider` names that connection's backend, so two providers of the
same channel serve inboxes side by side. The core owns everything around a send (the outbox in
`inbox/outbox.py`: order, leases, retries, the sweeper, parked reports); a backend only builds one request,
sends it, and classifies the answer as accepted / retry later / permanent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from inbox.events import StatusReport
from inbox.models import Conversation, Conversion, Message, WebhookEvent

logger = logging.getLogger(__name__)

# The outcome of one call to a provider. UNAVAILABLE: the conversation's connection is gone or switched off
# (nothing was called); a send or conversion fails with the reason, a typing/read event is just skipped.
# HELD: the connection cannot send now but will once an admin acts (e.g. re-authorizes it): the reply stays
# queued, untried; the outbox looks again after OUTBOX_HELD_RECHECK_SECONDS, or at once when the provider calls
# `inbox.outbox.release_held` (reconnected).
ACCEPTED, RETRYABLE, PERMANENT, UNAVAILABLE, HELD = "accepted", "retryable", "permanent", "unavailable", "held"

# What an agent's activity tells the user, best effort (kinds of `Backend.send_event`).
EVENT_TYPING = "typing"
EVENT_READ = "read"
EVENT_KINDS = (EVENT_TYPING, EVENT_READ)

# What an agent may ask a provider to do to a public message (a comment): `Backend.message_actions` says which.
ACTION_HIDE, ACTION_UNHIDE, ACTION_DELETE = "hide", "unhide", "delete"
MESSAGE_ACTIONS = (ACTION_HIDE, ACTION_UNHIDE, ACTION_DELETE)


@dataclass(frozen=True)
class SendResult:
    outcome: str  # ACCEPTED, RETRYABLE, PERMANENT, UNAVAILABLE or HELD
    provider_message_id: str = ""  # the provider's id of the message (ours, echoed back, for Infobip)
    status: dict = field(default_factory=dict)  # the provider's per-message status object, kept on the row
    duplicate: bool = False  # the provider refused our id as already used: an earlier try got through
    error: dict = field(default_factory=dict)  # name, description, permanent, and what the provider adds
    retry_after: float | None = None  # seconds the provider asked us to wait (429 Retry-After)
    body: dict = field(default_factory=dict)  # the JSON answer of a call without per-message statuses


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; the core refuses what it cannot (422/409 with the reason) before queueing."""

    content_types: tuple[str, ...] = (Message.Type.TEXT,)  # Message.Type values it can send
    quoting: bool = False  # a text reply may quote a message of the user's
    user_initiated: bool = True  # the user writes first; replies live in REPLY_WINDOW_HOURS with the quota
    typing_events: bool = False
    read_receipts: bool = False
    conversions: bool = False  # Direct Messaging Ads conversions
    delivery_reports: bool = True  # False: only read receipts move a sent message on
    max_text_chars: int = 6000


@dataclass(frozen=True, slots=True)
class ConversationFacts:
    """What a backend is told of a conversation to say what it can do there (`capabilities_for`) and whether its
    connection can send now (`send_blocked`): plain values, so a list page built from `.values()` rows asks the
    same rules as a service holding a model instance, without building one per row."""

    provider: str  # the backend's name (Conversation.provider)
    kind: str  # Conversation.Kind
    endpoint_id: str  # the contact's endpoint: the connection's sender / account id

    @classmethod
    def of(cls, conversation: Conversation) -> ConversationFacts:
        """The facts of a model instance (its contact is read: select it along)."""
        return cls(provider=conversation.provider, kind=conversation.kind, endpoint_id=conversation.contact.endpoint_id)


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """What a backend is told of a message to say what an agent may ask of it (`message_actions`): plain values, so
    a thread page built from `.values()` rows asks the same rule as a service holding a model instance."""

    provider: str  # the conversation's backend
    conversation_kind: str  # Conversation.Kind
    direction: str  # Message.Direction
    provider_message_id: str | None
    public_state: str  # Message.PublicState
    provider_status: dict  # the provider's status object of the current attempt (its ids)

    @classmethod
    def of(cls, message: Message) -> MessageFacts:
        """The facts of a model instance (its conversation is read: select it along)."""
        conversation = message.conversation
        return cls(
            provider=conversation.provider,
            conversation_kind=conversation.kind,
            direction=message.direction,
            provider_message_id=message.provider_message_id,
            public_state=message.public_state,
            provider_status=message.provider_status or {},
        )


class Backend:
    """One provider. Subclasses set `name`, `channel` and `capabilities` and implement the calls they declare.

    Every method is called from a Celery task of the core, outside any transaction, and must not raise for
    HTTP or network trouble: it classifies it into a SendResult (RETRYABLE when a later try may work).
    """

    name: str = ""
    channel: str = ""
    capabilities: Capabilities = Capabilities()

    def send(self, message: Message, *, validity_seconds: int) -> SendResult:
        """Send the message's current attempt (its `provider_message_id` is ours and must be sent along when
        the provider can take it, so a repeated try is refused as a duplicate)."""
        raise NotImplementedError

    def send_batch_limit(self) -> int:
        """How many messages of one connection `send_batch` may take in one call. 1 (the default): the provider
        has no multi-message call, and the outbox hands it one message at a time through the same code."""
        return 1

    def send_batch(self, items: list[tuple[Message, int]]) -> list[SendResult]:
        """Send several messages' current attempts (each with its validity in seconds), all of one connection (the
        same `provider` and contact `endpoint_id`) and at most one per conversation; returns one SendResult per
        item, in order. A provider with a multi-message call overrides this (and `send_batch_limit`) to make one
        request; a failure of the whole call is every item's result."""
        return [self.send(message, validity_seconds=validity) for message, validity in items]

    def capabilities_for(self, conversation: ConversationFacts) -> Capabilities:
        """What this backend can do in this conversation (a comment thread may allow less than a DM thread).
        Called for every conversation a list shows: no queries."""
        return self.capabilities

    def send_blocked(self, conversation: ConversationFacts) -> tuple[str, str] | None:
        """(code, message for the agent) when this conversation's connection cannot send now (the composer is
        locked with it, a reply refused 409), or None. Called for every conversation a list shows: keep it cheap
        (a cache read, not a query per row)."""
        return None

    def send_event(self, conversation: Conversation, kind: str) -> SendResult:
        """A typing indicator or read receipt (EVENT_KINDS)."""
        return SendResult(PERMANENT, error={"name": "UNSUPPORTED", "description": f"{self.name} sends no events"})

    def message_actions(self, message: MessageFacts) -> tuple[str, ...]:
        """What an agent may ask the provider to do to this message now (MESSAGE_ACTIONS: hide, unhide, delete a
        public comment). Default: nothing (a DM provider, Infobip). Called for every message a thread shows:
        no queries or HTTP."""
        return ()

    def message_action(self, message: Message, action: str) -> SendResult:
        """Perform one of `message_actions` at the provider (called by the core's task, outside transactions)."""
        return SendResult(
            PERMANENT, error={"name": "UNSUPPORTED", "description": f"{self.name} cannot {action} a message"}
        )

    def report_conversion(self, conversion: Conversion) -> SendResult:
        return SendResult(
            PERMANENT, error={"name": "UNSUPPORTED", "description": f"{self.name} reports no conversions"}
        )

    def process_webhooks(self, events: list[WebhookEvent]) -> None:
        """Parse and apply stored webhook requests of this provider (the shared ledger's pending rows, claimed by
        `inbox/processor.py` inside its transaction) through the services, and record each row's verdict,
        summary and problems. A bad result is recorded, never a reason to lose the others. While
        `inbox.processor.redo_allowed()` (the processor's first try at a batch) it may apply everything together
        without a savepoint and raise `inbox.processor.RedoSeparately` if that fails: the batch is then rolled back
        and handed over again with `redo_allowed()` false."""
        raise NotImplementedError

    def replay_webhook(self, event: WebhookEvent) -> None:
        """Apply one stored request again (admin action); effects are idempotent."""
        raise NotImplementedError

    def reconcile(self, messages: list[Message]) -> list[StatusReport]:
        """What the provider now says about sent messages that stayed *accepted* (their reports may be lost):
        status reports scoped to the connection that sent each one, applied by the core's reconciliation
        (`inbox.outbox.reconcile_accepted`) through the forward-only ladder. Must not raise for HTTP or network
        trouble: what could not be asked is simply not reported (the next run asks again)."""
        return []


_backends: dict[str, Backend] = {}


def register(backend: Backend) -> None:
    if not backend.name or not backend.channel:
        raise ValueError("a backend needs a name and a channel")
    _backends[backend.name] = backend


def unregister(name: str) -> None:
    _backends.pop(name, None)


def get(name: str) -> Backend | None:
    return _backends.get(name) if name else None


def for_conversation(conversation: Conversation | ConversationFacts | MessageFacts) -> Backend | None:
    """The backend of the connection this conversation belongs to, or None (no such provider installed)."""
    return get(conversation.provider)
