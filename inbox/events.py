"""Small typed events a channel hands to the contact center (built at the channel's edge)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class InboundMessage:
    channel: str
    endpoint_id: str  # business-side address the user wrote to
    channel_user_id: str
    provider_message_id: str
    provider_conversation_id: str
    sent_at: datetime
    type: str  # a Message.Type value
    text: str = ""
    media_url: str = ""
    embed_url: str = ""
    reaction_emoji: str = ""
    reaction_action: str = ""
    quoted_provider_message_id: str = ""
    provider: str = ""  # the backend that received it (inbox.providers); routes the conversation's replies
    referral: dict = field(default_factory=dict)
    payload: dict = field(default_factory=dict)
    # The business's own message, sent outside the inbox (e.g. from the provider's app) and echoed to us: stored
    # as an outbound message already accepted; it neither opens the reply window nor reopens the conversation.
    sent_outside: bool = False
    # The conversation it belongs to: a direct message ("message") or a comment on a post ("comment", one
    # conversation per user and `subject_id`, the post; `subject` describes the post: id, url, ...).
    conversation_kind: str = "message"
    subject_id: str = ""
    subject: dict = field(default_factory=dict)
    # Someone else than the contact wrote it in the contact's public thread (another user's reply to their
    # comment): that user's name; the message still belongs to the contact's conversation.
    other_author: str = ""
    public_state: str = "visible"  # a public message already hidden when we first see it: "hidden"


@dataclass(frozen=True)
class StatusReport:
    channel: str
    provider_message_id: str
    status: str  # a Message.Status value: accepted, delivered, seen or failed
    at: datetime
    provider_status: dict = field(default_factory=dict)
    error: dict = field(default_factory=dict)
    # The endpoints (business-side addresses) of the connection that reported it: the report applies only to a
    # message of a conversation whose contact wrote to one of them (none: to no message). None: not scoped (the
    # answer to our own send).
    endpoint_ids: tuple[str, ...] | None = None
