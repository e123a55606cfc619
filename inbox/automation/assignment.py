"""Agent availability and auto-assignment.

Concurrency: an assignment locks the candidate agents' availability rows (by user id) before it counts their
open conversations, then the conversation. Two processors assigning at once therefore count one after the other,
and the second sees the first's committed assignment: no agent goes above their capacity. Lock order is always
availability rows, then conversations, so the paths here cannot deadlock each other; the core's own services
lock only conversations.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from inbox import domain_events
from inbox.automation.models import AgentAvailability, ConversationTeam, InboxRouting
from inbox.errors import ApplicationError
from inbox.models import AuditLog, Conversation, Inbox
from inbox.services.conversations import conversation_assign

logger = logging.getLogger(__name__)

WAITING_BATCH = 200
HEARTBEAT_SECONDS = 30  # the page pings every 25 s


def _availability(user_id: int) -> AgentAvailability:
    availability, _ = AgentAvailability.objects.get_or_create(user_id=user_id)
    return availability


def _emit_availability(user_id: int, status: str) -> None:
    inbox_ids = Inbox.objects.filter(members=user_id).values_list("pk", flat=True)
    domain_events.emit(
        *(domain_events.AgentAvailabilityChanged(inbox_id=pk, user_id=user_id, status=status) for pk in inbox_ids)
    )


def _change(user_id: int, update) -> AgentAvailability:
    """Lock the agent's row, apply `update(row)`, emit when the effective status changed."""
    _availability(user_id)
    with transaction.atomic():
        row = AgentAvailability.objects.select_for_update().get(user_id=user_id)
        before = row.effective_status
        update(row)
        row.save()
        if row.effective_status != before:
            _emit_availability(user_id, row.effective_status)
    return row


def availability_set(*, user, status: str) -> AgentAvailability:
    """The agent chose a status (online, busy, offline); audited. Going online assigns waiting conversations."""
    if status not in AgentAvailability.Status.values:
        raise ApplicationError(
            "invalid_status",
            "availability is online, busy or offline",
            status=422,
            fields={"status": ["one of online, busy, offline"]},
        )

    def update(row: AgentAvailability) -> None:
        if row.status != status:
            AuditLog.objects.create(
                actor=user,
                actor_kind=AuditLog.ActorKind.AGENT,
                action="agent.availability",
                before={"status": row.status},
                after={"status": status},
            )
        row.status = status

    return _change(user.pk, update)


def presence_connected(user_id: int) -> None:
    """A browser tab of the agent connected (the websocket consumer): present again, at once."""

    def update(row: AgentAvailability) -> None:
        row.open_sockets = F("open_sockets") + 1
        row.present = True
        row.last_heartbeat_at = timezone.now()

    _change(user_id, update)


def presence_disconnected(user_id: int, *, now: datetime | None = None) -> None:
    """A tab closed. When it was the last one, the agent goes offline after the grace period
    (`presence_expire`, run by the beat and scheduled once for the grace period's end)."""
    AgentAvailability.objects.filter(user_id=user_id).update(
        open_sockets=Greatest(F("open_sockets") - 1, 0), last_disconnect_at=now or timezone.now()
    )


def presence_heartbeat(user_id: int) -> None:
    """A tab's ping (every 25 s): the agent is still here, whatever became of other sockets' counts."""
    AgentAvailability.objects.filter(user_id=user_id).update(last_heartbeat_at=timezone.now())


def _gone(row: AgentAvailability, cutoff: datetime, silent_since: datetime) -> bool:
    closed = row.open_sockets == 0 and row.last_disconnect_at is not None and row.last_disconnect_at <= cutoff
    # Sockets counted open by a server that crashed never disconnect: no ping for that long means gone.
    silent = row.last_heartbeat_at is not None and row.last_heartbeat_at <= silent_since
    return row.present and (closed or silent)


def presence_expire(*, now: datetime | None = None) -> list[int]:
    """Agents with no open tab since the grace period began (or no ping for the grace period plus a ping interval)
    become offline. Returns their user ids."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.AGENT_OFFLINE_GRACE_SECONDS)
    silent_since = cutoff - timedelta(seconds=HEARTBEAT_SECONDS)
    due = list(
        AgentAvailability.objects.filter(present=True)
        .filter(
            Q(open_sockets=0, last_disconnect_at__lte=cutoff) | Q(last_heartbeat_at__lte=silent_since),
        )
        .values_list("user_id", flat=True)
    )
    expired = []
    for user_id in due:
        with transaction.atomic():
            row = AgentAvailability.objects.select_for_update().get(user_id=user_id)
            if not _gone(row, cutoff, silent_since):
                continue  # a tab reconnected or pinged meanwhile
            before = row.effective_status
            row.present = False
            row.open_sockets = 0
            row.save(update_fields=["present", "open_sockets", "changed_at"])
            if before != row.effective_status:
                _emit_availability(user_id, row.effective_status)
            expired.append(user_id)
    return expired


def auto_assign_enabled(inbox_id: int) -> bool:
    return InboxRouting.objects.filter(inbox_id=inbox_id, auto_assign=True).exists()


def _candidates(conversation: Conversation):
    """The agents who may get this conversation: active members of its inbox (of its team, when it was handed
    to one), online and present."""
    rows = AgentAvailability.objects.filter(
        user__inboxes=conversation.inbox_id,
        user__is_active=True,
        status=AgentAvailability.Status.ONLINE,
        present=True,
    )
    team_id = ConversationTeam.objects.filter(conversation_id=conversation.pk).values_list("team_id", flat=True).first()
    if team_id is not None:
        rows = rows.filter(user__teams=team_id)
    return rows


def assign_one(conversation_id: int, *, now: datetime | None = None) -> int | None:
    """Give an open, unassigned conversation to the available agent with the fewest open conversations
    (round-robin among equals: the one assigned longest ago), never above capacity. Returns the agent's id,
    or None when it waits (nobody available, or it no longer needs an agent)."""
    now = now or timezone.now()
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None:
        return None
    with transaction.atomic():
        agents = list(_candidates(conversation).select_for_update(of=("self",)).order_by("user_id"))
        conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
        if conversation.assignee_id is not None or conversation.status != Conversation.Status.OPEN:
            return None
        if not agents:
            return None
        open_counts = dict(
            Conversation.objects.filter(assignee_id__in=[a.user_id for a in agents], status=Conversation.Status.OPEN)
            .values_list("assignee_id")
            .annotate(n=Count("pk"))
        )
        eligible = [a for a in agents if open_counts.get(a.user_id, 0) < a.capacity]
        if not eligible:
            return None
        never = datetime.min.replace(tzinfo=now.tzinfo)
        chosen = min(eligible, key=lambda a: (open_counts.get(a.user_id, 0), a.last_assigned_at or never, a.user_id))
        conversation_assign(conversation_id=conversation_id, assignee=chosen.user, actor=None)
        AgentAvailability.objects.filter(pk=chosen.pk).update(last_assigned_at=now)
    return chosen.user_id


def assign_waiting(inbox_id: int) -> list[int]:
    """Assign the inbox's waiting conversations (open, unassigned), oldest first, while agents have room.
    Returns the conversations assigned."""
    if not auto_assign_enabled(inbox_id):
        return []
    waiting = list(
        Conversation.objects.filter(inbox_id=inbox_id, status=Conversation.Status.OPEN, assignee__isnull=True)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:WAITING_BATCH]
    )
    assigned = []
    for conversation_id in waiting:
        if assign_one(conversation_id) is not None:
            assigned.append(conversation_id)
    return assigned


def members_availability(inbox: Inbox) -> list[dict]:
    """The inbox's active members with their effective availability, open conversations and capacity."""
    from inbox.selectors import inbox_members

    members = list(inbox_members(inbox))
    rows = {row.user_id: row for row in AgentAvailability.objects.filter(user__in=members)}
    open_counts = dict(
        Conversation.objects.filter(assignee__in=members, status=Conversation.Status.OPEN)
        .values_list("assignee_id")
        .annotate(n=Count("pk"))
    )
    default = AgentAvailability._meta.get_field("capacity").default
    return [
        {
            "id": user.pk,
            "name": user.get_full_name() or user.username,
            "status": rows[user.pk].effective_status if user.pk in rows else AgentAvailability.Status.OFFLINE,
            "open_conversations": open_counts.get(user.pk, 0),
            "capacity": rows[user.pk].capacity if user.pk in rows else default,
        }
        for user in members
    ]


def routing_update(*, inbox_id: int, changes: dict) -> InboxRouting:
    """Change an inbox's routing settings (the schedule is validated whole: 422 with the field). Turning
    auto-assignment on assigns the conversations already waiting."""
    from inbox.automation.hours import clean_hours

    with transaction.atomic():
        routing, _ = InboxRouting.objects.select_for_update().get_or_create(inbox_id=inbox_id)
        was_on = routing.auto_assign
        for field, value in changes.items():
            setattr(routing, field, value)
        schedule = clean_hours(
            time_zone=routing.time_zone, weekly_hours=routing.weekly_hours, holidays=routing.holidays
        )
        for field, value in schedule.items():
            setattr(routing, field, value)
        routing.save()
    if routing.auto_assign and not was_on:
        assign_waiting(inbox_id)
    return routing
