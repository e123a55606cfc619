"""The channel-agnostic contact center: inboxes, contacts, conversations, messages, audit log.

Nothing here knows TikTok or Infobip: a channel identifies itself by a short `channel` name
(e.g. "tiktok") and an `endpoint_id` (the business-side address a contact writes to).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower


def default_time_zone() -> str:
    return settings.TIME_ZONE


def validate_time_zone(value: str) -> None:
    if value not in available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone (e.g. Europe/Berlin)")


class Inbox(models.Model):
    name = models.CharField(max_length=120, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="inboxes", blank=True)
    time_zone = models.CharField(
        max_length=64,
        default=default_time_zone,
        validators=[validate_time_zone],
        help_text="IANA name; the reports' days and hours are in it (a change moves them).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "inboxes"

    def __str__(self) -> str:
        return self.name


class Label(models.Model):
    """A tag agents put on conversations of one inbox (filterable, shown on list rows)."""

    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=50)
    color = models.CharField(max_length=7, default="#75788a", help_text="#rrggbb")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(Lower("name"), "inbox", name="label_unique_name_per_inbox"),
        ]

    def __str__(self) -> str:
        return self.name


class CannedResponse(models.Model):
    """A saved reply: shared by an inbox (no owner) or personal (an owner), found by its short code."""

    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="canned_responses")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="canned_responses",
        help_text="Empty: shared with the inbox. Set: only this agent's.",
    )
    short_code = models.SlugField(max_length=40, help_text="Typed after / in the composer")
    text = models.TextField(help_text="{{contact.name}} and {{agent.name}} are filled in when inserted")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["short_code"]
        constraints = [
            models.UniqueConstraint(
                fields=["inbox", "short_code"], condition=Q(owner__isnull=True), name="canned_unique_shared_code"
            ),
            models.UniqueConstraint(
                fields=["inbox", "owner", "short_code"],
                condition=Q(owner__isnull=False),
                name="canned_unique_personal_code",
            ),
        ]

    def __str__(self) -> str:
        return f"/{self.short_code}"


class Contact(models.Model):
    channel = models.CharField(max_length=32)
    endpoint_id = models.CharField(max_length=200, help_text="Business-side address the contact writes to.")
    channel_user_id = models.CharField(max_length=200)
    display_name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    notes = models.TextField(blank=True, help_text="What agents know about this contact")
    first_seen_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    attributes = models.JSONField(default=dict, blank=True, help_text="Custom attributes agents set: text values")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "endpoint_id", "channel_user_id"], name="contact_unique_user_per_endpoint"
            )
        ]

    def __str__(self) -> str:
        return self.display_name or self.channel_user_id


class Conversation(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        PENDING = "pending", "Pending"
        RESOLVED = "resolved", "Resolved"

    class Priority(models.TextChoices):
        NONE = "none", "None"
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"
        URGENT = "urgent", "Urgent"

    class Kind(models.TextChoices):
        MESSAGE = "message", "Message"  # a direct-message thread
        COMMENT = "comment", "Comment"  # a user's public comments on one of the business's posts

    # No index of their own for `inbox` and `assignee`: the indexes below lead with them. Every inbound message
    # moves `last_activity_at`, so each of its conversation's UPDATEs writes an entry into every index of the table
    # (no HOT update): an index fewer is a write fewer per event (bench/README.md "Set-based intake", sixth session).
    inbox = models.ForeignKey(Inbox, on_delete=models.PROTECT, related_name="conversations", db_index=False)
    # Nor for `contact`: the unique constraint below leads with it.
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="conversations", db_index=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    priority = models.CharField(max_length=16, choices=Priority.choices, default=Priority.NONE)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_conversations",
        db_index=False,
    )
    provider = models.CharField(
        max_length=32,
        blank=True,
        help_text="The backend of the connection the user last wrote through (e.g. infobip); replies go there.",
    )
    provider_conversation_id = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.MESSAGE)
    subject_id = models.CharField(
        max_length=200, blank=True, help_text="What a comment conversation is about (the post's id); '' for messages."
    )
    subject = models.JSONField(
        default=dict, blank=True, help_text="The post a comment conversation is about: id, url, what the provider adds."
    )
    last_inbound_at = models.DateTimeField(
        null=True, blank=True, help_text="The user's last message: the reply window runs from here."
    )
    # No index of its own: every list reads it from an index that leads with the inbox or the assignee (an admin's
    # list too, inbox by inbox: inbox/pages.py).
    last_activity_at = models.DateTimeField()
    referral = models.JSONField(default=dict, blank=True, help_text="Ad / TikTok.me attribution.")
    agent_last_seen_at = models.DateTimeField(null=True, blank=True)
    # What a list row shows, kept by the write path (inbox/services/summary.py) so the list reads columns, not
    # subqueries: the newest message by (sent_at, id) — notes and replies included — and the inbound messages
    # sent after agents last looked.
    last_message_id = models.PositiveBigIntegerField(null=True, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_message_direction = models.CharField(max_length=4, blank=True)
    last_message_type = models.CharField(max_length=16, blank=True)
    last_message_preview = models.CharField(max_length=200, blank=True, help_text="The first 200 characters.")
    unread_count = models.PositiveIntegerField(default=0)
    labels = models.ManyToManyField(Label, blank=True, related_name="conversations")
    snoozed_until = models.DateTimeField(
        null=True, blank=True, help_text="A pending conversation reopens then (or when the customer writes)."
    )
    # Bumped on every change an agent sees, so clients can ignore live updates older than their state.
    version = models.PositiveBigIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # TikTok keeps one message thread per user and business account: so do we (a resolved one reopens);
            # comments make one conversation per user and post. The contact first: its index is also the
            # foreign key's (a contact's conversations), one index fewer for every inbound message to write.
            models.UniqueConstraint(
                fields=["contact", "inbox", "kind", "subject_id"], name="conversation_unique_contact_per_inbox"
            ),
        ]
        indexes = [
            # One list index for a status's page and for every status's (inbox/pages.py reads the latter as one
            # branch per status, merged): the activity is in one inbox index fewer for every inbound message to write.
            models.Index(fields=["inbox", "status", "-last_activity_at", "-id"], name="conv_inbox_status_activity_id"),
            models.Index(fields=["assignee", "status", "-last_activity_at"], name="conv_assignee_status_activity"),
            models.Index(fields=["inbox", "status", "last_inbound_at"], name="conv_inbox_status_window"),
            # Only snoozed rows: the others (every row an inbound message updates) write no entry here.
            models.Index(
                fields=["status", "snoozed_until"],
                condition=Q(snoozed_until__isnull=False),
                name="conv_status_snoozed_until",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contact} in {self.inbox}"

    def reply_window_closes_at(self) -> datetime | None:
        return reply_window_closes_at(kind=self.kind, last_inbound_at=self.last_inbound_at)


def reply_window_closes_at(*, kind: str, last_inbound_at: datetime | None) -> datetime | None:
    """When the reply window of a conversation of this kind closes (None: it has none, or never opened). Plain
    values, so a list row read with `.values()` uses the same rule as a model."""
    if kind == Conversation.Kind.COMMENT:
        return None  # public replies to comments have no window (TikTok documents none)
    if last_inbound_at is None:
        return None
    return last_inbound_at + timedelta(hours=settings.REPLY_WINDOW_HOURS)


class Message(models.Model):
    class Direction(models.TextChoices):
        IN = "in", "Inbound"
        OUT = "out", "Outbound"
        # An agents-only note in the thread: no provider, no status, never in the outbox or the reply quota.
        NOTE = "note", "Private note"

    class Type(models.TextChoices):
        TEXT = "text", "Text"
        IMAGE = "image", "Image"
        SHARE_POST = "share_post", "Share post"
        REACTION = "reaction", "Reaction"
        REFERRAL = "referral", "Referral"
        UNSUPPORTED = "unsupported", "Unsupported"

    class Status(models.TextChoices):
        """Delivery status of an outbound message; only ever moves forward (see services)."""

        QUEUED = "queued", "Queued"
        ACCEPTED = "accepted", "Accepted"
        DELIVERED = "delivered", "Delivered"
        SEEN = "seen", "Seen"
        FAILED = "failed", "Failed"

    class PublicState(models.TextChoices):
        """Whether a public message (a comment) is still shown to the public, as the provider last told us."""

        VISIBLE = "visible", "Visible"
        HIDDEN = "hidden", "Hidden"
        DELETED = "deleted", "Deleted"

    # No index of its own: `message_thread` leads with it (one index write fewer per stored message).
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages", db_index=False)
    direction = models.CharField(max_length=4, choices=Direction.choices)
    type = models.CharField(max_length=16, choices=Type.choices)
    text = models.TextField(blank=True)
    media_url = models.URLField(max_length=2048, blank=True)
    embed_url = models.URLField(max_length=2048, blank=True, help_text="Share-post or ad embed URL.")
    post_id = models.CharField(max_length=200, blank=True, help_text="Outbound SHARE_POST post id.")
    reaction_emoji = models.CharField(max_length=64, blank=True)
    reaction_action = models.CharField(max_length=16, blank=True)
    quoted_provider_message_id = models.CharField(
        max_length=200, blank=True, help_text="The message this one replies or reacts to."
    )
    payload = models.JSONField(default=dict, blank=True)
    referral = models.JSONField(
        default=dict, blank=True, help_text="Inbound: the ad / TikTok.me attribution this message carried."
    )
    channel = models.CharField(max_length=32)
    endpoint_id = models.CharField(
        max_length=200,
        blank=True,
        default="",
        help_text="Inbound: the business-side address it was received on (its contact's endpoint_id), which "
        "scopes the provider id's uniqueness. Outbound: empty (our own ids are unique anyway).",
    )
    provider_message_id = models.CharField(max_length=200, null=True, blank=True)
    provider_conversation_id = models.CharField(max_length=200, blank=True)
    author = models.ForeignKey(  # indexed only where set (`message_author`): inbound messages have none
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    attempt = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=16, choices=Status.choices, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    seen_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    provider_status = models.JSONField(default=dict, blank=True, help_text="Provider's last status object.")
    error = models.JSONField(default=dict, blank=True, help_text="Provider error: name, description, permanent.")
    idempotency_key = models.CharField(
        max_length=200, null=True, blank=True, help_text="The agent's Idempotency-Key: one reply per key."
    )
    sent_at = models.DateTimeField(help_text="When the user sent it (inbound) or we created it (outbound).")
    created_at = models.DateTimeField(auto_now_add=True)
    other_author = models.CharField(
        max_length=200,
        blank=True,
        help_text="Inbound, written by someone else than the contact in the contact's public thread (a reply by "
        "another user to their comment): that user's name.",
    )
    public_state = models.CharField(max_length=16, choices=PublicState.choices, default=PublicState.VISIBLE)
    action = models.JSONField(
        default=dict,
        blank=True,
        help_text="The last hide / unhide / delete asked of the provider: action, state (pending, failed), error.",
    )

    class Meta:
        constraints = [
            # Per connection endpoint: another account's webhook reusing an id cannot make ours a duplicate.
            models.UniqueConstraint(
                fields=["channel", "endpoint_id", "provider_message_id"],
                condition=Q(provider_message_id__isnull=False),
                name="message_unique_provider_id_per_endpoint",
            ),
            # A repeated request (double Enter, a client retry) finds the reply its key already created.
            models.UniqueConstraint(
                fields=["conversation", "author", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="message_unique_idempotency_key",
            ),
        ]
        indexes = [
            models.Index(fields=["conversation", "sent_at", "id"], name="message_thread"),
            # Only rows with a delivery status: inbound messages (status "") write no entry here.
            models.Index(fields=["status", "queued_at"], condition=~Q(status=""), name="message_status_queued"),
            models.Index(fields=["author"], condition=Q(author__isnull=False), name="message_author"),
            # Status reports find an outbound message by its provider id alone (a reply has no endpoint_id, an echo
            # of a message sent outside has its own): the unique constraint above leads with endpoint_id, so without
            # this every report batch read the whole table (bench/README.md "Ticks", fifth session).
            models.Index(
                fields=["channel", "provider_message_id"],
                condition=Q(direction="out"),
                name="message_outbound_provider_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.type} #{self.pk}"


class AuditLog(models.Model):
    class ActorKind(models.TextChoices):
        AGENT = "agent", "Agent"
        PROVIDER = "provider", "Provider"
        SYSTEM = "system", "System"

    # Indexed only where set (`auditlog_actor`): rows written for the provider or the system (every status report's)
    # have no actor, and the index serves only a user's deletion (SET NULL).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    action = models.CharField(max_length=64)
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, null=True, blank=True, related_name="audit_entries"
    )
    message = models.ForeignKey(Message, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["actor"], condition=Q(actor__isnull=False), name="auditlog_actor")]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor or self.actor_kind}"


class Conversion(models.Model):
    """A conversion an agent reported for a conversation that came from an ad, and what became of the report."""

    class Event(models.TextChoices):
        """TikTok's standard event names."""

        COMPLETE_PAYMENT = "CompletePayment", "Complete payment"
        PLACE_AN_ORDER = "PlaceAnOrder", "Place an order"
        SUBMIT_FORM = "SubmitForm", "Submit form"
        CONTACT = "Contact", "Contact"
        COMPLETE_REGISTRATION = "CompleteRegistration", "Complete registration"
        ADD_TO_CART = "AddToCart", "Add to cart"
        INITIATE_CHECKOUT = "InitiateCheckout", "Initiate checkout"
        VIEW_CONTENT = "ViewContent", "View content"
        SUBSCRIBE = "Subscribe", "Subscribe"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="conversions")
    event = models.CharField(max_length=32, choices=Event.choices)
    value = models.DecimalField(
        max_digits=16, decimal_places=4, null=True, blank=True, help_text="Total value of the conversion."
    )
    currency = models.CharField(max_length=3, blank=True, help_text="ISO 4217 code of the value, e.g. EUR.")
    quantity = models.PositiveIntegerField(default=1)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    provider_response = models.JSONField(default=dict, blank=True, help_text="The provider's answer when sent.")
    error = models.JSONField(default=dict, blank=True, help_text="Provider error: name, description, permanent.")
    tries = models.PositiveSmallIntegerField(default=0)
    occurred_at = models.DateTimeField(help_text="When the conversion happened (reported as the event time).")
    sent_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(value__isnull=True) | Q(value__gte=0), name="conversion_value_not_negative"
            ),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="conversion_quantity_positive"),
        ]
        indexes = [
            models.Index(fields=["conversation", "-created_at"], name="conversion_of_conversation"),
            models.Index(fields=["status", "created_at"], name="conversion_status_created"),
        ]

    def __str__(self) -> str:
        return f"{self.event} on conversation {self.conversation_id} ({self.status})"


class ParkedReport(models.Model):
    """A delivery or seen report for an outbound message we do not have (yet): applied when it appears.

    Reports can overtake the answer to our own send (Infobip posts a report before the worker records the
    acceptance); whatever the provider, the outbox parks them here and applies them when the message gets
    that id, or on the periodic pass.
    """

    channel = models.CharField(max_length=32)
    provider_message_id = models.CharField(max_length=200)
    status = models.CharField(max_length=16, help_text="The Message.Status the report moves to.")
    at = models.DateTimeField(help_text="When the provider says the status was reached.")
    provider_status = models.JSONField(default=dict, blank=True)
    error = models.JSONField(default=dict, blank=True)
    endpoint_ids = models.JSONField(
        null=True,
        blank=True,
        default=None,
        help_text="The reporting connection's endpoints it may apply to (null: any).",
    )
    received_at = models.DateTimeField()
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "provider_message_id", "status"], name="parkedreport_once_per_message_status"
            )
        ]
        indexes = [models.Index(fields=["applied_at", "received_at"], name="parkedreport_pending")]

    def __str__(self) -> str:
        return f"{self.status} report for {self.provider_message_id}"


# The verdicts of requests worth a look (the admin's filter, its partial index, and kept longer: `ledger_prune`).
WEBHOOK_TROUBLE_VERDICTS = ["partial", "rejected", "failed"]


class WebhookEvent(models.Model):
    """The raw ledger, shared by every provider: each authenticated webhook request as received, with what
    became of it. The webhook stores it (pending), the processor (`inbox/processor.py`) hands it to its
    provider's backend, which parses and applies it through the services and records the verdict."""

    class Verdict(models.TextChoices):
        PENDING = "pending", "Stored, not processed yet"
        PROCESSED = "processed", "Processed"
        PARTIAL = "partial", "Processed with errors"
        REJECTED = "rejected", "Rejected (bad input)"
        FAILED = "failed", "Processing failed"

    provider = models.CharField(max_length=32, help_text="The backend that received it (inbox.providers).")
    connection_id = models.BigIntegerField(help_text="The provider's connection (e.g. Infobip account) it came to.")
    path_kind = models.CharField(max_length=16, help_text="any, inbound, delivery or seen (from the URL)")
    received_at = models.DateTimeField(db_index=True)
    headers = models.JSONField(default=dict, help_text="Request headers, credentials removed.")
    body = models.TextField()
    result_count = models.PositiveIntegerField(default=0)
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    summary = models.JSONField(default=dict, blank=True, help_text="Counts per outcome.")
    error = models.TextField(blank=True)
    problems = models.JSONField(
        default=list,
        blank=True,
        help_text='Results kept but not applied, each {"index", "reason"}: a wrong shape, or one we do not understand.',
    )
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        # Every request writes its row and then its verdict, so each index here costs every request an entry (two
        # when the verdict's UPDATE makes a new row version): only what a query needs (bench/README.md, "the
        # ledger's fixed cost"). The admin's list (newest first, date drill-down): `received_at`'s own index.
        # The table's pages are filled half by INSERTs (migration 0040, `fillfactor`): the verdict's new row version
        # stays on its row's page, so its WAL record is the changed bytes, not a copy of the body.
        indexes = [
            # The processor's queue: `WHERE verdict = 'pending' ORDER BY id`, small however large the ledger; also
            # the health page's count of requests waiting too long (a connection's pending rows).
            models.Index(fields=["id"], condition=models.Q(verdict="pending"), name="webhookevent_pending"),
            # The admin's verdict filter for the requests worth a look: rare rows, so healthy traffic writes
            # nothing here (a processed row is not in it).
            models.Index(
                fields=["verdict", "-received_at"],
                condition=models.Q(verdict__in=WEBHOOK_TROUBLE_VERDICTS),
                name="webhookevent_trouble",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.path_kind} webhook #{self.pk} ({self.verdict})"


class WebhookWaiter(models.Model):
    """A webhook processor waiting for a wake-up (PostgreSQL): one row per waiting processor, keyed by the backend of
    the connection it LISTENs on. The webhook's INSERT notifies only while a row exists (inbox/processor.py: a
    notifying commit waits for every other notifying commit's flush); each processor adds and removes its own row,
    so one that works under load never silences another that waits. A row whose backend is gone (a killed
    processor) is removed by the next processor that starts waiting."""

    pid = models.IntegerField(primary_key=True, help_text="The listening connection's backend process id.")
    backend_start = models.DateTimeField(help_text="When that backend started (a process id can be reused).")

    def __str__(self) -> str:
        return f"webhook processor waiting on backend {self.pid}"


# Routing and automation (teams, availability, rules, CSAT, SLA) keep their rows in their own module.
from inbox.automation.models import *  # noqa: E402, F403

# The report roll-ups live in inbox/reports/ and belong to this app.
from inbox.reports.models import ReportCycle, ReportDay, ReportHistogram, ReportHour, ReportMarkBatch, ReportState  # noqa: E402, F401, I001
