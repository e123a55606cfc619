"""Comments on the business's videos as inbox conversations of kind "comment": the sandbox's signed
`comment.update` webhook (§6.4) relayed to our webhook view unchanged, the reply sent through the outbox as a
comment reply (§6.2) and seen by the sandbox, the 150-character limit declared by the backend, `kind` in the API."""

from __future__ import annotations

import pytest

from inbox.errors import ApplicationError
from inbox.models import Conversation, Message
from inbox.services import reply_queue
from inbox.tasks import send_message
from tests.tiktok_channel.direct.test_wire_sandbox import KEY, OPEN_ID, next_webhooks, relay, wire  # noqa: F401
from tests.tiktok_channel.sandbox.conftest import receiver  # noqa: F401
from tiktok_channel.direct import tokens

pytestmark = pytest.mark.django_db(transaction=True)

VIDEO = "7312345678901234567"


def connect_with_comments(server, app):
    sandbox = server.sandbox
    scopes = [
        "user.info.basic",
        "message.list.read",
        "message.list.send",
        "message.list.manage",
        "comment.list",
        "comment.list.manage",
    ]
    code = sandbox.issue_code(app=sandbox.apps[KEY], open_id=OPEN_ID, scope=scopes, redirect_uri=app.redirect_uri())
    connection = tokens.connect(app=app, code=code, user=None)
    with sandbox.lock:
        sandbox.apps[KEY].webhooks["COMMENT"] = sandbox.apps[KEY].webhooks["DIRECT_MESSAGE"]
    return connection


def comment(server, receiver, client, app, *, user="ann-uid", text="Is this in blue?", video=VIDEO):  # noqa: F811
    seen = len(receiver.requests)
    answer = server.sandbox.comment({"account": OPEN_ID, "user": user, "video_id": video, "text": text})
    (captured,) = next_webhooks(receiver, seen)
    response = relay(client, app, captured)
    assert response.status_code == 200, response.content
    return answer, response.json()


def test_a_comment_opens_a_comment_conversation_per_video_and_commenter(wire, client):  # noqa: F811
    server, app, receiver = wire  # noqa: F811
    connect_with_comments(server, app)

    answer, summary = comment(server, receiver, client, app)
    assert summary["inbound"] == 1
    conversation = Conversation.objects.get(kind=Conversation.Kind.COMMENT)
    assert conversation.subject_id == VIDEO
    assert conversation.subject["url"] == f"https://www.tiktok.com/@wire_shop/video/{VIDEO}"
    assert conversation.contact.channel_user_id == "ann-uid"
    (message,) = conversation.messages.all()
    assert (message.text, message.provider_message_id) == ("Is this in blue?", answer["comment_id"])

    comment(server, receiver, client, app, text="And in red?")  # same video, same user: same conversation
    comment(server, receiver, client, app, video="7312345678901234568")  # another video: its own conversation
    _, summary = comment(server, receiver, client, app, user="bob-uid")
    assert Conversation.objects.filter(kind=Conversation.Kind.COMMENT).count() == 3
    assert conversation.messages.count() == 2

    # The same webhook delivered again is not stored twice.
    captured = receiver.requests[-1]
    assert relay(client, app, captured).json().get("duplicate") == 1


def test_an_agent_answers_a_comment_with_a_public_reply(wire, client, agent):  # noqa: F811
    server, app, receiver = wire  # noqa: F811
    connect_with_comments(server, app)
    comment(server, receiver, client, app, text="First")
    answer, _ = comment(server, receiver, client, app, text="Price?")
    conversation = Conversation.objects.get(kind=Conversation.Kind.COMMENT)

    with pytest.raises(ApplicationError) as refused:
        reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="x" * 151)
    assert refused.value.code == "text_too_long"
    with pytest.raises(ApplicationError) as refused:
        reply_queue(conversation_id=conversation.pk, author=agent, type="image", media_url="https://x.test/a.png")
    assert refused.value.code == "invalid_type"

    reply = reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="12 EUR, DM us!")
    assert send_message.apply(args=[reply.pk]).result == "accepted"
    reply.refresh_from_db()
    (sent,) = [s for s in server.sandbox.state()["sent"] if s.get("kind") == "comment_reply"]
    assert sent["body"]["comment_id"] == answer["comment_id"]  # the user's latest comment
    assert sent["body"]["video_id"] == VIDEO
    assert sent["body"]["text"] == "12 EUR, DM us!"
    assert reply.provider_status["messageId"] == sent["message_id"]
    assert reply.status == Message.Status.ACCEPTED

    listed = server.sandbox.comment_list(
        server.sandbox.authenticate(server.sandbox.state()["tokens"][0]["token"], OPEN_ID, "comment.list"),
        {"video_id": VIDEO, "include_replies": "true"},
    )
    price = next(c for c in listed["comments"] if c["comment_id"] == answer["comment_id"])
    assert [r["text"] for r in price["reply_list"]] == ["12 EUR, DM us!"]


def test_the_api_shows_and_filters_the_kind(wire, client, agent):  # noqa: F811
    server, app, receiver = wire  # noqa: F811
    connect_with_comments(server, app)
    comment(server, receiver, client, app)
    client.force_login(agent)
    rows = client.get("/api/v1/conversations/", {"kind": "comment"}).json()["results"]
    assert [(r["kind"], r["subject"]["id"], r["reply_max_chars"]) for r in rows] == [("comment", VIDEO, 150)]
    assert rows[0]["reply_lock"] is None and rows[0]["reply_window_closes_at"] is None
    assert client.get("/api/v1/conversations/", {"kind": "message"}).json()["results"] == []
    bad = client.get("/api/v1/conversations/", {"kind": "post"})
    assert bad.status_code == 422
