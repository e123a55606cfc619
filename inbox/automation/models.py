"""Routing and automation rows (app label `inbox`: `inbox/models.py` imports this module)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from inbox.models import Conversation, Inbox

__all__ = ["AgentAvailability", "ConversationTeam", "InboxRouting", "Team"]


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
