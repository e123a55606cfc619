"""Hide, unhide and delete comments from the inbox, against the TikTok sandbox over HTTP: the API marks the
request pending (202), the core's task asks the backend, the sandbox performs it and reports it by webhook, the
thread's message follows (and is pushed live); TikTok's refusal is kept with its reason; a DM is refused 4xx."""

from __future__ import annotations

import pytest

from inbox import domain_events
from inbox.models import AuditLog, Conversation, Message
from inbox.services import reply_queue
from inbox.tasks import perform_message_action, send_message
from tests.tiktok_channel.direct.test_comments import comment, connect_with_comments
from tests.tiktok_channel.direct.test_wire_sandbox import OPEN_ID, next_webhooks, relay, wire  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def published(monkeypatch):
    """The domain events of MessagePublicStateChanged emitted (captured at the one door)."""
    seen: list[domain_events.DomainEvent] = []
    original = domain_events.emit

    def capture(*events):
        seen.extend(e for e in events if isinstance(e, domain_events.MessagePublicStateChanged))
        original(*events)

    monkeypatch.setattr(domain_events, "emit", capture)
    return seen


def test_an_agent_hides_and_unhides_a_comment_through_the_api(wire, client, agent):  # noqa: F811
    server, app, receiver = wire  # noqa: F811
    connect_with_comments(server, app)
    answer, _ = comment(server, receiver, client, app, text="Rude words")
    message = Message.objects.get(provider_message_id=answer["comment_id"])
    client.force_login(agent)
    shown = client.get(f"/api/v1/messages/{message.pk}/").json()
    assert (shown["public_state"], shown["actions"], shown["action"]) == ("visible", ["hide"], None)

    answered = client.post(f"/api/v1/messages/{message.pk}/hide/")
    assert answered.status_code == 202, answered.content
    assert answered.json()["action"] == {"action": "hide", "state": "pending", "error": None}
    assert answered.json()["actions"] == []  # nothing else while one is under way
    again = client.post(f"/api/v1/messages/{message.pk}/hide/")
    assert again.status_code == 409 and again.json()["code"] == "action_pending"

    seen = len(receiver.requests)
    assert perform_message_action.apply(args=[message.pk, "hide"]).result == "done"
    listed = server.sandbox.comments[answer["comment_id"]]
    assert listed["status"] == "HIDDEN"  # the sandbox really hid it
    shown = client.get(f"/api/v1/messages/{message.pk}/").json()
    assert (shown["public_state"], shown["actions"], shown["action"]["state"]) == ("hidden", ["unhide"], "done")
    # TikTok's own report of the change then changes nothing more.
    (captured,) = next_webhooks(receiver, seen)
    assert relay(client, app, captured).json()["comment_state_unchanged"] == 1

    assert client.post(f"/api/v1/messages/{message.pk}/unhide/").status_code == 202
    assert perform_message_action.apply(args=[message.pk, "unhide"]).result == "done"
    assert server.sandbox.comments[answer["comment_id"]]["status"] == "PUBLIC"
    message.refresh_from_db()
    assert message.public_state == "visible"
    actions = list(AuditLog.objects.filter(message=message).values_list("action", flat=True).order_by("pk"))
    assert actions == ["message.hide_requested", "message.hide_done", "message.unhide_requested", "message.unhide_done"]


def test_the_change_is_pushed_live(wire, client, agent, published):  # noqa: F811
    server, app, receiver = wire  # noqa: F811
    connect_with_comments(server, app)
    answer, _ = comment(server, receiver, client, app)
    message = Message.objects.get(provider_message_id=answer["comment_id"])
    client.force_login(agent)
    client.post(f"/api/v1/messages/{message.pk}/hide/")
    perform_message_action.apply(args=[message.pk, "hide"])
    assert [(e.action, e.action_state, e.public_state) for e in published] == [
        ("hide", "pending", "visible"),
        ("hide", "done", "hidden"),
    ]
    from inbox.live import events_for

    (live,) = events_for(published[-1])
    assert live == {
        "type": "message.updated",
        "conversation_id": message.conversation_id,
        "message_id": message.pk,
        "public_state": "hidden",
        "action_state": "done",
    }


def test_tiktok_refusing_is_shown_with_its_reason(wire, client, agent):  # noqa: F811
    server, app, receiver = wire  # noqa: F811
    connect_with_comments(server, app)
    answer, _ = comment(server, receiver, client, app)
    message = Message.objects.get(provider_message_id=answer["comment_id"])
    server.sandbox.behaviour.update(
        {"refuse_comment_action_next": 1, "refuse_comment_action_reason": "Comment is under review"}
    )
    client.force_login(agent)
    client.post(f"/api/v1/messages/{message.pk}/hide/")
    assert perform_message_action.apply(args=[message.pk, "hide"]).result == "failed"
    shown = client.get(f"/api/v1/messages/{message.pk}/").json()
    assert shown["public_state"] == "visible"
    assert shown["action"]["state"] == "failed"
    assert "Comment is under review" in shown["action"]["error"]["description"]
    assert shown["actions"] == ["hide"]  # the agent may try again
    assert server.sandbox.comments[answer["comment_id"]]["status"] == "PUBLIC"


def test_a_throttled_action_is_retried_not_failed(wire, client, agent, settings):  # noqa: F811
    server, app, receiver = wire  # noqa: F811
    connect_with_comments(server, app)
    answer, _ = comment(server, receiver, client, app)
    message = Message.objects.get(provider_message_id=answer["comment_id"])
    client.force_login(agent)
    client.post(f"/api/v1/messages/{message.pk}/hide/")
    server.sandbox.behaviour.update({"throttle_next": 1})
    # Celery runs an eager task's retry at once: the throttled call, then the retry that hides it.
    assert perform_message_action.apply(args=[message.pk, "hide"]).result == "done"
    assert server.sandbox.counters["fault_throttled"] == 1
    assert server.sandbox.comments[answer["comment_id"]]["status"] == "HIDDEN"

    # Throttled beyond the budget: failed, with the reason.
    client.post(f"/api/v1/messages/{message.pk}/unhide/")
    settings.OUTBOX_SEND_MAX_TRIES = 1
    server.sandbox.behaviour.update({"throttle_next": 1})
    assert perform_message_action.apply(args=[message.pk, "unhide"]).result == "failed"
    message.refresh_from_db()
    assert message.action["state"] == "failed" and message.public_state == "hidden"


def test_our_own_reply_can_be_deleted_a_customers_comment_cannot(wire, client, agent):  # noqa: F811
    server, app, receiver = wire  # noqa: F811
    connect_with_comments(server, app)
    answer, _ = comment(server, receiver, client, app)
    conversation = Conversation.objects.get(kind=Conversation.Kind.COMMENT)
    reply = reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="Sorry, wrong video!")
    assert send_message.apply(args=[reply.pk]).result == "accepted"
    client.force_login(agent)
    theirs = Message.objects.get(provider_message_id=answer["comment_id"])
    refused = client.post(f"/api/v1/messages/{theirs.pk}/delete/")
    assert refused.status_code == 409 and refused.json()["code"] == "action_not_allowed"

    assert client.get(f"/api/v1/messages/{reply.pk}/").json()["actions"] == ["delete"]
    seen = len(receiver.requests)
    assert client.post(f"/api/v1/messages/{reply.pk}/delete/").status_code == 202
    assert perform_message_action.apply(args=[reply.pk, "delete"]).result == "done"
    reply.refresh_from_db()
    tiktok_id = reply.provider_status["messageId"]
    assert server.sandbox.comments[tiktok_id]["status"] == "DELETED"
    shown = client.get(f"/api/v1/messages/{reply.pk}/").json()
    assert (shown["public_state"], shown["actions"]) == ("deleted", [])
    # TikTok's delete webhook for it changes nothing more; a deleted message takes no action.
    (captured,) = next_webhooks(receiver, seen)
    assert relay(client, app, captured).json()["comment_state_unchanged"] == 1
    assert client.post(f"/api/v1/messages/{reply.pk}/hide/").status_code in (409, 422)


def test_a_direct_message_cannot_be_hidden_and_bad_input_is_4xx(wire, client, agent):  # noqa: F811
    server, app, receiver = wire  # noqa: F811
    connect_with_comments(server, app)
    seen = len(receiver.requests)
    server.sandbox.inbound({"account": OPEN_ID, "user": "dm-user", "text": "hello"})
    relay(client, app, next_webhooks(receiver, seen)[0])
    dm = Message.objects.get(conversation__kind=Conversation.Kind.MESSAGE)
    client.force_login(agent)
    assert client.get(f"/api/v1/messages/{dm.pk}/").json()["actions"] == []
    refused = client.post(f"/api/v1/messages/{dm.pk}/hide/")
    assert refused.status_code == 422 and refused.json()["code"] == "action_unsupported"
    assert "only public comments" in refused.json()["message"]
    assert client.post("/api/v1/messages/999999/hide/").status_code == 404
    assert client.post(f"/api/v1/messages/{dm.pk}/shout/").status_code == 404


def test_an_outsider_cannot_hide(wire, client, django_user_model):  # noqa: F811
    server, app, receiver = wire  # noqa: F811
    connect_with_comments(server, app)
    answer, _ = comment(server, receiver, client, app)
    message = Message.objects.get(provider_message_id=answer["comment_id"])
    outsider = django_user_model.objects.create_user("outsider", password="x-pass-123")
    client.force_login(outsider)
    assert client.post(f"/api/v1/messages/{message.pk}/hide/").status_code == 404
    message.refresh_from_db()
    assert message.action == {}
