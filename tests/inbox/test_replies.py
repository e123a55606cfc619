"""Agent replies: what reply_queue refuses, what it writes, and retrying a failed message."""

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from inbox import outbox, providers
from inbox.errors import ApplicationError
from inbox.events import StatusReport
from inbox.models import AuditLog, Contact, Conversation, Inbox, Message
from inbox.services import StatusOutcome, message_retry, message_status_apply, reply_queue

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(monkeypatch):
    """Message ids handed to the channel's send hook (run on commit)."""
    sent: list[int] = []
    monkeypatch.setattr("inbox.outbox.schedule_send", lambda message_id, attempt_id=None: sent.append(message_id))
    return sent


def make_conversation(inbox, *, user="user-1", last_inbound_ago: timedelta | None = timedelta(hours=1)):
    contact = Contact.objects.create(channel="tiktok", endpoint_id="biz-1", channel_user_id=user)
    now = timezone.now()
    return Conversation.objects.create(
        provider="infobip",
        inbox=inbox,
        contact=contact,
        provider_conversation_id=f"conv-{user}",
        last_activity_at=now - timedelta(hours=2),
        last_inbound_at=None if last_inbound_ago is None else now - last_inbound_ago,
    )


@pytest.fixture
def conversation(inbox):
    return make_conversation(inbox)


def inbound(conversation, provider_message_id="in-1") -> Message:
    return Message.objects.create(
        conversation=conversation,
        direction="in",
        type="text",
        text="hello",
        channel="tiktok",
        provider_message_id=provider_message_id,
        sent_at=conversation.last_inbound_at,
    )


def outbound(conversation, *, status="accepted", queued_ago=timedelta(minutes=5)) -> Message:
    at = timezone.now() - queued_ago
    return Message.objects.create(
        conversation=conversation,
        direction="out",
        type="text",
        text="earlier reply",
        channel="tiktok",
        provider_message_id=str(uuid.uuid4()),
        status=status,
        queued_at=at,
        sent_at=at,
    )


def refused(code: str, status: int, **kwargs) -> ApplicationError:
    before = Message.objects.count()
    with pytest.raises(ApplicationError) as caught:
        reply_queue(**kwargs)
    assert (caught.value.code, caught.value.status) == (code, status), caught.value.message
    assert caught.value.message
    assert Message.objects.count() == before
    return caught.value


def test_the_tiktok_channel_registers_its_backend():
    from tiktok_channel.backend import InfobipBackend

    backend = providers.get("infobip")
    assert isinstance(backend, InfobipBackend) and backend.channel == "tiktok"


def test_a_text_reply_is_queued_audited_published_and_enqueued_on_commit(
    conversation, agent, enqueued, live_events, django_capture_on_commit_callbacks
):
    version = conversation.version
    with django_capture_on_commit_callbacks(execute=True):
        message = reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="Yes, we do!")
        assert enqueued == []  # nothing leaves before the row is committed

    message.refresh_from_db()
    assert (message.direction, message.type, message.text, message.status) == ("out", "text", "Yes, we do!", "queued")
    assert (message.channel, message.attempt, message.author) == ("tiktok", 1, agent)
    assert message.provider_conversation_id == "conv-user-1"
    assert message.queued_at is not None and message.sent_at == message.queued_at
    uuid.UUID(message.provider_message_id)  # our own id for this attempt
    assert enqueued == [message.pk]

    conversation.refresh_from_db()
    assert conversation.version == version + 1 and conversation.last_activity_at == message.queued_at
    audit = AuditLog.objects.get(action="message.queued")
    assert (audit.actor, audit.actor_kind, audit.message) == (agent, "agent", message)
    assert audit.after["provider_message_id"] == message.provider_message_id
    assert live_events == [
        (
            f"inbox.{conversation.inbox_id}",
            {
                "type": "message.created",
                "conversation_id": conversation.pk,
                "message_id": message.pk,
                "direction": "out",
                "status": "queued",
                "version": version + 1,
            },
        )
    ]


def test_each_attempt_gets_a_distinct_id(conversation, agent, enqueued):
    first = reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="one")
    second = reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="two")
    assert first.provider_message_id != second.provider_message_id


def test_image_share_post_quote_and_callback_data_are_stored(conversation, agent, enqueued):
    quoted = inbound(conversation)
    text = reply_queue(
        conversation_id=conversation.pk,
        author=agent,
        type="text",
        text="this one?",
        quoted_message_id=quoted.pk,
        callback_data="ticket=42",
    )
    image = reply_queue(
        conversation_id=conversation.pk, author=agent, type="image", media_url="https://cdn.example.com/a/Photo.PNG?v=2"
    )
    post = reply_queue(conversation_id=conversation.pk, author=agent, type="share_post", post_id="7301234")
    assert (text.quoted_provider_message_id, text.payload) == ("in-1", {"callback_data": "ticket=42"})
    assert (image.type, image.media_url, image.text) == ("image", "https://cdn.example.com/a/Photo.PNG?v=2", "")
    assert (post.type, post.post_id) == ("share_post", "7301234")


def test_refused_when_the_user_never_wrote(inbox, agent, enqueued):
    conversation = make_conversation(inbox, last_inbound_ago=None)
    refused("no_user_message", 409, conversation_id=conversation.pk, author=agent, type="text", text="Hi")
    assert enqueued == []


def test_refused_when_the_reply_window_is_closed(inbox, agent, enqueued):
    closed = make_conversation(inbox, user="u-closed", last_inbound_ago=timedelta(hours=48, seconds=1))
    refused("reply_window_closed", 409, conversation_id=closed.pk, author=agent, type="text", text="Hi")
    still_open = make_conversation(inbox, user="u-open", last_inbound_ago=timedelta(hours=47, minutes=59))
    assert reply_queue(conversation_id=still_open.pk, author=agent, type="text", text="Hi").status == "queued"


def test_window_length_is_a_setting(inbox, agent, enqueued, settings):
    settings.REPLY_WINDOW_HOURS = 2
    conversation = make_conversation(inbox, last_inbound_ago=timedelta(hours=3))
    refused("reply_window_closed", 409, conversation_id=conversation.pk, author=agent, type="text", text="Hi")


def test_refused_when_the_quota_is_used(conversation, agent, enqueued, settings):
    settings.REPLY_QUOTA_PER_WINDOW = 3
    outbound(conversation, status="queued")
    outbound(conversation, status="delivered")
    outbound(conversation, status="failed")  # a failed reply does not count
    outbound(conversation, status="seen", queued_ago=timedelta(hours=3))  # before the user's last message
    third = reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="third")
    assert third.status == "queued"
    refused("reply_quota_used", 409, conversation_id=conversation.pk, author=agent, type="text", text="fourth")


def test_default_quota_is_ten(conversation, agent, enqueued):
    for n in range(10):
        reply_queue(conversation_id=conversation.pk, author=agent, type="text", text=f"reply {n}")
    refused("reply_quota_used", 409, conversation_id=conversation.pk, author=agent, type="text", text="eleventh")


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"type": "text", "text": "x" * 6001}, "text_too_long"),
        ({"type": "text", "text": "  "}, "text_required"),
        ({"type": "image", "media_url": "ftp://cdn.example.com/a.jpg"}, "invalid_media_url"),
        ({"type": "image", "media_url": "https://cdn.example.com/a.gif"}, "invalid_media_url"),
        ({"type": "image", "media_url": "https://cdn.example.com/image"}, "invalid_media_url"),
        ({"type": "image", "media_url": "https:///a.jpg"}, "invalid_media_url"),
        ({"type": "image", "media_url": "https://cdn.example.com/" + "a" * 2021 + ".jpg"}, "invalid_media_url"),
        ({"type": "image", "media_url": ""}, "invalid_media_url"),
        ({"type": "image", "media_url": "https://cdn.example.com/a.jpg", "text": "caption"}, "text_not_allowed"),
        ({"type": "share_post", "post_id": ""}, "post_id_required"),
        ({"type": "share_post", "post_id": "9" * 201}, "invalid_post_id"),
        ({"type": "text", "text": "Hi", "callback_data": "c" * 4001}, "callback_data_too_long"),
        ({"type": "reaction", "text": "Hi"}, "invalid_type"),
    ],
)
def test_invalid_content_is_refused_with_422(conversation, agent, enqueued, fields, code):
    error = refused(code, 422, conversation_id=conversation.pk, author=agent, **fields)
    assert error.fields  # names the field at fault
    assert enqueued == []


def test_limits_are_inclusive(conversation, agent, enqueued):
    url = "https://cdn.example.com/" + "a" * 2020 + ".jpg"
    assert len(url) == 2048
    reply_queue(conversation_id=conversation.pk, author=agent, type="image", media_url=url)
    reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="x" * 6000, callback_data="c" * 4000)
    assert Message.objects.filter(direction="out").count() == 2


def test_a_quote_must_be_an_inbound_message_of_the_same_conversation(inbox, conversation, agent, enqueued):
    other = make_conversation(inbox, user="user-2")
    foreign = inbound(other, "in-other")
    ours_outbound = outbound(conversation)
    for quoted in (foreign, ours_outbound):
        refused(
            "invalid_quote",
            422,
            conversation_id=conversation.pk,
            author=agent,
            type="text",
            text="Hi",
            quoted_message_id=quoted.pk,
        )
    refused(
        "invalid_quote",
        422,
        conversation_id=conversation.pk,
        author=agent,
        type="image",
        media_url="https://cdn.example.com/a.jpg",
        quoted_message_id=inbound(conversation).pk,
    )


def test_unknown_conversation_is_404(agent, enqueued):
    refused("not_found", 404, conversation_id=987654, author=agent, type="text", text="Hi")


@pytest.mark.django_db(transaction=True)
def test_concurrent_replies_cannot_both_take_the_last_slot(settings, django_user_model):
    settings.REPLY_QUOTA_PER_WINDOW = 1
    sent: list[int] = []
    outbox.schedule_send, original = (lambda message_id, attempt_id=None: sent.append(message_id)), outbox.schedule_send
    try:
        inbox = Inbox.objects.create(name="Race")
        agent = django_user_model.objects.create_user("racer")
        conversation = make_conversation(inbox)
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def reply(n: int) -> None:
            barrier.wait()
            try:
                reply_queue(conversation_id=conversation.pk, author=agent, type="text", text=f"racer {n}")
                outcomes.append("queued")
            except ApplicationError as exc:
                outcomes.append(exc.code)
            finally:
                connection.close()

        threads = [threading.Thread(target=reply, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(outcomes) == ["queued", "reply_quota_used"]
        assert Message.objects.filter(direction="out").count() == 1
        assert len(sent) == 1
    finally:
        outbox.schedule_send = original


# --- retry ---------------------------------------------------------------------------------------


def failed_message(conversation) -> Message:
    message = outbound(conversation, status="failed")
    Message.objects.filter(pk=message.pk).update(
        failed_at=timezone.now(),
        error={"name": "E500", "description": "Something went wrong.", "permanent": False},
        provider_status={"name": "X"},
    )
    return message


def test_retry_is_a_new_attempt_with_a_new_id(
    conversation, agent, enqueued, live_events, django_capture_on_commit_callbacks
):
    message = failed_message(conversation)
    old_id = message.provider_message_id
    with django_capture_on_commit_callbacks(execute=True):
        retried = message_retry(message_id=message.pk, author=agent)

    retried.refresh_from_db()
    assert (retried.status, retried.attempt) == ("queued", 2)
    assert retried.provider_message_id != old_id
    uuid.UUID(retried.provider_message_id)
    assert (retried.error, retried.provider_status, retried.failed_at) == ({}, {}, None)
    assert enqueued == [message.pk]
    audit = AuditLog.objects.get(action="message.retried")
    assert (audit.actor, audit.before["provider_message_id"], audit.after["attempt"]) == (agent, old_id, 2)
    assert audit.before["error"]["name"] == "E500"
    assert [event["type"] for _, event in live_events] == ["message.retried"]
    assert live_events[0][1]["attempt"] == 2

    # A late report for the old attempt matches nothing and leaves the new attempt alone.
    old_report = StatusReport(
        channel="tiktok", provider_message_id=old_id, status="delivered", at=timezone.now(), provider_status={}
    )
    assert message_status_apply(report=old_report) == StatusOutcome.UNKNOWN
    retried.refresh_from_db()
    assert retried.status == "queued"


def test_retry_is_refused_when_the_window_is_closed(inbox, agent, enqueued):
    conversation = make_conversation(inbox, last_inbound_ago=timedelta(hours=49))
    message = failed_message(conversation)
    with pytest.raises(ApplicationError) as caught:
        message_retry(message_id=message.pk, author=agent)
    assert (caught.value.code, caught.value.status) == ("reply_window_closed", 409)
    message.refresh_from_db()
    assert (message.status, message.attempt) == ("failed", 1)
    assert enqueued == []


@pytest.mark.parametrize("status", ["queued", "accepted", "delivered", "seen"])
def test_only_a_failed_message_can_be_retried(conversation, agent, enqueued, status):
    message = outbound(conversation, status=status)
    with pytest.raises(ApplicationError) as caught:
        message_retry(message_id=message.pk, author=agent)
    assert (caught.value.code, caught.value.status) == ("not_failed", 409)


def test_retry_respects_the_quota(conversation, agent, enqueued, settings):
    settings.REPLY_QUOTA_PER_WINDOW = 2
    message = failed_message(conversation)
    outbound(conversation)
    message_retry(message_id=message.pk, author=agent)  # the failed one did not count: room for it
    message.refresh_from_db()
    Message.objects.filter(pk=message.pk).update(status="failed")
    outbound(conversation)
    with pytest.raises(ApplicationError) as caught:
        message_retry(message_id=message.pk, author=agent)
    assert caught.value.code == "reply_quota_used"


def test_retry_of_an_inbound_or_unknown_message_is_404(conversation, agent, enqueued):
    for message_id in (inbound(conversation).pk, 987654):
        with pytest.raises(ApplicationError) as caught:
            message_retry(message_id=message_id, author=agent)
        assert caught.value.code == "not_found"


def test_live_versions_of_a_message_grow_across_attempts(
    conversation, agent, enqueued, live_events, django_capture_on_commit_callbacks
):
    from inbox.events import StatusReport
    from inbox.services import message_retry, message_status_apply

    with django_capture_on_commit_callbacks(execute=True):
        message = reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="hi")
        first_id = message.provider_message_id
        message_status_apply(
            report=StatusReport(
                channel="tiktok",
                provider_message_id=first_id,
                status="failed",
                at=timezone.now(),
                error={"name": "EC_NO_SESSION"},
            )
        )
        message_retry(message_id=message.pk, author=agent)
        message.refresh_from_db()
        message_status_apply(
            report=StatusReport(
                channel="tiktok", provider_message_id=message.provider_message_id, status="accepted", at=timezone.now()
            )
        )
    versions = [
        (event["type"], event["version"])
        for _, event in live_events
        if event.get("message_id") == message.pk and event["type"] != "message.created"
    ]
    assert [kind for kind, _ in versions] == ["message.status", "message.retried", "message.status"]
    numbers = [version for _, version in versions]
    assert numbers == sorted(numbers) and len(set(numbers)) == 3
