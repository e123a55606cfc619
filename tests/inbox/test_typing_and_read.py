"""Typing indicators and read receipts from the inbox side: when the channel is asked to send them, through
`inbox.channels`, and that they never get in the agent's way."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from inbox.models import Conversation
from inbox.services import conversation_mark_read, typing_throttle_key
from tests.inbox.helpers import api, receive

pytestmark = pytest.mark.django_db


@pytest.fixture
def events(monkeypatch, world):
    """The events the inbox asked the channel for, as (conversation id, kind); throttles reset."""
    asked: list[tuple[int, str]] = []
    monkeypatch.setattr(
        "inbox.outbox.schedule_event", lambda conversation_id, kind: asked.append((conversation_id, kind))
    )
    cache.delete_many([typing_throttle_key(pk) for pk in Conversation.objects.values_list("pk", flat=True)])
    return asked


class TestMarkAsRead:
    def test_unread_inbound_messages_ask_for_a_read_receipt_on_commit(
        self, world, events, django_capture_on_commit_callbacks
    ):
        bob = world["bob"]
        with django_capture_on_commit_callbacks() as callbacks:
            conversation_mark_read(conversation_id=bob.pk, actor=world["agent"])
            assert events == []  # not before the commit
        for callback in callbacks:
            callback()
        assert events == [(bob.pk, "read")]
        assert Conversation.objects.get(pk=bob.pk).agent_last_seen_at is not None

    def test_nothing_new_since_the_last_read_sends_nothing(self, world, events, django_capture_on_commit_callbacks):
        bob = world["bob"]
        with django_capture_on_commit_callbacks(execute=True):
            conversation_mark_read(conversation_id=bob.pk, actor=world["agent"])
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            conversation_mark_read(conversation_id=bob.pk, actor=world["colleague"])
        assert callbacks == []
        assert events == [(bob.pk, "read")]

    def test_a_new_inbound_message_makes_it_unread_again(self, world, events, django_capture_on_commit_callbacks):
        bob = world["bob"]
        with django_capture_on_commit_callbacks(execute=True):
            conversation_mark_read(conversation_id=bob.pk, actor=world["agent"])
            receive(world["support"], "bob", 2, text="Hello?", minutes_ago=-1)
            conversation_mark_read(conversation_id=bob.pk, actor=world["agent"])
        assert events == [(bob.pk, "read"), (bob.pk, "read")]

    def test_conversation_without_inbound_messages_sends_nothing(
        self, world, events, django_capture_on_commit_callbacks
    ):
        Conversation.objects.filter(pk=world["bob"].pk).update(last_inbound_at=None)
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            conversation_mark_read(conversation_id=world["bob"].pk, actor=world["agent"])
        assert callbacks == [] and events == []

    def test_rolled_back_read_sends_nothing(self, world, events, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            with pytest.raises(RuntimeError), transaction.atomic():
                conversation_mark_read(conversation_id=world["bob"].pk, actor=world["agent"])
                raise RuntimeError("the request failed later")
        assert callbacks == [] and events == []

    def test_read_endpoint_asks_once(self, world, events, django_capture_on_commit_callbacks):
        url = f"/api/v1/conversations/{world['bob'].pk}/read/"
        with django_capture_on_commit_callbacks(execute=True):
            assert api(world["agent"]).post(url).status_code == 200
            assert api(world["agent"]).post(url).status_code == 200
        assert events == [(world["bob"].pk, "read")]

    def test_a_failing_channel_does_not_fail_the_read(self, world, monkeypatch, django_capture_on_commit_callbacks):
        def broken(conversation_id, kind):
            raise ConnectionError("broker down")

        monkeypatch.setattr("inbox.outbox.schedule_event", broken)
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = api(world["agent"]).post(f"/api/v1/conversations/{world['bob'].pk}/read/")
        assert response.status_code == 200
        assert len(callbacks) == 1  # the hook ran, raised inside, and was swallowed
        assert response.json()["unread_count"] == 0


class TestTyping:
    def url(self, world, name="bob"):
        return f"/api/v1/conversations/{world[name].pk}/typing/"

    def test_throttled_to_one_indicator_per_period(self, world, events):
        client = api(world["agent"])
        first, second = client.post(self.url(world)), client.post(self.url(world))
        assert (first.status_code, first.json()) == (202, {"queued": True})
        assert (second.status_code, second.json()) == (202, {"queued": False})
        assert events == [(world["bob"].pk, "typing")]

    def test_throttle_is_per_conversation_and_expires(self, world, events):
        client = api(world["agent"])
        client.post(self.url(world))
        assert client.post(self.url(world, "alice")).json() == {"queued": True}
        cache.delete(typing_throttle_key(world["bob"].pk))  # the period passed
        assert client.post(self.url(world)).json() == {"queued": True}
        assert events == [(world["bob"].pk, "typing"), (world["alice"].pk, "typing"), (world["bob"].pk, "typing")]

    def test_throttle_lasts_a_few_seconds(self, world, events):
        api(world["agent"]).post(self.url(world))
        key = cache.make_and_validate_key(typing_throttle_key(world["bob"].pk))
        assert 0 < cache._cache.get_client(key).ttl(key) <= 5  # django's RedisCache has no ttl()

    def test_refused_when_the_reply_window_is_closed(self, world, events):
        Conversation.objects.filter(pk=world["bob"].pk).update(last_inbound_at=timezone.now() - timedelta(hours=49))
        response = api(world["agent"]).post(self.url(world))
        assert response.status_code == 409
        assert response.json()["code"] == "reply_window_closed"
        assert events == []

    def test_a_failing_channel_does_not_fail_the_request(self, world, monkeypatch, events):
        def broken(conversation_id, kind):
            raise ConnectionError("broker down")

        monkeypatch.setattr("inbox.outbox.schedule_event", broken)
        response = api(world["agent"]).post(self.url(world))
        assert (response.status_code, response.json()) == (202, {"queued": True})

    def test_a_cache_outage_means_no_indicator_not_an_error(self, world, monkeypatch, events):
        def down(*args, **kwargs):
            raise ConnectionError("redis down")

        monkeypatch.setattr(cache, "add", down)
        response = api(world["agent"]).post(self.url(world))
        assert (response.status_code, response.json()) == (202, {"queued": False})
        assert events == []


def test_outsider_gets_404(world, events):
    response = api(world["outsider"]).post(f"/api/v1/conversations/{world['bob'].pk}/typing/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert events == []


def test_anonymous_is_refused(world, events):
    response = APIClient().post(f"/api/v1/conversations/{world['bob'].pk}/typing/")
    assert response.status_code in (401, 403)
    assert response.json()["code"] == "not_authenticated"
    assert events == []
