"""Routing and automation rows (app label `inbox`: `inbox/models.py` imports this module)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from inbox.fields import EncryptedTextField
from inbox.models import Conversation, Inbox

__all__ = [
    "AgentAvailability",
    "AutomationRule",
    "AutomationRun",
    "ConversationSla",
    "ConversationTeam",
    "CsatSurvey",
    "InboxRouting",
    "OutOfHoursReply",
    "Team",
    "WebhookDelivery",
]


class Team(models.Model):
    """A group of agents within an inbox (e.g. "Billing"): automation can hand a conversation to a team."""

    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=80)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="teams", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(Lower("name"), "inbox", name="team_unique_name_per_inbox")]

    def __str__(self) -> str:
        return f"{self.name} ({self.inbox})"


class AgentAvailability(models.Model):
    """What an agent chose (online / busy / offline) and whether a browser of theirs is connected.

    The effective availability is the chosen status while `present`, else offline: an agent whose last tab
    closed becomes offline after a grace period (`AGENT_OFFLINE_GRACE_SECONDS`), and is their chosen self
    again when a tab connects. Auto-assignment only picks agents who are online and present, below `capacity`.
    """

    class Status(models.TextChoices):
        ONLINE = "online", "Online"
        BUSY = "busy", "Busy"
        OFFLINE = "offline", "Offline"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="availability")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ONLINE)
    capacity = models.PositiveSmallIntegerField(
        default=10, help_text="Auto-assignment gives this agent at most this many open conversations."
    )
    present = models.BooleanField(default=False, help_text="A browser tab of the agent is (or was just) connected.")
    open_sockets = models.PositiveIntegerField(default=0)
    last_disconnect_at = models.DateTimeField(null=True, blank=True)
    last_heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="The last connect or ping of any tab: a crashed server's sockets expire too."
    )
    last_assigned_at = models.DateTimeField(
        null=True, blank=True, help_text="Round-robin: among equals, the agent waiting longest goes first."
    )
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "agent availabilities"
        indexes = [models.Index(fields=["present", "open_sockets"], name="availability_presence")]

    def __str__(self) -> str:
        return f"{self.user} {self.effective_status}"

    @property
    def effective_status(self) -> str:
        return self.status if self.present else self.Status.OFFLINE


class InboxRouting(models.Model):
    """Per-inbox routing and automation settings."""

    inbox = models.OneToOneField(Inbox, on_delete=models.CASCADE, related_name="routing")
    auto_assign = models.BooleanField(
        default=False, help_text="New and reopened conversations go to the available agent with the fewest open."
    )
    business_hours_enabled = models.BooleanField(default=False, help_text="Off: the inbox is always open.")
    time_zone = models.CharField(max_length=64, default="UTC", help_text="IANA name, e.g. Europe/Berlin.")
    weekly_hours = models.JSONField(
        default=dict,
        blank=True,
        help_text='Open intervals per weekday, local time: {"mon": [["09:00", "17:00"]], …}; a missing day is closed.',
    )
    holidays = models.JSONField(default=list, blank=True, help_text='Closed all day: ["2026-12-25", …].')
    out_of_hours_reply = models.TextField(
        blank=True, help_text="Sent once per conversation per closed period when a customer writes (empty: none)."
    )
    csat_enabled = models.BooleanField(default=False, help_text="Ask for a rating when a conversation is resolved.")
    csat_message = models.TextField(
        default="Thanks for contacting us! How did we do? Rate us here: {link}",
        help_text="{link} is replaced with the rating page's address.",
    )
    first_response_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="SLA: an agent answers a new customer message within this many minutes."
    )

    class Meta:
        verbose_name = "inbox routing"

    def __str__(self) -> str:
        return f"Routing of {self.inbox}"


class ConversationTeam(models.Model):
    """The team a conversation was handed to (automation): auto-assignment then picks among its members."""

    conversation = models.OneToOneField(Conversation, on_delete=models.CASCADE, related_name="team_assignment")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="conversation_assignments")
    assigned_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.conversation} → {self.team}"


class AutomationRule(models.Model):
    """When <event> in an inbox and every condition holds, perform the actions in order (see README)."""

    class Event(models.TextChoices):
        CONVERSATION_CREATED = "conversation_created", "Conversation created"
        MESSAGE_RECEIVED = "message_received", "Message received"
        CONVERSATION_RESOLVED = "conversation_resolved", "Conversation resolved"
        NO_AGENT_REPLY = "no_agent_reply", "No agent reply for N minutes"

    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="automation_rules")
    name = models.CharField(max_length=120)
    event = models.CharField(max_length=32, choices=Event.choices)
    no_reply_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="For 'no agent reply': minutes after the customer's last message."
    )
    conditions = models.JSONField(default=list, blank=True, help_text="All must hold (see README).")
    actions = models.JSONField(default=list, help_text="Performed in order (see README).")
    webhook_secret = EncryptedTextField(blank=True, help_text="Signs the outgoing webhooks (HMAC-SHA256).")
    active = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0, help_text="Rules of one event run in this order.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["inbox", "position", "id"]
        indexes = [models.Index(fields=["inbox", "event", "active"], name="rule_inbox_event")]

    def __str__(self) -> str:
        return self.name


class AutomationRun(models.Model):
    """One rule performed for one event: the record agents and admins see. Unique per (rule, event), so a rule
    runs at most once per event, whatever redelivers or replays it."""

    class Outcome(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Some actions failed or were not sent"
        FAILED = "failed", "Failed"

    rule = models.ForeignKey(AutomationRule, on_delete=models.CASCADE, related_name="runs")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="automation_runs")
    event = models.CharField(max_length=32)
    event_key = models.CharField(max_length=200, help_text="What happened, e.g. message:42 — once per rule.")
    results = models.JSONField(default=list, blank=True, help_text='Each action: {"type", "outcome", "detail"}.')
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["rule", "event_key"], name="automationrun_once_per_event")]
        indexes = [models.Index(fields=["conversation", "-created_at"], name="automationrun_conversation")]

    def __str__(self) -> str:
        return f"{self.rule} on {self.event_key} ({self.outcome})"


class WebhookDelivery(models.Model):
    """An outgoing webhook of a rule's run: what was posted, each try's answer, and what became of it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    run = models.ForeignKey(AutomationRun, on_delete=models.CASCADE, related_name="webhook_deliveries")
    url = models.URLField(max_length=2048)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    tries = models.JSONField(default=list, blank=True, help_text='Each try: {"at", "status_code", "error"}.')
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"webhook #{self.pk} to {self.url} ({self.status})"


class OutOfHoursReply(models.Model):
    """The out-of-hours auto-reply of one conversation in one closed period: claimed once, with what became of it."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="out_of_hours_replies")
    period_start = models.DateTimeField(help_text="When the closed period began (the last opening hour's end).")
    outcome = models.CharField(max_length=16, help_text="queued or not_sent")
    detail = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "period_start"], name="outofhours_once_per_period")
        ]

    def __str__(self) -> str:
        return f"out-of-hours reply to {self.conversation_id} ({self.outcome})"


class CsatSurvey(models.Model):
    """A satisfaction survey of one resolution of a conversation: whether the link was sent, and the rating.

    The link carries a signed token (django.core.signing, salt "csat") naming this row, not stored anywhere: it is
    refused after `expires_at` and once a rating is stored (single use)."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="csat_surveys")
    resolved_version = models.PositiveBigIntegerField(help_text="The conversation's version when it was resolved.")
    outcome = models.CharField(max_length=16, help_text="queued or not_sent")
    detail = models.CharField(max_length=300, blank=True)
    rating = models.PositiveSmallIntegerField(null=True, blank=True)
    comment = models.TextField(blank=True)
    rated_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "resolved_version"], name="csat_once_per_resolution"),
            models.CheckConstraint(
                condition=models.Q(rating__isnull=True) | models.Q(rating__gte=1, rating__lte=5),
                name="csat_rating_1_to_5",
            ),
        ]
        indexes = [models.Index(fields=["conversation", "-created_at"], name="csat_of_conversation")]

    def __str__(self) -> str:
        return f"CSAT of {self.conversation_id}: {self.rating or self.outcome}"


class ConversationSla(models.Model):
    """The first-response clock of a conversation: a customer message waits for an agent's answer until `due_at`
    (the oldest unanswered message + the inbox's target). An agent's reply or a resolution stops it."""

    conversation = models.OneToOneField(Conversation, on_delete=models.CASCADE, related_name="sla")
    awaiting_since = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    responded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "conversation SLA"

    def __str__(self) -> str:
        return f"SLA of {self.conversation_id}: due {self.due_at}"
