"""First-response SLA: the list shows when an agent's answer is due, sorts by it, and an agent's reply stops it."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from inbox.automation import rules
from inbox.automation.models import InboxRouting
from inbox.services import reply_queue
from tests.inbox.automation.helpers import user_writes
from tests.inbox.helpers import api

pytestmark = pytest.mark.django_db


def due_of(agent, conversation_id: int) -> datetime | None:
    value = api(agent).get(f"/api/v1/conversations/{conversation_id}/").json()["first_response_due_at"]
    return datetime.fromisoformat(value) if value else None


def test_due_from_the_oldest_unanswered_message_stopped_by_an_agent_reply(
    client, account, inbox, agent, django_capture_on_commit_callbacks
):
    InboxRouting.objects.create(inbox=inbox, first_response_minutes=30)
    first_at = (timezone.now() - timedelta(minutes=10)).replace(microsecond=0)
    with django_capture_on_commit_callbacks(execute=True):
        conversation = user_writes(client, account, "u1", "hello?", at=first_at)
        user_writes(client, account, "u1", "anyone?")  # the older message's clock keeps running
    assert due_of(agent, conversation.pk) == first_at + timedelta(minutes=30)

    with django_capture_on_commit_callbacks(execute=True):
        reply_queue(conversation_id=conversation.pk, author=rules.automation_user(), type="text", text="Auto")
    assert due_of(agent, conversation.pk) is not None  # an automatic message is not an agent's answer
    with django_capture_on_commit_callbacks(execute=True):
        response = api(agent).post(
            f"/api/v1/conversations/{conversation.pk}/messages/", {"text": "Here!"}, format="json"
        )
    assert response.status_code == 201
    assert due_of(agent, conversation.pk) is None

    with django_capture_on_commit_callbacks(execute=True):
        user_writes(client, account, "u1", "one more thing")
    due = due_of(agent, conversation.pk)
    assert due is not None and timedelta(minutes=29) < due - timezone.now() <= timedelta(minutes=30)
    with django_capture_on_commit_callbacks(execute=True):
        api(agent).post(f"/api/v1/conversations/{conversation.pk}/resolve/")
    assert due_of(agent, conversation.pk) is None  # resolved: nothing is due


def test_the_list_sorts_by_sla_overdue_first_and_nothing_due_last(
    client, account, inbox, agent, django_capture_on_commit_callbacks
):
    InboxRouting.objects.create(inbox=inbox, first_response_minutes=15)
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        soon = user_writes(client, account, "soon", "hi", at=now - timedelta(minutes=10))
        overdue = user_writes(client, account, "late", "hi", at=now - timedelta(minutes=40))
        fresh = user_writes(client, account, "fresh", "hi", at=now - timedelta(minutes=1))
        answered = user_writes(client, account, "done", "hi", at=now - timedelta(minutes=50))
        api(agent).post(f"/api/v1/conversations/{answered.pk}/messages/", {"text": "Hello"}, format="json")
    rows = api(agent).get("/api/v1/conversations/?ordering=sla&status=open").json()["results"]
    assert [row["id"] for row in rows] == [overdue.pk, soon.pk, fresh.pk, answered.pk]
    assert rows[-1]["first_response_due_at"] is None
    assert api(agent).get("/api/v1/conversations/?ordering=nope").status_code in (400, 422)
