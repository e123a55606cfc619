"""Private notes: in the thread, never sent or counted, allowed with the window closed; @mentions notify."""

from datetime import timedelta

import pytest
from django.utils import timezone

from inbox import live
from inbox.models import AuditLog, Conversation, Message
from inbox.selectors import quota_replies
from inbox.services import mentioned_usernames
from tests.inbox.helpers import api

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(monkeypatch):
    sent: list[int] = []
    monkeypatch.setattr("inbox.outbox.schedule_send", lambda message_id, attempt_id=None: sent.append(message_id))
    return sent


def notes_url(conversation):
    return f"/api/v1/conversations/{conversation.pk}/notes/"


def test_a_note_is_in_the_thread_but_never_sent_nor_counted_even_with_the_window_closed(
    world, enqueued, live_events, django_capture_on_commit_callbacks
):
    bob = world["bob"]
    Conversation.objects.filter(pk=bob.pk).update(last_inbound_at=timezone.now() - timedelta(hours=49))
    with django_capture_on_commit_callbacks(execute=True):
        response = api(world["agent"]).post(notes_url(bob), {"text": "VIP, be kind"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["direction"], body["type"], body["status"], body["can_quote"]) == ("note", "text", None, False)
    assert body["author"]["username"] == "agent"
    assert enqueued == []  # nothing for the provider
    note = Message.objects.get(pk=body["id"])
    assert note.provider_message_id is None
    assert (
        not quota_replies(conversation=bob, since=bob.last_inbound_at - timedelta(days=9)).filter(pk=note.pk).exists()
    )
    thread = api(world["agent"]).get(f"/api/v1/conversations/{bob.pk}/messages/").json()["results"]
    assert [m["direction"] for m in thread] == ["in", "note"]
    assert AuditLog.objects.filter(action="note.added", message=note).exists()
    assert (
        f"inbox.{bob.inbox_id}",
        {
            **live.message_created(
                conversation_id=bob.pk,
                message_id=note.pk,
                direction="note",
                version=Conversation.objects.get(pk=bob.pk).version,
            )
        },
    ) in live_events


def test_mentions_notify_members_of_the_inbox_only(world, live_events, django_capture_on_commit_callbacks):
    text = "@Colleague can you check? cc @outsider and @nobody, thanks @agent."
    with django_capture_on_commit_callbacks(execute=True):
        response = api(world["agent"]).post(notes_url(world["bob"]), {"text": text}, format="json")
    note = Message.objects.get(pk=response.json()["id"])
    assert note.payload == {"mentions": [world["colleague"].pk]}  # not the outsider, nobody, nor the author
    mentions = [(group, event) for group, event in live_events if event["type"] == "note.mentioned"]
    assert mentions == [
        (
            f"user.{world['colleague'].pk}",
            live.mentioned(conversation_id=world["bob"].pk, message_id=note.pk, author_name="agent"),
        )
    ]


def test_mentioned_event_shape():
    assert live.mentioned(conversation_id=3, message_id=9, author_name="Ann") == {
        "type": "note.mentioned",
        "conversation_id": 3,
        "message_id": 9,
        "author": "Ann",
        "version": 1,
    }


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("@ann hi", ["ann"]),
        ("mail me at ann@example.com", []),
        ("(@Ann.Lee), @bob_2!", ["ann.lee", "bob_2"]),
        ("@ann @ANN", ["ann"]),
    ],
)
def test_mentioned_usernames(text, names):
    assert mentioned_usernames(text) == names


@pytest.mark.parametrize(("payload", "status"), [({"text": "  "}, 422), ({"text": "x" * 10001}, 422), ({}, 422)])
def test_invalid_notes_are_422(world, payload, status):
    assert api(world["agent"]).post(notes_url(world["bob"]), payload, format="json").status_code == status
    assert not Message.objects.filter(direction="note").exists()


def test_outsiders_cannot_add_notes(world):
    assert api(world["outsider"]).post(notes_url(world["bob"]), {"text": "hi"}, format="json").status_code == 404


def test_limits_are_served(world, settings):
    settings.REPLY_QUOTA_PER_WINDOW = 7
    body = api(world["agent"]).get("/api/v1/limits/").json()
    assert body["reply_text_max_chars"] == 6000 and body["reply_quota_per_window"] == 7
    assert body["image_types"] == ["image/jpeg", "image/png"]


def test_the_conversation_says_why_the_composer_is_locked(world, settings):
    bob = world["bob"]
    client = api(world["agent"])
    assert client.get(f"/api/v1/conversations/{bob.pk}/").json()["reply_lock"] is None
    settings.REPLY_QUOTA_PER_WINDOW = 0
    lock = client.get(f"/api/v1/conversations/{bob.pk}/").json()["reply_lock"]
    assert lock["code"] == "reply_quota_used" and lock["message"].startswith("All 0 replies")
    settings.REPLY_QUOTA_PER_WINDOW = 10
    Conversation.objects.filter(pk=bob.pk).update(last_inbound_at=timezone.now() - timedelta(hours=49))
    body = client.get(f"/api/v1/conversations/{bob.pk}/").json()
    assert body["reply_lock"]["code"] == "reply_window_closed"
    assert body["reply_lock"]["message"] == body["reply_window_closed_reason"]
    assert "48-hour reply window closed" in body["reply_window_closed_reason"]


def test_only_the_customers_messages_can_be_quoted(world, enqueued):
    client = api(world["agent"])
    reply = client.post(f"/api/v1/conversations/{world['bob'].pk}/messages/", {"text": "hi"}, format="json").json()
    thread = client.get(f"/api/v1/conversations/{world['bob'].pk}/messages/").json()["results"]
    assert {m["id"]: m["can_quote"] for m in thread} == {thread[0]["id"]: True, reply["id"]: False}


def test_replying_to_a_resolved_conversation_reopens_it(world, enqueued):
    bob = world["bob"]
    client = api(world["agent"])
    client.post(f"/api/v1/conversations/{bob.pk}/resolve/")
    assert (
        client.post(f"/api/v1/conversations/{bob.pk}/messages/", {"text": "one more"}, format="json").status_code == 201
    )
    assert Conversation.objects.get(pk=bob.pk).status == "open"
    assert AuditLog.objects.filter(conversation=bob, action="conversation.open", actor=world["agent"]).exists()
