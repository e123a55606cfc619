"""The automation's subscriber looks only at the events it acts on: a batch of delivery reports (a live tick) costs
it no query (bench/README.md "Ticks", fifth session), and the list it filters by cannot fall behind its handlers."""

from __future__ import annotations

import inspect
import re

import pytest
from django.utils import timezone

from inbox import domain_events as de
from inbox.automation import subscriber
from inbox.automation.models import InboxRouting
from inbox.models import Inbox

pytestmark = pytest.mark.django_db


def test_the_handled_events_are_exactly_those_the_handlers_match():
    source = inspect.getsource(subscriber._route) + inspect.getsource(subscriber._automate)
    matched = {getattr(de, name) for name in re.findall(r"case de\.(\w+)\(", source)}
    assert matched == set(subscriber.ACTED_ON)


def test_a_batch_of_status_changes_costs_the_automation_no_query(django_assert_num_queries):
    inbox = Inbox.objects.create(name="Support")
    InboxRouting.objects.create(inbox=inbox)  # an inbox with automation configured: still nothing to do
    statuses = [
        de.MessageStatusChanged(
            inbox_id=inbox.pk,
            conversation_id=1,
            message_id=n,
            attempt=1,
            status="delivered",
            previous_status="accepted",
            at=timezone.now(),
        )
        for n in range(3)
    ]
    with django_assert_num_queries(0):
        subscriber.on_domain_events(statuses)
