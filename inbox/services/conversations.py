"""Conversation actions by agents: assignment, status, priority, read, typing."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, IntegerField, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from inbox import domain_events, outbox, providers
from inbox.errors import ApplicationError
from inbox.models import AuditLog, Conversation, Message
from inbox.services.common import audit_value as _audit_value
from inbox.services.common import conversation_lock
from inbox.services.replies import reply_window_open_check

logger = logging.getLogger(__name__)

# --- Conversation actions by agents -------------------------------------------------------------


def audit_value(value):
    value = _audit_value(value)
    return value.isoformat() if isinstance(value, datetime) else value


def _conversation_change(*, conversation_id: int, actor, action: str, changes: dict) -> Conversation:
    """Apply `changes` to a locked conversation, audit before/after, emit what changed (domain events)."""
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
        before = {field: audit_value(getattr(conversation, field)) for field in changes}
        if all(getattr(conversation, field) == value for field, value in changes.items()):
            return conversation
        for field, value in changes.items():
            setattr(conversation, field, value)
        conversation.version += 1
        conversation.save(update_fields=[*changes, "version", "updated_at"])
        AuditLog.objects.create(
            actor=actor,
            actor_kind=AuditLog.ActorKind.AGENT if actor else AuditLog.ActorKind.SYSTEM,
            action=action,
            conversation=conversation,
            before=before,
            after={field: audit_value(value) for field, value in changes.items()},
        )
        domain_events.emit(*_changed_events(conversation, actor, before))
    return conversation


def _changed_events(conversation: Conversation, actor, before: dict) -> list[domain_events.ConversationChanged]:
    state = {
        "inbox_id": conversation.inbox_id,
        "conversation_id": conversation.pk,
        "status": conversation.status,
        "priority": conversation.priority,
        "assignee_id": conversation.assignee_id,
        "version": conversation.version,
        "actor_id": getattr(actor, "pk", None),
    }
    events: list[domain_events.ConversationChanged] = []
    if "assignee" in before:
        events.append(domain_events.ConversationAssigned(**state, previous_assignee_id=before["assignee"]))
    if "status" in before:
        events.append(domain_events.ConversationStatusChanged(**state, previous_status=before["status"]))
        if conversation.status == Conversation.Status.RESOLVED:
            events.append(domain_events.ConversationResolved(**state))
    if "priority" in before:
        events.append(domain_events.ConversationPriorityChanged(**state, previous_priority=before["priority"]))
    return events


def invalid_assignee() -> ApplicationError:
    """The one answer for an unknown, inactive or outside agent: assign does not tell them apart."""
    return ApplicationError(
        "invalid_assignee",
        "no active member of this conversation's inbox has that id",
        status=422,
        fields={"assignee": ["not an active member of the inbox"]},
    )


def conversation_assign(*, conversation_id: int, assignee, actor) -> Conversation:
    """Assign to an active member of the conversation's inbox. Admins may assign anyone, but only a member can be
    the assignee (an admin outside the inbox too: the inbox's assignee list would not show them)."""
    inbox = Conversation.objects.select_related("inbox").get(pk=conversation_id).inbox
    if assignee is None or not (assignee.is_active and inbox.members.filter(pk=assignee.pk).exists()):
        raise invalid_assignee()
    return _conversation_change(
        conversation_id=conversation_id, actor=actor, action="conversation.assigned", changes={"assignee": assignee}
    )


def conversation_unassign(*, conversation_id: int, actor) -> Conversation:
    return _conversation_change(
        conversation_id=conversation_id, actor=actor, action="conversation.unassigned", changes={"assignee": None}
    )


def conversation_set_status(*, conversation_id: int, status: str, actor) -> Conversation:
    changes: dict = {"status": status}
    if Conversation.objects.filter(pk=conversation_id, snoozed_until__isnull=False).exists():
        changes["snoozed_until"] = None  # reopened or resolved by hand: the snooze is over
    return _conversation_change(
        conversation_id=conversation_id, actor=actor, action=f"conversation.{status}", changes=changes
    )


SNOOZE_MAX_DAYS = 90


def conversation_snooze(*, conversation_id: int, until: datetime, actor) -> Conversation:
    """Set a conversation aside as pending until `until` (future, at most SNOOZE_MAX_DAYS away): the beat task
    `inbox.tasks.wake_snoozed_conversations` reopens it then, and a message from the customer reopens it at once."""
    now = timezone.now()
    if until <= now or until > now + timedelta(days=SNOOZE_MAX_DAYS):
        raise ApplicationError(
            "invalid_snooze",
            f"snooze until a time in the next {SNOOZE_MAX_DAYS} days",
            status=422,
            fields={"until": ["must be in the future, at most 90 days away"]},
        )
    return _conversation_change(
        conversation_id=conversation_id,
        actor=actor,
        action="conversation.snoozed",
        changes={"status": Conversation.Status.PENDING, "snoozed_until": until},
    )


def conversations_wake_due(*, now: datetime | None = None) -> list[int]:
    """Reopen the snoozed conversations whose time has come (a system change, audited and pushed live).

    Each goes through the locked change, which re-reads the row: one an agent reopened or re-snoozed meanwhile
    is left as the agent set it.
    """
    now = now or timezone.now()
    due = list(
        Conversation.objects.filter(status=Conversation.Status.PENDING, snoozed_until__lte=now).values_list(
            "pk", flat=True
        )[:500]
    )
    woken = []
    for conversation_id in due:
        with transaction.atomic():
            conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
            if conversation.status != Conversation.Status.PENDING or not conversation.snoozed_until:
                continue
            if conversation.snoozed_until > now:
                continue
            _conversation_change(
                conversation_id=conversation_id,
                actor=None,
                action="conversation.woken",
                changes={"status": Conversation.Status.OPEN, "snoozed_until": None},
            )
            woken.append(conversation_id)
    return woken


def conversation_set_priority(*, conversation_id: int, priority: str, actor) -> Conversation:
    return _conversation_change(
        conversation_id=conversation_id, actor=actor, action="conversation.priority", changes={"priority": priority}
    )


def conversation_set_team(*, conversation_id: int, team, actor) -> Conversation:
    """Hand the conversation to `team` (one of its inbox's teams; None: to no team). Locks the conversation, audits
    the team before and after, bumps the version and announces `ConversationTeamChanged`; unchanged: nothing."""
    from inbox.automation.models import ConversationTeam

    with transaction.atomic():
        conversation = conversation_lock(conversation_id)
        if team is not None and team.inbox_id != conversation.inbox_id:
            raise ApplicationError("invalid_team", "no such team in this conversation's inbox", status=422)
        current = ConversationTeam.objects.filter(conversation_id=conversation_id).select_related("team").first()
        before = current.team if current else None
        if getattr(before, "pk", None) == getattr(team, "pk", None):
            return conversation
        if team is None:
            ConversationTeam.objects.filter(conversation_id=conversation_id).delete()
        else:
            ConversationTeam.objects.update_or_create(conversation_id=conversation_id, defaults={"team": team})
        conversation.version += 1
        conversation.save(update_fields=["version", "updated_at"])
        AuditLog.objects.create(
            actor=actor,
            actor_kind=AuditLog.ActorKind.AGENT if actor else AuditLog.ActorKind.SYSTEM,
            action="conversation.team",
            conversation=conversation,
            before={"team": getattr(before, "name", None)},
            after={"team": getattr(team, "name", None)},
        )
        domain_events.emit(
            domain_events.ConversationTeamChanged(
                inbox_id=conversation.inbox_id,
                conversation_id=conversation.pk,
                team_id=getattr(team, "pk", None),
                team_name=getattr(team, "name", ""),
                version=conversation.version,
                actor_id=getattr(actor, "pk", None),
            )
        )
    return conversation


def conversation_mark_read(*, conversation_id: int, actor) -> None:
    """Agents have read the thread up to now (drives unread counts). Not audited: it changes no state.

    When the user wrote since agents last looked, the channel is asked (on commit, best effort) to tell
    the user their messages were read. The row lock makes two agents opening it at once send one receipt.
    """
    with transaction.atomic():
        conversation = (
            Conversation.objects.select_for_update(of=("self",))
            .select_related("contact")
            .filter(pk=conversation_id)
            .first()
        )
        if conversation is None:
            return
        last_seen = conversation.agent_last_seen_at
        # last_inbound_at is the newest inbound message's time (it only moves forward).
        unread = conversation.last_inbound_at is not None and (
            last_seen is None or conversation.last_inbound_at > last_seen
        )
        seen_at = timezone.now()
        # Recounted in the same statement, not zeroed: a message stamped after now (a clock ahead) stays unread.
        still_unread = (
            Message.objects.filter(conversation_id=conversation_id, direction=Message.Direction.IN, sent_at__gt=seen_at)
            .order_by()
            .values("conversation")
            .annotate(n=Count("pk"))
            .values("n")
        )
        Conversation.objects.filter(pk=conversation_id).update(
            agent_last_seen_at=seen_at,
            unread_count=Coalesce(Subquery(still_unread, output_field=IntegerField()), Value(0)),
        )
        if unread:
            transaction.on_commit(partial(outbox.enqueue_event, conversation, providers.EVENT_READ))


TYPING_THROTTLE_SECONDS = 5


def typing_throttle_key(conversation_id: int) -> str:
    return f"inbox:typing:{conversation_id}"


def conversation_typing(*, conversation_id: int, actor) -> bool:
    """An agent is typing: show the user a typing indicator, at most once per TYPING_THROTTLE_SECONDS.

    Refuses (409) when the user never wrote or the reply window is closed. Returns whether an indicator
    was scheduled (False when throttled or the conversation's provider sends no typing events). Writes
    nothing but a cache key: the browser calls this on keystrokes, so it must stay cheap.
    """
    conversation = Conversation.objects.select_related("contact").filter(pk=conversation_id).first()
    if conversation is None:
        raise ApplicationError("not_found", "no such conversation", status=404)
    reply_window_open_check(conversation, now=timezone.now())
    if not outbox.can_send_event(conversation, providers.EVENT_TYPING):
        return False
    try:
        # cache.add is atomic: of concurrent calls within the throttle period exactly one wins.
        first = cache.add(
            typing_throttle_key(conversation_id), actor.pk if actor else 0, timeout=TYPING_THROTTLE_SECONDS
        )
    except Exception:  # noqa: BLE001 - no cache, no indicator: never an error for the agent
        logger.warning("typing throttle unavailable for conversation %s", conversation_id, exc_info=True)
        return False
    if not first:
        return False
    outbox.enqueue_event(conversation, providers.EVENT_TYPING)
    return True


def conversations_connection_changed(*, provider: str, endpoint_ids: list[str]) -> int:
    """A provider's connection on these endpoints can send again or no longer can: tell the agents looking at its
    conversations (their composers' lock comes from the backend's `send_blocked`). Only conversations an agent can
    reply in matter: not resolved, with the user's last message within the reply window. Returns how many."""
    since = timezone.now() - timedelta(hours=settings.REPLY_WINDOW_HOURS)
    with transaction.atomic():
        rows = list(
            Conversation.objects.select_for_update()
            .filter(provider=provider, contact__endpoint_id__in=endpoint_ids, last_inbound_at__gte=since)
            .exclude(status=Conversation.Status.RESOLVED)
            .order_by("pk")
        )
        for conversation in rows:
            conversation.version += 1
        Conversation.objects.bulk_update(rows, ["version"])
        domain_events.emit(
            *(
                domain_events.ConversationConnectionChanged(
                    inbox_id=c.inbox_id,
                    conversation_id=c.pk,
                    status=c.status,
                    priority=c.priority,
                    assignee_id=c.assignee_id,
                    version=c.version,
                    actor_id=None,
                )
                for c in rows
            )
        )
    return len(rows)
