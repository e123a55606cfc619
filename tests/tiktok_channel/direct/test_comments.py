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
from tests.tiktok_channel.sandbox_helpers import wait_until
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


def test_register_webhook_for_comments(wire):  # noqa: F811
    from django.core.management import call_command

    server, app, _ = wire  # noqa: F811
    server.sandbox.apps[KEY].webhooks.clear()
    call_command("tiktok_app", "register-webhook", "--id", str(app.pk), "--event-type", "COMMENT")
    assert server.sandbox.apps[KEY].webhooks == {"COMMENT": app.webhook_url}


def test_a_comment_without_a_comment_webhook_is_refused_by_the_sandbox(wire):  # noqa: F811
    server, app, _ = wire  # noqa: F811
    with pytest.raises(ValueError, match="COMMENT webhook"):
        server.sandbox.comment({"account": OPEN_ID, "user": "u", "video_id": VIDEO, "text": "hi"})
    with pytest.raises(ValueError, match="video_id"):
        server.sandbox.comment({"account": OPEN_ID, "user": "u", "video_id": "abc", "text": "hi"})


def post_signed(client, app, envelope: dict):
    import json
    import time

    from tiktok_channel.direct.webhooks import sign

    body = json.dumps(envelope).encode()
    return client.post(
        f"/webhooks/tiktok/{app.webhook_path_token}/",
        data=body,
        content_type="application/json",
        HTTP_TIKTOK_SIGNATURE=sign(app.client_secret, body, int(time.time())),
    )


def comment_envelope(**content) -> dict:
    import json

    base = {
        "comment_id": 7312345678901234999,
        "video_id": int(VIDEO),
        "parent_comment_id": 0,
        "comment_type": "comment",
        "comment_action": "insert",
        "timestamp": 1700000000000,
        "unique_identifier": "ann-uid",
        "text": "hello",
    }
    return {
        "client_key": KEY,
        "event": "comment.update",
        "create_time": 1700000000,
        "user_openid": OPEN_ID,
        "content": json.dumps({**base, **content}),
    }


def test_comment_webhooks_unknown_actions_are_kept_not_applied_and_bad_ones_refused(wire, client):  # noqa: F811
    server, app, _ = wire  # noqa: F811
    connect_with_comments(server, app)
    friends = post_signed(client, app, comment_envelope(comment_action="set_to_friends_only"))
    assert friends.status_code == 200 and friends.json()["comment_set_to_friends_only_not_applied"] == 1
    hidden = post_signed(client, app, comment_envelope(comment_action="set_to_hidden"))  # a comment we never had
    assert hidden.status_code == 200 and hidden.json()["comment_state_unchanged"] == 1
    assert not Conversation.objects.exists()

    # 64-bit ids arrive as JSON numbers and are kept exact, as strings.
    assert post_signed(client, app, comment_envelope()).json()["inbound"] == 1
    message = Message.objects.get()
    assert message.provider_message_id == "7312345678901234999"
    assert message.conversation.subject_id == VIDEO

    # The business's own comment (e.g. our reply, as TikTok reports it back) is not a customer's message.
    own = post_signed(client, app, comment_envelope(comment_id=1, unique_identifier=OPEN_ID))
    assert own.json()["own_comment"] == 1

    for broken, reason in (
        (comment_envelope(video_id=None), "content.video_id is required"),
        (comment_envelope(unique_identifier=None), "content.unique_identifier is required"),
        (comment_envelope(comment_action=3), "content.comment_action must be a string"),
        (comment_envelope(text=["x"]), "content.text must be a string"),
    ):
        refused = post_signed(client, app, broken)
        assert refused.status_code == 400 and refused.json()["message"] == reason
    assert Message.objects.count() == 1


def test_a_dm_read_does_not_mark_comment_replies_seen(wire, client, agent):  # noqa: F811
    server, app, receiver = wire  # noqa: F811
    connect_with_comments(server, app)
    comment(server, receiver, client, app, user="ann-uid")
    conversation = Conversation.objects.get(kind=Conversation.Kind.COMMENT)
    reply = reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="Thanks!")
    assert send_message.apply(args=[reply.pk]).result == "accepted"

    # The same person writes a DM, and reads the business's DMs: the public comment reply stays accepted.
    seen = len(receiver.requests)
    dm = server.sandbox.inbound({"account": OPEN_ID, "user": "ann-uid", "text": "hi"})
    relay(client, app, next_webhooks(receiver, seen)[0])
    dm_conversation = Conversation.objects.get(kind=Conversation.Kind.MESSAGE)
    assert dm_conversation.contact_id == conversation.contact_id  # one contact, two conversations
    dm_reply = reply_queue(conversation_id=dm_conversation.pk, author=agent, type="text", text="Hello")
    assert send_message.apply(args=[dm_reply.pk]).result == "accepted"
    seen = len(receiver.requests)
    server.sandbox.mark_read(dm["conversation_id"])
    wait_until(
        lambda: any(b"im_mark_read_msg" in c.body for c in list(receiver.requests)[seen:]), 5, "the read webhook"
    )
    for captured in list(receiver.requests)[seen:]:
        relay(client, app, captured)
    dm_reply.refresh_from_db()
    reply.refresh_from_db()
    assert dm_reply.status == Message.Status.SEEN
    assert reply.status == Message.Status.ACCEPTED


def test_the_sandbox_hides_a_comment_over_http_and_reports_it(wire, client):  # noqa: F811
    import requests

    server, app, receiver = wire  # noqa: F811
    connection = connect_with_comments(server, app)
    answer, _ = comment(server, receiver, client, app)
    url = f"{server.url}/open_api/v1.3/business/comment/hide/"
    headers = {"Access-Token": connection.access_token}
    body = {"business_id": OPEN_ID, "video_id": VIDEO, "comment_id": answer["comment_id"], "action": "HIDE"}
    seen = len(receiver.requests)
    hidden = requests.post(url, json=body, headers=headers, timeout=5).json()
    assert hidden["code"] == 0, hidden
    (captured,) = next_webhooks(receiver, seen)
    # Hidden outside the inbox (TikTok's app, another tool): the stored comment is marked hidden.
    assert relay(client, app, captured).json()["comment_hidden"] == 1
    assert Message.objects.get(provider_message_id=answer["comment_id"]).public_state == "hidden"
    assert relay(client, app, captured).json()["comment_state_unchanged"] == 1
    listed = requests.get(
        f"{server.url}/open_api/v1.3/business/comment/list/",
        params={"business_id": OPEN_ID, "video_id": VIDEO, "status": "PUBLIC"},
        headers=headers,
        timeout=5,
    ).json()
    assert listed["code"] == 0 and listed["data"]["comments"] == []
    bad = requests.post(url, json={**body, "action": "SHOUT"}, headers=headers, timeout=5).json()
    assert bad["code"] != 0 and "HIDE or UNHIDE" in bad["message"]
    wrong_scope = requests.post(url, json=body, headers={"Access-Token": "nope"}, timeout=5).json()
    assert wrong_scope["code"] != 0
