"""Output and input shapes of the agents' API (one pair per operation where they differ)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings

from inbox import providers, selectors
from inbox.models import CannedResponse, Contact, Conversation, Conversion, Label, Message, reply_window_closes_at
from inbox.services import canned_render, message_actions_allowed, message_actions_allowed_for, message_version
from inbox.services.replies import reply_blocked_for, reply_window_closed_error


def http_url(value) -> str:
    """`value` when it is an absolute http(s) URL, else "": webhooks may carry `javascript:` or `data:` URLs,
    which stay in the ledger (`WebhookEvent.body`) but are never handed to an API client."""
    if not isinstance(value, str) or any(ch in value for ch in "\x00\r\n\t"):
        return ""
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return ""
    return value if parts.scheme.lower() in ("http", "https") and parts.netloc else ""


def without_unsafe_urls(data):
    """A copy of a JSON value where every `*url` key whose value is not http(s) is left out (recursively)."""
    if isinstance(data, dict):
        return {
            key: without_unsafe_urls(value)
            for key, value in data.items()
            if not (isinstance(key, str) and key.lower().endswith("url")) or http_url(value)
        }
    if isinstance(data, list):
        return [without_unsafe_urls(item) for item in data]
    return data


_DATETIME = serializers.DateTimeField()


def _datetime(value) -> str | None:
    """A time as DRF's DateTimeField shows it (ISO 8601 in the current time zone), None for none."""
    return _DATETIME.to_representation(value) if value is not None else None


def _datetimes_of_page() -> Callable[[object], str | None]:
    """`_datetime` with the current time zone looked up once for a page, not per value (that lookup, through
    asgiref's context-local storage, was half of the cost of showing a time): DRF's own field, so the same text."""
    zone = timezone.get_current_timezone()
    field = serializers.DateTimeField(default_timezone=zone)

    output_format = api_settings.DATETIME_FORMAT
    iso = isinstance(output_format, str) and output_format.lower() == ISO_8601

    def shown(value) -> str | None:
        if value is None:
            return None
        if not iso or value.tzinfo is None:
            return field.to_representation(value)  # DRF's own rules for the rare cases
        # What DRF's field does for an aware time in ISO 8601 (`enforce_timezone`, then `isoformat`, +00:00 as Z),
        # without its per-value attribute and settings lookups: a list page shows ~100 times (tested equal).
        try:
            text = value.astimezone(zone).isoformat()
        except OverflowError:
            return field.to_representation(value)
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return shown


class HttpUrlField(serializers.CharField):
    """A stored URL as the API shows it: only http(s), else an empty string."""

    def to_representation(self, value) -> str:
        return http_url(value)


class UserSummary(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.SerializerMethodField()

    def get_name(self, user) -> str:
        return user.get_full_name() or user.username


class ContactSummary(serializers.ModelSerializer):
    tiktok_user_id = serializers.CharField(source="channel_user_id")

    class Meta:
        model = Contact
        fields = ["id", "display_name", "tiktok_user_id"]


class InboxSummary(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class LastMessage(serializers.Serializer):
    text = serializers.CharField(allow_blank=True)
    type = serializers.CharField()
    direction = serializers.CharField()
    sent_at = serializers.DateTimeField()


class ReferralSummary(serializers.Serializer):
    source = serializers.CharField(help_text="ad, tiktok_me or other")
    label = serializers.CharField(help_text="Ad name or TikTok.me ref, for a banner")
    kind_label = serializers.CharField(help_text="Short name of the source, for a list chip: Ad, TikTok.me, Referral")
    title = serializers.CharField(help_text="Banner title, e.g. 'Came from an ad'")
    opened_how = serializers.CharField(help_text="How the customer opened the chat, e.g. 'from an ad'")
    received_at = serializers.CharField(required=False)


class ReferralFact(serializers.Serializer):
    label = serializers.CharField()
    value = serializers.CharField()
    mono = serializers.BooleanField(help_text="An id: show it in a monospace font")


# How each kind of referral is named to agents: (chip, banner title, "opened the chat …").
REFERRAL_WORDS = {
    "ad": ("Ad", "Came from an ad", "from an ad"),
    "tiktok_me": ("TikTok.me", "Came via a TikTok.me link", "through a TikTok.me link"),
}
REFERRAL_WORDS_OTHER = ("Referral", "Came from a referral", "from a referral")
# The referral fields an agent is shown, in order, with their labels.
REFERRAL_FACT_LABELS = {
    "source": "Source",
    "ad_id": "Ad id",
    "ad_name": "Ad",
    "advertiser_id": "Advertiser id",
    "message_material_id": "Material id",
    "ref": "TikTok.me ref",
    "prefilled_message": "Prefilled message",
    "prefilled_message_audit_status": "Prefill audit",
    "source_type": "Source type",
    "source_id": "Source id",
    "source_name": "Source name",
    "source_url": "Source URL",
    "creative_id": "Creative id",
    "tracking_ref": "Tracking ref",
    "source_status": "Source status",
    "embed_url": "Embed URL",
}


class ReplyLock(serializers.Serializer):
    code = serializers.CharField(
        help_text="no_user_message, reply_window_closed, reply_quota_used, or the connection's: "
        "channel_reauthorization_needed, channel_disconnected"
    )
    message = serializers.CharField(help_text="For the agent: why the composer is locked")


class TeamSummary(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ConversationOut(serializers.ModelSerializer):
    inbox = InboxSummary()
    contact = ContactSummary()
    assignee = UserSummary(allow_null=True)
    last_message = serializers.SerializerMethodField()
    unread_count = serializers.IntegerField()
    reply_window_closes_at = serializers.SerializerMethodField()
    replies_left = serializers.SerializerMethodField()
    referral = serializers.SerializerMethodField()
    reply_lock = serializers.SerializerMethodField()
    reply_window_closed_reason = serializers.SerializerMethodField()
    snoozed_until = serializers.SerializerMethodField()
    labels = serializers.SerializerMethodField()
    team = serializers.SerializerMethodField()
    first_response_due_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="First-response SLA: an agent should answer by then (null: none)."
    )
    subject = serializers.SerializerMethodField()
    reply_max_chars = serializers.SerializerMethodField()

    class Meta:
        model = Conversation
        fields = [
            "id",
            "kind",
            "subject",
            "reply_max_chars",
            "inbox",
            "contact",
            "status",
            "priority",
            "assignee",
            "last_message",
            "unread_count",
            "last_inbound_at",
            "last_activity_at",
            "reply_window_closes_at",
            "replies_left",
            "referral",
            "reply_lock",
            "reply_window_closed_reason",
            "snoozed_until",
            "labels",
            "team",
            "first_response_due_at",
            "version",
        ]

    @extend_schema_field(serializers.JSONField(allow_null=True))
    def get_subject(self, conversation) -> dict | None:
        """What a comment conversation is about (the post: id, url, ...); null for direct messages."""
        return subject_shown(conversation.kind, conversation.subject_id, conversation.subject)

    def get_reply_max_chars(self, conversation) -> int:
        """The longest text reply this conversation takes (the provider declares it; a comment reply is short)."""
        return reply_max_chars(providers.ConversationFacts.of(conversation))

    def get_labels(self, conversation) -> list[str]:
        """The names of its labels (colours: GET /api/v1/labels/)."""
        return sorted(label.name for label in conversation.labels.all())

    @extend_schema_field(TeamSummary(allow_null=True))
    def get_team(self, conversation) -> dict | None:
        """The team it was handed to (routing: automation's assign_team); null for none."""
        try:
            team = conversation.team_assignment.team
        except ObjectDoesNotExist:
            return None
        return {"id": team.pk, "name": team.name}

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_snoozed_until(self, conversation):
        """When a snoozed (pending) conversation reopens by itself; null otherwise."""
        return snoozed_until_shown(conversation.status, conversation.snoozed_until)

    @extend_schema_field(ReplyLock(allow_null=True))
    def get_reply_lock(self, conversation) -> dict | None:
        """Why a reply would be refused now (the 409 it would get), or null: the composer shows this."""
        return reply_lock(
            providers.ConversationFacts.of(conversation),
            last_inbound_at=conversation.last_inbound_at,
            used=conversation.replies_used,
            now=timezone.now(),
        )

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_reply_window_closed_reason(self, conversation) -> str | None:
        """The lock reason to show once `reply_window_closes_at` has passed (the page's clock says when)."""
        return reply_window_closed_reason(conversation.reply_window_closes_at())

    @extend_schema_field(LastMessage(allow_null=True))
    def get_last_message(self, conversation) -> dict | None:
        return last_message_shown(
            conversation.last_message_id,
            conversation.last_message_preview,
            conversation.last_message_type,
            conversation.last_message_direction,
            conversation.last_message_at,
        )

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_reply_window_closes_at(self, conversation):
        return _datetime(conversation.reply_window_closes_at())

    def get_replies_left(self, conversation) -> int:
        return replies_left(conversation.reply_window_closes_at(), conversation.replies_used, now=timezone.now())

    @extend_schema_field(ReferralSummary(allow_null=True))
    def get_referral(self, conversation) -> dict | None:
        return referral_summary(conversation.referral)


# What a list row shows, each from plain values: ConversationOut's getters (a model instance) and
# `conversation_rows` (a page of `.values()` rows, the list's hot path) call the same functions.


def subject_shown(kind: str, subject_id: str, subject: dict | None) -> dict | None:
    if kind != Conversation.Kind.COMMENT:
        return None
    subject = dict(subject or {})
    url = subject.get("url") or ""
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        subject.pop("url", None)
    return {"id": subject_id, **subject}


def reply_max_chars(facts: providers.ConversationFacts) -> int:
    backend = providers.for_conversation(facts)
    if backend is None:
        return providers.Capabilities().max_text_chars
    return backend.capabilities_for(facts).max_text_chars


def snoozed_until_shown(status: str, snoozed_until, *, datetime_shown=_datetime) -> str | None:
    if status != Conversation.Status.PENDING or not snoozed_until:
        return None
    return datetime_shown(snoozed_until)


def reply_lock(facts: providers.ConversationFacts, *, last_inbound_at, used: int, now) -> dict | None:
    blocked = reply_blocked_for(facts, last_inbound_at=last_inbound_at, now=now, used=used)
    return {"code": blocked.code, "message": blocked.message} if blocked else None


def reply_window_closed_reason(closes) -> str | None:
    return reply_window_closed_error(closes).message if closes else None


def last_message_shown(
    message_id, preview: str, type: str, direction: str, at, *, datetime_shown=_datetime
) -> dict | None:
    if message_id is None:
        return None
    return {"text": preview, "type": type, "direction": direction, "sent_at": datetime_shown(at)}


def replies_left(closes, used: int, *, now) -> int:
    if closes is None or closes <= now:
        return 0
    return max(settings.REPLY_QUOTA_PER_WINDOW - used, 0)


def referral_summary(referral: dict | None) -> dict | None:
    referral = referral or {}
    if not referral:
        return None
    label = (
        referral.get("ad_name")
        or referral.get("source_name")
        or referral.get("ref")
        or referral.get("ad_id")
        or referral.get("source_id")
        or ""
    )
    source = referral.get("source", "other")
    kind_label, title, opened_how = REFERRAL_WORDS.get(source, REFERRAL_WORDS_OTHER)
    summary = {"source": source, "label": label, "kind_label": kind_label, "title": title, "opened_how": opened_how}
    if referral.get("received_at"):
        summary["received_at"] = referral["received_at"]
    return summary


def user_name(first_name: str, last_name: str, username: str) -> str:
    """UserSummary's `name` from plain values: Django's `get_full_name()` (first and last, stripped), else the
    username."""
    return f"{first_name} {last_name}".strip() or username


def user_summary(row: dict, prefix: str) -> dict | None:
    """UserSummary from plain values: the `<prefix>_id`, `<prefix>__username`, `__first_name`, `__last_name` of a
    `.values()` row (None without a user)."""
    pk = row[f"{prefix}_id"]
    if pk is None:
        return None
    username = row[f"{prefix}__username"]
    return {
        "id": pk,
        "username": username,
        "name": user_name(row[f"{prefix}__first_name"], row[f"{prefix}__last_name"], username),
    }


def conversation_rows(rows: list[dict], *, labels: dict[int, list[str]], now) -> list[dict]:
    """A list page as ConversationOut shows it, from `selectors.LIST_VALUES` rows (plain values, no model
    instances) and the page's label names by conversation: the keys and values the declared fields give (a test
    compares the two for every field), without DRF's per-field machinery or a model instance per joined table,
    the list request's CPU (bench/README.md, issue 20)."""
    shown, datetime_shown = [], _datetimes_of_page()
    for row in rows:
        facts = providers.ConversationFacts(
            provider=row["provider"], kind=row["kind"], endpoint_id=row["contact__endpoint_id"]
        )
        closes = reply_window_closes_at(kind=row["kind"], last_inbound_at=row["last_inbound_at"])
        team_id = row["team_assignment__team_id"]
        shown.append(
            {
                "id": row["id"],
                "kind": row["kind"],
                "subject": subject_shown(row["kind"], row["subject_id"], row["subject"]),
                "reply_max_chars": reply_max_chars(facts),
                "inbox": {"id": row["inbox_id"], "name": row["inbox__name"]},
                "contact": {
                    "id": row["contact_id"],
                    "display_name": row["contact__display_name"],
                    "tiktok_user_id": row["contact__channel_user_id"],
                },
                "status": row["status"],
                "priority": row["priority"],
                "assignee": user_summary(row, "assignee"),
                "last_message": last_message_shown(
                    row["last_message_id"],
                    row["last_message_preview"],
                    row["last_message_type"],
                    row["last_message_direction"],
                    row["last_message_at"],
                    datetime_shown=datetime_shown,
                ),
                "unread_count": row["unread_count"],
                "last_inbound_at": datetime_shown(row["last_inbound_at"]),
                "last_activity_at": datetime_shown(row["last_activity_at"]),
                "reply_window_closes_at": datetime_shown(closes),
                "replies_left": replies_left(closes, row["replies_used"], now=now),
                "referral": referral_summary(row["referral"]),
                "reply_lock": reply_lock(
                    facts, last_inbound_at=row["last_inbound_at"], used=row["replies_used"], now=now
                ),
                "reply_window_closed_reason": reply_window_closed_reason(closes),
                "snoozed_until": snoozed_until_shown(
                    row["status"], row["snoozed_until"], datetime_shown=datetime_shown
                ),
                "labels": labels.get(row["id"], []),
                "team": None if team_id is None else {"id": team_id, "name": row["team_assignment__team__name"]},
                "first_response_due_at": datetime_shown(row["first_response_due_at"]),
                "version": row["version"],
            }
        )
    return shown


class ConversionError(serializers.Serializer):
    name = serializers.CharField(required=False)
    description = serializers.CharField(required=False)
    permanent = serializers.BooleanField(required=False, allow_null=True)


class ConversionOut(serializers.ModelSerializer):
    author = UserSummary(allow_null=True)
    value = serializers.DecimalField(max_digits=16, decimal_places=4, allow_null=True)
    error = serializers.SerializerMethodField()

    class Meta:
        model = Conversion
        fields = [
            "id",
            "conversation_id",
            "event",
            "value",
            "currency",
            "quantity",
            "author",
            "status",
            "error",
            "tries",
            "occurred_at",
            "created_at",
            "sent_at",
            "failed_at",
        ]

    @extend_schema_field(ConversionError(allow_null=True))
    def get_error(self, conversion) -> dict | None:
        if not conversion.error:
            return None
        return {key: conversion.error[key] for key in ("name", "description", "permanent") if key in conversion.error}


class ConversionIn(serializers.Serializer):
    event = serializers.ChoiceField(choices=Conversion.Event.choices, help_text="One of TikTok's standard events")
    value = serializers.DecimalField(
        max_digits=16,
        decimal_places=4,
        required=False,
        allow_null=True,
        default=None,
        help_text="Total value, e.g. 49.90 (needs `currency`)",
    )
    currency = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=16, help_text="ISO 4217 code, e.g. EUR"
    )
    quantity = serializers.IntegerField(required=False, default=1, min_value=1, max_value=1_000_000)


class TypingOut(serializers.Serializer):
    queued = serializers.BooleanField(help_text="False when throttled: an indicator was sent moments ago")


class ConversationDetailOut(ConversationOut):
    referral_data = serializers.SerializerMethodField(
        help_text="Everything known about the referral (URLs only when http(s))"
    )
    referral_facts = serializers.SerializerMethodField()
    conversions = serializers.SerializerMethodField()

    class Meta(ConversationOut.Meta):
        fields = [
            *ConversationOut.Meta.fields,
            "provider_conversation_id",
            "created_at",
            "referral_data",
            "referral_facts",
            "conversions",
        ]

    @extend_schema_field(serializers.JSONField())
    def get_referral_data(self, conversation) -> dict:
        return without_unsafe_urls(conversation.referral or {})

    @extend_schema_field(ReferralFact(many=True))
    def get_referral_facts(self, conversation) -> list:
        """The referral's fields an agent is shown, labelled, in order."""
        data = without_unsafe_urls(conversation.referral or {})
        facts = [
            {"label": label, "value": str(data[key]), "mono": key.endswith("id")}
            for key, label in REFERRAL_FACT_LABELS.items()
            if isinstance(data.get(key), str | int | float) and not isinstance(data.get(key), bool) and data[key] != ""
        ]
        if data.get("received_at"):
            facts.append({"label": "Referred", "value": str(data["received_at"]), "mono": False})
        return facts

    @extend_schema_field(ConversionOut(many=True))
    def get_conversions(self, conversation) -> list:
        """Ads conversions reported on this conversation, newest first."""
        return ConversionOut(selectors.conversions_of(conversation), many=True).data


class MessageError(serializers.Serializer):
    name = serializers.CharField(required=False)
    description = serializers.CharField(required=False)
    permanent = serializers.BooleanField(required=False, allow_null=True)


class Reaction(serializers.Serializer):
    emoji = serializers.CharField(allow_blank=True)
    action = serializers.CharField(allow_blank=True)


class MessageActionError(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()


class MessageActionOut(serializers.Serializer):
    action = serializers.ChoiceField(choices=providers.MESSAGE_ACTIONS)
    state = serializers.ChoiceField(choices=["pending", "done", "failed"])
    error = MessageActionError(allow_null=True)


class MessageOut(serializers.ModelSerializer):
    author = UserSummary(allow_null=True)
    reaction = serializers.SerializerMethodField()
    quoted_message_id = serializers.IntegerField(allow_null=True)
    quoted_provider_message_id = serializers.CharField()
    status = serializers.SerializerMethodField()
    provider_status_name = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()
    media_url = HttpUrlField(help_text="The image's URL (only http(s); else empty)")
    share_post_embed_url = HttpUrlField(source="embed_url", help_text="Only http(s); else empty")
    version = serializers.SerializerMethodField()
    can_quote = serializers.SerializerMethodField()
    sent_outside_inbox = serializers.SerializerMethodField()
    public_state = serializers.ChoiceField(
        choices=Message.PublicState.choices,
        read_only=True,
        help_text="A public comment: still visible, hidden (by the business) or deleted, as the provider last said.",
    )
    other_author = serializers.CharField(
        read_only=True, help_text="Written by another user than the contact in their public thread (a reply): name."
    )
    action = serializers.SerializerMethodField()
    actions = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = [
            "id",
            "conversation_id",
            "direction",
            "type",
            "text",
            "media_url",
            "share_post_embed_url",
            "post_id",
            "reaction",
            "quoted_message_id",
            "quoted_provider_message_id",
            "author",
            "status",
            "sent_at",
            "queued_at",
            "accepted_at",
            "delivered_at",
            "seen_at",
            "failed_at",
            "provider_status_name",
            "error",
            "attempt",
            "version",
            "can_quote",
            "sent_outside_inbox",
            "public_state",
            "other_author",
            "action",
            "actions",
        ]

    @extend_schema_field(MessageActionOut(allow_null=True))
    def get_action(self, message) -> dict | None:
        """The last hide / unhide / delete asked of the provider: pending, done or failed (with the reason)."""
        return action_shown(message.action)

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(choices=providers.MESSAGE_ACTIONS)))
    def get_actions(self, message) -> list[str]:
        """What an agent may ask now: POST /api/v1/messages/{id}/hide|unhide|delete/ (the provider decides)."""
        return list(message_actions_allowed(message))

    def get_sent_outside_inbox(self, message) -> bool:
        """An outbound message the business sent outside the inbox (e.g. from TikTok's app): never queued here."""
        return sent_outside_inbox(message.direction, message.queued_at)

    def get_can_quote(self, message) -> bool:
        """Whether a reply may quote this message (only the customer's own messages can be quoted)."""
        return can_quote(message.direction, message.provider_message_id)

    @extend_schema_field(
        serializers.IntegerField(
            help_text="Orders this message's live updates (the `version` of message.status events): "
            "ignore an event whose version is not above the one shown"
        )
    )
    def get_version(self, message) -> int:
        return message_version_shown(message.attempt, message.status)

    @extend_schema_field(Reaction(allow_null=True))
    def get_reaction(self, message) -> dict | None:
        return reaction_shown(message.type, message.reaction_emoji, message.reaction_action)

    @extend_schema_field(serializers.ChoiceField(choices=Message.Status.choices, allow_null=True))
    def get_status(self, message) -> str | None:
        return message.status or None

    def get_provider_status_name(self, message) -> str:
        return (message.provider_status or {}).get("name", "")

    @extend_schema_field(MessageError(allow_null=True))
    def get_error(self, message) -> dict | None:
        return message_error_shown(message.error)


# What a thread message shows, each from plain values: MessageOut's getters (a model instance) and `message_rows`
# (a page of `.values()` rows, the thread's hot path) call the same functions.


def action_shown(action: dict | None) -> dict | None:
    if not action:
        return None
    error = action.get("error") or {}
    return {
        "action": action.get("action", ""),
        "state": action.get("state", ""),
        "error": {key: error[key] for key in ("name", "description") if key in error} or None,
    }


def sent_outside_inbox(direction: str, queued_at) -> bool:
    return direction == Message.Direction.OUT and queued_at is None


def can_quote(direction: str, provider_message_id: str | None) -> bool:
    return direction == Message.Direction.IN and bool(provider_message_id)


def message_version_shown(attempt: int, status: str) -> int:
    return message_version(attempt, status or Message.Status.QUEUED)


def reaction_shown(type: str, emoji: str, action: str) -> dict | None:
    if type != Message.Type.REACTION:
        return None
    return {"emoji": emoji, "action": action}


def message_error_shown(error: dict | None) -> dict | None:
    if not error:
        return None
    return {key: error[key] for key in ("name", "description", "permanent") if key in error}


def message_rows(rows: list[dict], *, provider: str, conversation_kind: str) -> list[dict]:
    """A thread page as MessageOut shows it, from `selectors.THREAD_VALUES` rows of one conversation (plain
    values, no model instances): the keys and values the declared fields give (a test compares the two)."""
    shown, datetime_shown = [], _datetimes_of_page()
    for row in rows:
        direction, status, provider_status = row["direction"], row["status"], row["provider_status"] or {}
        facts = providers.MessageFacts(
            provider=provider,
            conversation_kind=conversation_kind,
            direction=direction,
            provider_message_id=row["provider_message_id"],
            public_state=row["public_state"],
            provider_status=provider_status,
        )
        shown.append(
            {
                "id": row["id"],
                "conversation_id": row["conversation_id"],
                "direction": direction,
                "type": row["type"],
                "text": row["text"],
                "media_url": http_url(row["media_url"]),
                "share_post_embed_url": http_url(row["embed_url"]),
                "post_id": row["post_id"],
                "reaction": reaction_shown(row["type"], row["reaction_emoji"], row["reaction_action"]),
                "quoted_message_id": row["quoted_message_id"],
                "quoted_provider_message_id": row["quoted_provider_message_id"],
                "author": user_summary(row, "author"),
                "status": status or None,
                "sent_at": datetime_shown(row["sent_at"]),
                "queued_at": datetime_shown(row["queued_at"]),
                "accepted_at": datetime_shown(row["accepted_at"]),
                "delivered_at": datetime_shown(row["delivered_at"]),
                "seen_at": datetime_shown(row["seen_at"]),
                "failed_at": datetime_shown(row["failed_at"]),
                "provider_status_name": provider_status.get("name", ""),
                "error": message_error_shown(row["error"]),
                "attempt": row["attempt"],
                "version": message_version_shown(row["attempt"], status),
                "can_quote": can_quote(direction, row["provider_message_id"]),
                "sent_outside_inbox": sent_outside_inbox(direction, row["queued_at"]),
                "public_state": row["public_state"],
                "other_author": row["other_author"],
                "action": action_shown(row["action"]),
                "actions": list(message_actions_allowed_for(facts, action=row["action"])),
            }
        )
    return shown


class ConversationOfContact(serializers.ModelSerializer):
    inbox = InboxSummary()

    class Meta:
        model = Conversation
        fields = ["id", "inbox", "status", "last_activity_at"]


class ContactChangeIn(serializers.Serializer):
    display_name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    email = serializers.EmailField(required=False, allow_blank=True)
    phone = serializers.CharField(required=False, allow_blank=True, max_length=40)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=5000, trim_whitespace=False)
    attributes = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=500),
        required=False,
        help_text="Custom attributes (name → text); replaces the whole set",
    )


class ContactOut(serializers.ModelSerializer):
    tiktok_user_id = serializers.CharField(source="channel_user_id")
    business_account_id = serializers.CharField(source="endpoint_id")

    class Meta:
        model = Contact
        fields = [
            "id",
            "display_name",
            "tiktok_user_id",
            "business_account_id",
            "email",
            "phone",
            "notes",
            "first_seen_at",
            "last_seen_at",
            "attributes",
        ]


class ContactDetailOut(ContactOut):
    conversations = serializers.SerializerMethodField()

    class Meta(ContactOut.Meta):
        fields = [*ContactOut.Meta.fields, "conversations"]

    @extend_schema_field(ConversationOfContact(many=True))
    def get_conversations(self, contact) -> list:
        return ConversationOfContact(self.context["conversations"], many=True).data


class AssignIn(serializers.Serializer):
    assignee = serializers.RegexField(r"^(me|[1-9][0-9]{0,17})$", help_text='An agent\'s user id, or "me"')


class LabelOut(serializers.ModelSerializer):
    class Meta:
        model = Label
        fields = ["id", "inbox_id", "name", "color"]


class LabelIn(serializers.Serializer):
    inbox = serializers.IntegerField(min_value=1, max_value=2**62)
    name = serializers.CharField(max_length=50)
    color = serializers.RegexField(r"^#[0-9a-fA-F]{6}$", default="#75788a", help_text="#rrggbb")


class LabelChangeIn(serializers.Serializer):
    name = serializers.CharField(max_length=50)
    color = serializers.RegexField(r"^#[0-9a-fA-F]{6}$", help_text="#rrggbb")


class ConversationChangeIn(serializers.Serializer):
    labels = serializers.ListField(
        child=serializers.CharField(max_length=50), max_length=20, help_text="Names of the inbox's labels"
    )


class CannedResponseOut(serializers.ModelSerializer):
    personal = serializers.SerializerMethodField()
    rendered = serializers.SerializerMethodField()

    class Meta:
        model = CannedResponse
        fields = ["id", "inbox_id", "short_code", "text", "personal", "rendered"]

    def get_personal(self, canned) -> bool:
        return canned.owner_id is not None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_rendered(self, canned) -> str | None:
        """The text with {{contact.name}} / {{agent.name}} filled in for `?conversation=` (null without it)."""
        variables = self.context.get("variables")
        return canned_render(canned.text, **variables) if variables else None


class CannedResponseIn(serializers.Serializer):
    inbox = serializers.IntegerField(min_value=1, max_value=2**62)
    short_code = serializers.CharField(max_length=40, help_text="lowercase letters, digits, - and _")
    text = serializers.CharField(max_length=6000, trim_whitespace=False)
    personal = serializers.BooleanField(default=False, help_text="Only for me (else shared with the inbox)")


class CannedResponseChangeIn(serializers.Serializer):
    short_code = serializers.CharField(max_length=40)
    text = serializers.CharField(max_length=6000, trim_whitespace=False)


class SnoozeIn(serializers.Serializer):
    until = serializers.DateTimeField(help_text="When it reopens by itself (future, at most 90 days away)")


class PriorityIn(serializers.Serializer):
    priority = serializers.ChoiceField(choices=Conversation.Priority.choices)


class NoteIn(serializers.Serializer):
    text = serializers.CharField(trim_whitespace=False, max_length=10000, help_text="`@username` notifies that agent")


class UnreadCountsOut(serializers.Serializer):
    mine = serializers.IntegerField()
    unassigned = serializers.IntegerField()
    all = serializers.IntegerField()


class LimitsOut(serializers.Serializer):
    reply_text_max_chars = serializers.IntegerField()
    note_text_max_chars = serializers.IntegerField()
    image_max_bytes = serializers.IntegerField()
    image_types = serializers.ListField(child=serializers.CharField())
    post_id_max_chars = serializers.IntegerField()
    reply_window_hours = serializers.IntegerField()
    reply_quota_per_window = serializers.IntegerField()


class ReplyIn(serializers.Serializer):
    type = serializers.ChoiceField(choices=["text", "image", "share_post"], default="text")
    text = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False, max_length=6000)
    media_url = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=2048,
        help_text="An image's public http(s) URL (JPG or PNG); or upload `image`",
    )
    image = serializers.FileField(required=False, help_text="JPG or PNG, at most 3 MB (multipart)")
    post_id = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    quoted_message_id = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, max_value=2**62
    )
    callback_data = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)
