"""Snooze: pending until a time; the beat task reopens it when due; a customer's message reopens it at once."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from inbox.models import AuditLog, Conversation
from inbox.services import conversations_wake_due
from inbox.tasks import wake_snoozed_conversations
from tests.inbox.helpers import api, receive

pytestmark = pytest.mark.django_db


def snooze(world, until):
    return api(world["agent"]).post(
        f"/api/v1/conversations/{world['bob'].pk}/snooze/", {"until": until.isoformat()}, format="json"
    )


def test_a_snoozed_conversation_is_pending_with_its_time(world):
    until = timezone.now() + timedelta(hours=3)
    response = snooze(world, until)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "pending" and body["snoozed_until"] == until.isoformat().replace("+00:00", "Z")
    pending = api(world["agent"]).get("/api/v1/conversations/?status=pending").json()["results"]
    assert [c["id"] for c in pending] == [world["bob"].pk]
    assert AuditLog.objects.filter(action="conversation.snoozed", actor=world["agent"]).exists()


@pytest.mark.parametrize("offset", [timedelta(minutes=-1), timedelta(days=91)])
def test_snoozing_into_the_past_or_too_far_is_422(world, offset):
    response = snooze(world, timezone.now() + offset)
    assert response.status_code == 422 and "until" in response.json()["fields"]
    assert Conversation.objects.get(pk=world["bob"].pk).status == "open"


def test_due_conversations_wake_up_and_others_stay_asleep(world, live_events, django_capture_on_commit_callbacks):
    now = timezone.now()
    snooze(world, now + timedelta(hours=1))
    alice = world["alice"]
    api(world["agent"]).post(
        f"/api/v1/conversations/{alice.pk}/snooze/", {"until": (now + timedelta(hours=5)).isoformat()}, format="json"
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert conversations_wake_due(now=now + timedelta(minutes=59)) == []
        assert conversations_wake_due(now=now + timedelta(hours=2)) == [world["bob"].pk]
    bob = Conversation.objects.get(pk=world["bob"].pk)
    assert (bob.status, bob.snoozed_until) == ("open", None)
    assert Conversation.objects.get(pk=alice.pk).status == "pending"
    woken = AuditLog.objects.get(action="conversation.woken")
    assert woken.actor is None and woken.actor_kind == "system"
    assert any(event["type"] == "conversation.updated" and event["status"] == "open" for _, event in live_events)


def test_the_beat_task_wakes_what_is_due(world):
    snooze(world, timezone.now() + timedelta(minutes=5))
    Conversation.objects.filter(pk=world["bob"].pk).update(snoozed_until=timezone.now() - timedelta(seconds=1))
    assert wake_snoozed_conversations() == 1
    assert Conversation.objects.get(pk=world["bob"].pk).status == "open"
    task = settings.CELERY_BEAT_SCHEDULE["inbox-wake-snoozed-conversations"]
    assert task["task"] == "inbox.tasks.wake_snoozed_conversations" and task["schedule"] <= 60


def test_a_message_from_the_customer_reopens_a_snoozed_conversation(world):
    snooze(world, timezone.now() + timedelta(days=2))
    receive(world["support"], "bob", 2, text="Any news?")
    assert Conversation.objects.get(pk=world["bob"].pk).status == "open"
    reopened = AuditLog.objects.get(action="conversation.reopened", conversation=world["bob"])
    assert (reopened.before, reopened.after) == ({"status": "pending"}, {"status": "open"})
    assert api(world["agent"]).get(f"/api/v1/conversations/{world['bob'].pk}/").json()["snoozed_until"] is None


def test_reopening_or_resolving_clears_the_snooze(world):
    snooze(world, timezone.now() + timedelta(days=2))
    api(world["agent"]).post(f"/api/v1/conversations/{world['bob'].pk}/reopen/")
    bob = Conversation.objects.get(pk=world["bob"].pk)
    assert (bob.status, bob.snoozed_until) == ("open", None)
