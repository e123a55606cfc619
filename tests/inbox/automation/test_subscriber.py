"""The automation subscriber's fixed cost per batch: nothing for events it never acts on, one statement otherwise."""

from __future__ import annotations

import inspect
import re
from datetime import UTC, datetime

import pytest

from inbox import domain_events as de
from inbox.automation import subscriber
from inbox.automation.models import AutomationRule, InboxRouting
from inbox.models import Inbox

pytestmark = pytest.mark.django_db


def received(inbox_id: int, n: int) -> de.MessageReceived:
    return de.MessageReceived(
        inbox_id=inbox_id,
        conversation_id=n,
        message_id=n,
        message_type="text",
        sent_at=datetime(2026, 1, 1, tzinfo=UTC),
        conversation_version=1,
        reopened=False,
    )


def status(inbox_id: int, n: int) -> de.MessageStatusChanged:
    return de.MessageStatusChanged(
        inbox_id=inbox_id,
        conversation_id=n,
        message_id=n,
        attempt=1,
        status="delivered",
        previous_status="accepted",
        at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_every_event_type_routing_or_rules_match_is_acted_on():
    source = inspect.getsource(subscriber)
    matched = set(re.findall(r"case de\.(\w+)\(", source))
    assert matched, "the subscriber's match statements were not found"
    assert matched == {kind.__name__ for kind in subscriber.ACTED_ON}


def test_a_batch_of_delivery_and_seen_reports_costs_no_query(inbox, django_assert_num_queries):
    with django_assert_num_queries(0):
        subscriber.on_domain_events([status(inbox.pk, n) for n in range(50)])


def test_a_batch_of_an_inbox_without_automation_costs_one_query(inbox, django_assert_num_queries):
    other = Inbox.objects.create(name="Other")
    from django.db import connection

    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 2):  # SQLite: no arrays
        subscriber.on_domain_events([received(inbox.pk if n % 2 else other.pk, n) for n in range(50)])


def test_configured_inboxes_are_those_with_routing_or_an_active_rule(inbox):
    routed, ruled, paused = (Inbox.objects.create(name=name) for name in ("Routed", "Ruled", "Paused"))
    InboxRouting.objects.create(inbox=routed)
    AutomationRule.objects.create(inbox=ruled, name="r", event=AutomationRule.Event.MESSAGE_RECEIVED)
    AutomationRule.objects.create(inbox=paused, name="p", event=AutomationRule.Event.MESSAGE_RECEIVED, active=False)

    found = subscriber._configured_inboxes({inbox.pk, routed.pk, ruled.pk, paused.pk})

    assert found == {routed.pk, ruled.pk}
