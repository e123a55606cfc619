"""Business hours (time zone, weekly schedule, holidays) and the out-of-hours auto-reply through the real webhook."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from inbox.automation import hours, rules
from inbox.automation.models import AutomationRun, InboxRouting, OutOfHoursReply
from inbox.errors import ApplicationError
from inbox.models import Conversation, Message
from tests.inbox.automation.helpers import user_writes

pytestmark = pytest.mark.django_db

OFFICE = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


def berlin(inbox, **fields) -> InboxRouting:
    values = {
        "business_hours_enabled": True,
        "time_zone": "Europe/Berlin",
        "weekly_hours": OFFICE,
        "holidays": ["2026-12-25"],
        "out_of_hours_reply": "We are closed now and answer from 9:00.",
    }
    values.update(fields)
    return InboxRouting.objects.create(inbox=inbox, **values)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_open_closed_by_local_time_weekday_and_holiday(inbox):
    routing = berlin(inbox)
    assert hours.is_open(routing, utc(2026, 12, 1, 8, 30))  # Tuesday 09:30 in Berlin (UTC+1)
    assert not hours.is_open(routing, utc(2026, 12, 1, 7, 30))  # 08:30 in Berlin
    assert not hours.is_open(routing, utc(2026, 12, 1, 16, 0))  # 17:00: the end is exclusive
    assert not hours.is_open(routing, utc(2026, 12, 5, 10, 0))  # Saturday
    assert not hours.is_open(routing, utc(2026, 12, 25, 10, 0))  # a Friday, but a holiday
    assert hours.is_open(routing, utc(2026, 7, 1, 7, 30))  # 09:30 in summer time (UTC+2)
    routing.business_hours_enabled = False
    assert hours.is_open(routing, utc(2026, 12, 5, 10, 0))  # off: always open


def test_the_closed_period_starts_at_the_last_closing_time(inbox):
    routing = berlin(inbox)
    friday_close = utc(2026, 11, 27, 16, 0)  # Friday 17:00 in Berlin
    assert hours.closed_period_start(routing, utc(2026, 11, 27, 20, 0)) == friday_close
    assert hours.closed_period_start(routing, utc(2026, 11, 29, 12, 0)) == friday_close  # Sunday
    assert hours.closed_period_start(routing, utc(2026, 11, 30, 6, 0)) == friday_close  # Monday 07:00
    assert hours.closed_period_start(routing, utc(2026, 11, 30, 20, 0)) == utc(2026, 11, 30, 16, 0)


def test_bad_schedules_are_refused_with_the_field():
    with pytest.raises(ApplicationError) as error:
        hours.clean_hours(time_zone="Mars/Olympus", weekly_hours={}, holidays=[])
    assert "time_zone" in error.value.fields
    with pytest.raises(ApplicationError) as error:
        hours.clean_hours(time_zone="UTC", weekly_hours={"mon": [["17:00", "09:00"]]}, holidays=[])
    assert "weekly_hours" in error.value.fields
    with pytest.raises(ApplicationError) as error:
        hours.clean_hours(time_zone="UTC", weekly_hours={"funday": []}, holidays=[])
    assert "weekly_hours" in error.value.fields
    with pytest.raises(ApplicationError) as error:
        hours.clean_hours(time_zone="UTC", weekly_hours={}, holidays=["25.12.2026"])
    assert "holidays" in error.value.fields


def test_out_of_hours_reply_once_per_conversation_per_closed_period(
    client, account, inbox, django_capture_on_commit_callbacks
):
    berlin(inbox)
    # Tuesday 20:00 in Berlin: closed. The clock keeps ticking from there.
    with time_machine.travel(utc(2026, 12, 1, 19, 0), tick=True):
        with django_capture_on_commit_callbacks(execute=True):
            conversation = user_writes(client, account, "u1", "Hello?")
            user_writes(client, account, "u1", "Anyone there?")
        replies = Message.objects.filter(conversation=conversation, direction="out")
        assert [m.text for m in replies] == ["We are closed now and answer from 9:00."]
        assert replies.get().author.username == "automation"
    # Wednesday 10:00: open, no reply.
    with time_machine.travel(utc(2026, 12, 2, 9, 0), tick=True):
        with django_capture_on_commit_callbacks(execute=True):
            user_writes(client, account, "u1", "Good morning")
    assert Message.objects.filter(conversation=conversation, direction="out").count() == 1
    # Wednesday 18:30: a new closed period, a new reply.
    with time_machine.travel(utc(2026, 12, 2, 17, 30), tick=True):
        with django_capture_on_commit_callbacks(execute=True):
            user_writes(client, account, "u1", "Still there?")
    assert Message.objects.filter(conversation=conversation, direction="out").count() == 2
    assert list(OutOfHoursReply.objects.values_list("outcome", flat=True)) == ["queued", "queued"]


def test_out_of_hours_reply_is_recorded_not_sent_when_the_window_is_closed(
    client, account, inbox, settings, django_capture_on_commit_callbacks
):
    berlin(inbox, weekly_hours={})  # never open
    with django_capture_on_commit_callbacks(execute=True):
        late = datetime.now(UTC) - timedelta(hours=settings.REPLY_WINDOW_HOURS + 2)
        conversation = user_writes(client, account, "u1", "sent long ago, delivered now", at=late)
    assert not Message.objects.filter(conversation=conversation, direction="out").exists()
    record = OutOfHoursReply.objects.get(conversation=conversation)
    assert record.outcome == "not_sent" and "reply_window_closed" in record.detail


def test_business_hours_condition_of_a_rule(client, account, inbox, django_capture_on_commit_callbacks):
    berlin(inbox, weekly_hours={}, out_of_hours_reply="")  # always closed, no auto-reply
    closed = rules.rule_create(
        inbox_id=inbox.pk,
        name="after hours",
        actor=None,
        event="message_received",
        no_reply_minutes=None,
        conditions=[{"attribute": "business_hours", "operator": "equals", "value": "closed"}],
        actions=[{"type": "set_priority", "priority": "low"}],
    )
    opened = rules.rule_create(
        inbox_id=inbox.pk,
        name="in hours",
        actor=None,
        event="message_received",
        no_reply_minutes=None,
        conditions=[{"attribute": "business_hours", "operator": "equals", "value": "open"}],
        actions=[{"type": "set_priority", "priority": "high"}],
    )
    with django_capture_on_commit_callbacks(execute=True):
        conversation = user_writes(client, account, "u1", "hi")
    assert Conversation.objects.get(pk=conversation.pk).priority == "low"
    assert AutomationRun.objects.filter(rule=closed).count() == 1
    assert not AutomationRun.objects.filter(rule=opened).exists()
    assert not Message.objects.filter(conversation=conversation, direction="out").exists()  # no reply text set
