"""The comment sync against the TikTok sandbox over HTTP: comments the webhook missed are stored, once, whichever of
webhook and sync comes first; replies by other users land in the commenter's thread; the video's cover, caption and
link are cached on the conversation; paging, the call budget and throttling."""

from __future__ import annotations

import pytest

from inbox.models import Conversation, Message
from tests.tiktok_channel.direct.test_comments import VIDEO, comment
from tests.tiktok_channel.direct.test_wire_sandbox import KEY, OPEN_ID, next_webhooks, relay, wire  # noqa: F401
from tiktok_channel.direct import comments, tokens
from tiktok_channel.direct.tasks import sync_comments

pytestmark = pytest.mark.django_db(transaction=True)

SCOPES = ["user.info.basic", "message.list.read", "message.list.send", "message.list.manage"]
COMMENT_SCOPES = ["video.list", "comment.list", "comment.list.manage"]


def connect(server, app, scopes=SCOPES + COMMENT_SCOPES):
    sandbox = server.sandbox
    code = sandbox.issue_code(app=sandbox.apps[KEY], open_id=OPEN_ID, scope=scopes, redirect_uri=app.redirect_uri())
    connection = tokens.connect(app=app, code=code, user=None)
    with sandbox.lock:
        sandbox.apps[KEY].webhooks["COMMENT"] = sandbox.apps[KEY].webhooks["DIRECT_MESSAGE"]
    return connection


def missed(server, *, user="ann-uid", text="Where is it sold?", video=VIDEO, **more):
    """A comment whose webhook TikTok never delivers."""
    return server.sandbox.comment(
        {"account": OPEN_ID, "user": user, "video_id": video, "text": text, "webhook": False, **more}
    )


def test_a_comment_the_webhook_missed_arrives_with_the_sync_once_and_its_late_webhook_is_a_duplicate(
    wire,  # noqa: F811
    client,
):
    server, app, receiver = wire  # noqa: F811
    connection = connect(server, app)
    server.sandbox.video({"account": OPEN_ID, "video_id": VIDEO, "caption": "Our summer drop"})
    lost = missed(server)
    assert not Message.objects.exists()

    report = comments.sync_connection(connection.pk)
    assert (report.stored, report.stopped) == (1, "")
    (message,) = Message.objects.all()
    assert (message.provider_message_id, message.text) == (lost["comment_id"], "Where is it sold?")
    assert message.conversation.kind == Conversation.Kind.COMMENT and message.conversation.subject_id == VIDEO
    assert comments.sync_connection(connection.pk).stored == 0  # again: nothing new
    assert Message.objects.count() == 1

    # TikTok's webhook for it arrives late after all: the same comment, not a second message.
    seen = len(receiver.requests)
    with server.sandbox.lock:
        found = server.sandbox.comments[lost["comment_id"]]
    from tiktok_channel.direct.sandbox.state import _comment_content

    server.sandbox._post_event("comment.update", OPEN_ID, _comment_content(found, "insert", 1.7e9), "COMMENT")
    (captured,) = next_webhooks(receiver, seen)
    assert relay(client, app, captured).json()["duplicate"] == 1
    assert Message.objects.count() == 1


def test_a_comment_the_webhook_brought_is_not_stored_again_by_the_sync(wire, client):  # noqa: F811
    server, app, receiver = wire  # noqa: F811
    connection = connect(server, app)
    answer, summary = comment(server, receiver, client, app, text="First!")
    assert summary["inbound"] == 1
    missed(server, user="bob-uid", text="Second")
    report = comments.sync_connection(connection.pk)
    assert report.stored == 1  # only Bob's, which the webhook missed
    assert sorted(Message.objects.values_list("text", flat=True)) == ["First!", "Second"]
    assert Message.objects.filter(provider_message_id=answer["comment_id"]).count() == 1


def test_the_video_cover_caption_and_link_are_cached_on_the_conversation(wire, client, agent):  # noqa: F811
    server, app, receiver = wire  # noqa: F811
    connection = connect(server, app)
    server.sandbox.video({"account": OPEN_ID, "video_id": VIDEO, "caption": "Our summer drop #sale"})
    missed(server)
    comments.sync_connection(connection.pk)
    conversation = Conversation.objects.get(kind=Conversation.Kind.COMMENT)
    assert conversation.subject["caption"] == "Our summer drop #sale"
    assert conversation.subject["cover_url"] == f"{server.url}/sandbox/cover/{VIDEO}.svg"
    assert conversation.subject["url"] == f"https://www.tiktok.com/@wire_shop/video/{VIDEO}"
    client.force_login(agent)
    subject = client.get(f"/api/v1/conversations/{conversation.pk}/").json()["subject"]
    assert (subject["id"], subject["caption"], subject["cover_url"]) == (
        VIDEO,
        "Our summer drop #sale",
        f"{server.url}/sandbox/cover/{VIDEO}.svg",
    )
    import requests

    cover = requests.get(subject["cover_url"], timeout=5)
    assert cover.status_code == 200 and cover.headers["Content-Type"] == "image/svg+xml"

    # A caption changed on TikTok: the next sync updates it, with a new version (open pages refetch).
    version = conversation.version
    server.sandbox.video({"account": OPEN_ID, "video_id": VIDEO, "caption": "Summer drop: last days"})
    comments.sync_connection(connection.pk)
    conversation.refresh_from_db()
    assert conversation.subject["caption"] == "Summer drop: last days" and conversation.version == version + 1


def test_replies_by_others_are_shown_in_the_commenters_thread(wire, client, agent):  # noqa: F811
    server, app, receiver = wire  # noqa: F811
    connection = connect(server, app)
    ann, _ = comment(server, receiver, client, app, user="ann-uid", text="Does it come in blue?")
    # Bob answers Ann publicly (the webhook), Cleo too (the webhook is lost: the sync brings it).
    seen = len(receiver.requests)
    server.sandbox.comment(
        {
            "account": OPEN_ID,
            "user": "bob-uid",
            "video_id": VIDEO,
            "text": "Yes, I have it!",
            "parent_comment_id": ann["comment_id"],
        }
    )
    (captured,) = next_webhooks(receiver, seen)
    assert relay(client, app, captured).json()["inbound"] == 1
    missed(server, user="cleo-uid", username="cleo", text="Me too", parent_comment_id=ann["comment_id"])
    assert comments.sync_connection(connection.pk).stored == 1

    (conversation,) = Conversation.objects.filter(kind=Conversation.Kind.COMMENT)  # Ann's thread only
    assert conversation.contact.channel_user_id == "ann-uid"
    thread = sorted(conversation.messages.values_list("text", "other_author"))
    assert thread == [("Does it come in blue?", ""), ("Me too", "cleo"), ("Yes, I have it!", "bob-uid")]
    client.force_login(agent)
    shown = client.get(f"/api/v1/conversations/{conversation.pk}/messages/").json()["results"]
    assert sorted(m["other_author"] for m in shown) == ["", "bob-uid", "cleo"]


def test_hidden_comments_are_stored_hidden(wire, client):  # noqa: F811
    server, app, _ = wire  # noqa: F811
    connection = connect(server, app)
    lost = missed(server)
    with server.sandbox.lock:
        server.sandbox.comments[lost["comment_id"]]["status"] = "HIDDEN"
    comments.sync_connection(connection.pk)
    assert Message.objects.get().public_state == "hidden"
    with server.sandbox.lock:
        server.sandbox.comments[lost["comment_id"]]["status"] = "PUBLIC"  # shown again on TikTok
    comments.sync_connection(connection.pk)
    assert Message.objects.get().public_state == "visible"


def test_paging_through_many_comments_within_the_call_budget(wire, client, settings):  # noqa: F811
    server, app, _ = wire  # noqa: F811
    connection = connect(server, app)
    for n in range(45):  # two pages of 30
        missed(server, user=f"user-{n}", text=f"comment {n}")
    report = comments.sync_connection(connection.pk)
    assert report.stored == 45 and report.calls == 3  # the video list, two comment pages
    assert Conversation.objects.filter(kind=Conversation.Kind.COMMENT).count() == 45

    missed(server, user="late", text="one more")
    settings.TIKTOK_COMMENT_SYNC_MAX_CALLS = 1  # only the video list fits: stops, says why
    report = comments.sync_connection(connection.pk)
    assert (report.stopped, report.stored) == ("call_budget", 0)


def test_a_throttled_sync_stops_and_is_tried_again(wire, client):  # noqa: F811
    server, app, _ = wire  # noqa: F811
    connection = connect(server, app)
    missed(server)
    server.sandbox.behaviour.update({"throttle_next": 1})
    assert comments.sync_connection(connection.pk).stopped == "throttled"
    assert not Message.objects.exists()
    server.sandbox.behaviour.update({"throttle_next": 1})
    # The task retries a throttled run (eagerly here: at once); the retry stores the comment.
    sync_comments.apply(args=[connection.pk])
    assert Message.objects.count() == 1


def test_without_video_list_the_known_videos_are_synced(wire, client):  # noqa: F811
    server, app, receiver = wire  # noqa: F811
    connection = connect(server, app, scopes=SCOPES + ["comment.list", "comment.list.manage"])
    comment(server, receiver, client, app, text="via webhook")
    missed(server, user="bob-uid", text="missed")
    assert comments.connections_to_sync() == [connection.pk]
    assert comments.sync_connection(connection.pk).stored == 1
    assert Message.objects.count() == 2


def test_connections_without_comment_scopes_are_not_synced(wire):  # noqa: F811
    server, app, _ = wire  # noqa: F811
    connect(server, app, scopes=SCOPES)
    assert comments.connections_to_sync() == []
