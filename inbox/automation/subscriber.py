"""The automation's subscriber of the domain events (registered in `inbox/apps.py`).

It runs after the change committed, in the process that made it (a webhook processor, a web request, a worker);
`domain_events` logs and swallows what fails here, so routing never breaks the ingest.
"""

from __future__ import annotations

import logging

from django.db import connection
from django.utils import timezone

from inbox import domain_events as de
from inbox.automation import assignment, csat, hours, rules, sla
from inbox.automation.models import AutomationRule, InboxRouting

Event = AutomationRule.Event

logger = logging.getLogger(__name__)


# The events routing or rules act on (`_route`, `_automate`); a batch of none (delivery and seen reports, live-only
# events) costs no query at all.
ACTED_ON = (
    de.ConversationCreated,
    de.MessageReceived,
    de.MessageQueued,
    de.ConversationResolved,
    de.ConversationStatusChanged,
    de.ConversationAssigned,
    de.AgentAvailabilityChanged,
)


def _configured_inboxes(inbox_ids: set[int]) -> set[int]:
    """The inboxes with routing settings or active rules: events of the others need nothing from us (one statement
    per batch, so a webhook batch of an inbox without automation costs one query, not several per event)."""
    if connection.vendor != "postgresql":  # SQLite (development) has no arrays: two ORM queries
        routed = InboxRouting.objects.filter(inbox_id__in=inbox_ids).values_list("inbox_id", flat=True)
        ruled = AutomationRule.objects.filter(inbox_id__in=inbox_ids, active=True).values_list("inbox_id", flat=True)
        return set(routed) | set(ruled)
    routing, rules_table = InboxRouting._meta.db_table, AutomationRule._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT inbox_id FROM {routing} WHERE inbox_id = ANY(%s) "  # noqa: S608 - table names, not input
            f"UNION SELECT inbox_id FROM {rules_table} WHERE inbox_id = ANY(%s) AND active",
            [sorted(inbox_ids), sorted(inbox_ids)],
        )
        return {inbox_id for (inbox_id,) in cursor.fetchall()}


def on_domain_events(events: list[de.DomainEvent]) -> None:
    acted_on = [event for event in events if isinstance(event, ACTED_ON)]
    if not acted_on:
        return
    drain: set[int] = set()
    configured = _configured_inboxes({event.inbox_id for event in acted_on})
    for event in acted_on:
        if event.inbox_id not in configured:
            continue
        try:
            _route(event, drain)
        except Exception:  # noqa: BLE001 - one event's failure must not stop the others of the batch
            logger.exception("routing of %s failed", event.type)
    for inbox_id in sorted(drain):
        try:
            assignment.assign_waiting(inbox_id)
        except Exception:  # noqa: BLE001
            logger.exception("assigning the waiting conversations of inbox %s failed", inbox_id)


def _route(event: de.DomainEvent, drain: set[int]) -> None:
    _automate(event)  # rules first: a rule's assignment or team hand-off wins over the inbox's auto-assignment
    match event:
        case de.ConversationCreated():
            if assignment.auto_assign_enabled(event.inbox_id):
                assignment.assign_one(event.conversation_id)
        case de.MessageReceived(reopened=True):
            if assignment.auto_assign_enabled(event.inbox_id):
                assignment.assign_one(event.conversation_id)
        case de.ConversationStatusChanged():
            if event.status == "open" and event.assignee_id is None:  # reopened by an agent
                if assignment.auto_assign_enabled(event.inbox_id):
                    assignment.assign_one(event.conversation_id)
            elif event.previous_status == "open" and event.assignee_id is not None:
                drain.add(event.inbox_id)  # the assignee has room for one more
        case de.ConversationAssigned():
            if event.previous_assignee_id is not None and event.assignee_id != event.previous_assignee_id:
                drain.add(event.inbox_id)
        case de.AgentAvailabilityChanged():
            if event.status == "online":
                drain.add(event.inbox_id)


def _automate(event: de.DomainEvent) -> None:
    match event:
        case de.ConversationCreated():
            first = rules.first_inbound_message_id(event.conversation_id)
            rules.run_rules(
                inbox_id=event.inbox_id,
                event=Event.CONVERSATION_CREATED,
                conversation_id=event.conversation_id,
                event_key=f"created:{event.conversation_id}",
                message_id=first,
            )
        case de.MessageReceived():
            sla.customer_wrote(inbox_id=event.inbox_id, conversation_id=event.conversation_id, sent_at=event.sent_at)
            hours.out_of_hours_reply(
                inbox_id=event.inbox_id,
                conversation_id=event.conversation_id,
                message_id=event.message_id,
                now=timezone.now(),
            )
            rules.run_rules(
                inbox_id=event.inbox_id,
                event=Event.MESSAGE_RECEIVED,
                conversation_id=event.conversation_id,
                event_key=f"message:{event.message_id}",
                message_id=event.message_id,
            )
        case de.MessageQueued():
            if not rules.is_automation(event.author_id):
                sla.stopped(conversation_id=event.conversation_id, answered=True)
        case de.ConversationResolved():
            sla.stopped(conversation_id=event.conversation_id, answered=False)
            csat.csat_send(
                inbox_id=event.inbox_id, conversation_id=event.conversation_id, resolved_version=event.version
            )
            if rules.is_automation(event.actor_id):
                return  # no loops: what automation did triggers no rule
            rules.run_rules(
                inbox_id=event.inbox_id,
                event=Event.CONVERSATION_RESOLVED,
                conversation_id=event.conversation_id,
                event_key=f"resolved:{event.conversation_id}:{event.version}",
            )
