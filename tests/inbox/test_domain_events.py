"""Domain events: one door (emit), announced after commit, each type with a schema; every type is emitted by
the services (the autouse fixture in tests/conftest.py checks each emitted event against its schema)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from inbox import domain_events as de
from inbox.automation.assignment import presence_connected
from inbox.automation.csat import csat_rate, survey_token
from inbox.automation.models import CsatSurvey, Team
from inbox.events import StatusReport
from inbox.models import Message
from inbox.services import (
    contact_update,
    content_changed,
    conversation_assign,
    conversation_set_labels,
    conversation_set_priority,
    conversation_set_status,
    conversation_set_team,
    conversation_subjects_update,
    conversations_connection_changed,
    conversion_report,
    label_create,
    message_retry,
    message_status_apply,
    messages_public_state_apply,
    note_add,
    reply_queue,
)
from tests.inbox.helpers import receive

pytestmark = pytest.mark.django_db


def test_check_refuses_a_field_of_the_wrong_type_and_unknown_types():
    good = de.ConversionUpdated(inbox_id=1, conversation_id=2, conversion_id=3, status="sent")
    de.check(good)
    with pytest.raises(ValueError, match="conversion_id"):
        de.check(de.ConversionUpdated(inbox_id=1, conversation_id=2, conversion_id="3", status="sent"))
    with pytest.raises(ValueError, match="inbox_id"):
        de.check(de.ConversionUpdated(inbox_id=True, conversation_id=2, conversion_id=3, status="sent"))

    class Stray(de.ConversationEvent):
        type = "stray"

    with pytest.raises(ValueError, match="unknown"):
        de.check(Stray(inbox_id=1, conversation_id=2))


def test_every_type_name_is_unique():
    names = [event_type.type for event_type in de.EVENT_TYPES]
    assert len(names) == len(set(names))


def test_subscribers_hear_only_committed_changes_and_one_failing_subscriber_does_not_stop_the_others(
    monkeypatch, django_capture_on_commit_callbacks
):
    heard: list = []

    def broken(events):
        raise RuntimeError("subscriber bug")

    monkeypatch.setattr(de, "_subscribers", [broken, heard.extend])
    event = de.ConversionUpdated(inbox_id=1, conversation_id=2, conversion_id=3, status="sent")
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            de.emit(event)
            try:
                with transaction.atomic():
                    de.emit(de.ConversionUpdated(inbox_id=1, conversation_id=2, conversion_id=4, status="sent"))
                    raise RuntimeError("roll this savepoint back")
            except RuntimeError:
                pass
            assert heard == []  # nothing before the commit
    assert heard == [event]  # the rolled-back change announced nothing


def test_the_services_emit_every_event_type(agent, inbox, domain_events, settings, monkeypatch):
    """One conversation's life through the services: each domain event type appears, each schema-checked."""
    monkeypatch.setattr("inbox.outbox.schedule_send", lambda message_id, attempt_id=None: None)
    monkeypatch.setattr("inbox.outbox.schedule_conversion", lambda conversion_id: None)
    conversation = receive(inbox, "ann", 1, text="Hi", provider="infobip", referral={"source": "ad", "ad_id": "7"})
    reply = reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="Hello!")
    message_status_apply(
        report=StatusReport(
            channel="tiktok",
            provider_message_id=reply.provider_message_id,
            status="failed",
            at=timezone.now(),
            error={"name": "EC_NO_SESSION"},
        )
    )
    message_retry(message_id=reply.pk, author=agent)
    conversation_assign(conversation_id=conversation.pk, assignee=agent, actor=agent)
    conversation_set_priority(conversation_id=conversation.pk, priority="high", actor=agent)
    conversation_set_status(conversation_id=conversation.pk, status="resolved", actor=agent)
    receive(inbox, "ann", 2, text="one more thing", provider="infobip")  # reopens
    receive(inbox, "ann", 3, text="answered from the app", provider="infobip", sent_outside=True)
    conversations_connection_changed(provider="infobip", endpoint_ids=["biz-1"])
    conversion_report(conversation_id=conversation.pk, author=agent, event="Contact")
    note_add(conversation_id=conversation.pk, author=agent, text="VIP, be quick")
    label_create(inbox_id=inbox.pk, name="vip", color="#ff0000", actor=agent)
    conversation_set_labels(conversation_id=conversation.pk, names=["vip"], actor=agent)
    team = Team.objects.create(inbox=inbox, name="Billing")
    conversation_set_team(conversation_id=conversation.pk, team=team, actor=None)  # routing: handed to a team
    contact_update(contact_id=conversation.contact_id, actor=agent, display_name="Ann")
    presence_connected(agent.pk)  # routing: the agent's effective availability changed (offline → online)
    survey = CsatSurvey.objects.create(
        conversation=conversation, resolved_version=1, outcome="queued", expires_at=timezone.now() + timedelta(days=1)
    )
    csat_rate(token=survey_token(survey), rating=5)  # the customer rated it (CSAT)
    content_changed(inbox_id=inbox.pk, subject="videos", connection_id=1)  # a provider's content page changed
    comments = receive(inbox, "ann", 4, text="Nice video", conversation_kind="comment", subject_id="v1")
    conversation_subjects_update(channel="tiktok", endpoint_id="biz-1", subjects={"v1": {"caption": "Launch"}})
    messages_public_state_apply(channel="tiktok", endpoint_id="biz-1", provider_ids=["ann-4"], public_state="hidden")
    assert comments.messages.get().public_state == "hidden"

    emitted = {type(event) for event in domain_events}
    # Ad reviews come from a provider's service, not the inbox's: tests/tiktok_channel/ads/test_webhooks.py.
    expected = set(de.EVENT_TYPES) - {de.AdReviewChanged}
    assert emitted == expected, expected - emitted
    received = [e for e in domain_events if isinstance(e, de.MessageReceived)]
    assert [e.reopened for e in received] == [False, True, False]
    status = next(e for e in domain_events if isinstance(e, de.MessageStatusChanged))
    assert (status.status, status.previous_status, status.attempt) == ("failed", "queued", 1)
    assert Message.objects.filter(direction="out", author=agent).get().attempt == 2
    assert timezone.now() - status.at < timedelta(minutes=1)


def test_a_message_sent_outside_the_inbox_is_outbound_and_opens_no_window(inbox, domain_events):
    conversation = receive(inbox, "bob", 1, text="Hi", minutes_ago=30)
    opened = conversation.last_inbound_at
    receive(inbox, "bob", 2, text="Sent from the phone", sent_outside=True)
    receive(inbox, "bob", 2, text="Sent from the phone", sent_outside=True)  # redelivered: stored once

    echo = Message.objects.get(provider_message_id="bob-2")
    assert (echo.direction, echo.status, echo.queued_at) == ("out", "accepted", None)
    conversation.refresh_from_db()
    assert conversation.last_inbound_at == opened
    outside = [e for e in domain_events if isinstance(e, de.MessageSentOutside)]
    assert [e.message_id for e in outside] == [echo.pk]
    assert not any(isinstance(e, de.MessageReceived) and e.message_id == echo.pk for e in domain_events)


# --- before-commit subscribers (the report roll-ups' marks join the webhook processor's batch) -----------------


@pytest.fixture
def calls(monkeypatch):
    """Two subscribers of this test's own, one before commit and one after, recording what they were given and
    whether a transaction was open then; the registries hold only these during the test."""
    from django.db import connection

    monkeypatch.setattr(de, "_before_commit", [])  # only these two: the made-up events reach no real subscriber
    monkeypatch.setattr(de, "_subscribers", [])
    seen: list[tuple[str, list[int], bool]] = []

    def before(events):
        mine = [e.conversation_id for e in events if e.inbox_id == -1]
        if mine:
            seen.append(("before", mine, connection.in_atomic_block))

    def after(events):
        mine = [e.conversation_id for e in events if e.inbox_id == -1]
        if mine:
            seen.append(("after", mine, connection.in_atomic_block))

    de.subscribe_before_commit(before)
    de.subscribe(after)
    return seen


def _event(n: int) -> de.MessageRetried:
    return de.MessageRetried(inbox_id=-1, conversation_id=n, message_id=n, attempt=1, author_id=None)


@pytest.mark.django_db(transaction=True)
def test_run_before_commit_hands_the_surviving_events_over_inside_the_transaction_once(calls):
    with transaction.atomic():
        de.emit(_event(1))
        try:
            with transaction.atomic():  # rolled back: its event is not announced to anyone
                de.emit(_event(2))
                raise RuntimeError
        except RuntimeError:
            pass
        de.emit(_event(3))
        de.run_before_commit()
        assert calls == [("before", [1, 3], True)]
    # After commit: the others get every surviving event; the before-commit subscriber is not called again.
    assert calls == [("before", [1, 3], True), ("after", [1], False), ("after", [3], False)]


@pytest.mark.django_db(transaction=True)
def test_without_run_before_commit_the_before_commit_subscriber_runs_after_commit_first(calls):
    with transaction.atomic():
        de.emit(_event(1), _event(2))
        assert calls == []
    assert calls == [("before", [1, 2], False), ("after", [1, 2], False)]


@pytest.mark.django_db(transaction=True)
def test_a_failing_before_commit_subscriber_fails_the_transaction_and_nothing_is_announced(calls):
    def broken(events):
        raise ValueError("the mark could not be written")

    de.subscribe_before_commit(broken)
    with pytest.raises(ValueError), transaction.atomic():
        de.emit(_event(1))
        de.run_before_commit()
    assert calls == [("before", [1], True)]  # the first before-commit subscriber ran; nothing after commit
