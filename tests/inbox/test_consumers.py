"""The agents' websocket, over the real Redis channel layer, fed by the real services."""

from datetime import datetime, timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing.websocket import WebsocketCommunicator  # (channels.testing would import daphne)
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from inbox.consumers import CLOSE_UNAUTHENTICATED, InboxConsumer
from inbox.events import InboundMessage, StatusReport
from inbox.models import Inbox, Message
from inbox.services import conversation_assign, message_receive, message_retry, message_status_apply

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True)]


def recently() -> datetime:
    """Five minutes ago by the clock the test runs under (read when called, never at import: the clock may be
    moved for the session); a retry below checks the reply window against it."""
    return timezone.now().replace(microsecond=0) - timedelta(minutes=5)


@pytest.fixture
def anyio_backend():
    return "asyncio"


def inbound(n: int, at: datetime | None = None) -> InboundMessage:
    return InboundMessage(
        channel="tiktok",
        endpoint_id="biz-1",
        channel_user_id="user-1",
        provider_message_id=f"in-{n}",
        provider_conversation_id="user-1",
        sent_at=at or recently(),
        type="text",
        text=f"hello {n}",
        provider="infobip",
    )


async def connect(user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(InboxConsumer.as_asgi(), "/ws/inbox/")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from())["type"] == "hello"
    return communicator


async def test_anonymous_connection_is_refused():
    communicator = WebsocketCommunicator(InboxConsumer.as_asgi(), "/ws/inbox/")
    communicator.scope["user"] = AnonymousUser()
    connected, code = await communicator.connect()
    assert not connected and code == CLOSE_UNAUTHENTICATED
    await communicator.wait()


async def test_member_receives_each_event_type_and_outsider_nothing(django_user_model, monkeypatch):

    monkeypatch.setattr("inbox.outbox.schedule_send", lambda message_id, attempt_id=None: None)
    inbox = await Inbox.objects.acreate(name="Support")
    other = await Inbox.objects.acreate(name="Other team")
    member = await django_user_model.objects.acreate(username="member")
    outsider = await django_user_model.objects.acreate(username="outsider")
    await sync_to_async(inbox.members.add)(member)
    await sync_to_async(other.members.add)(outsider)

    member_ws, outsider_ws = await connect(member), await connect(outsider)

    message, _ = await sync_to_async(message_receive)(inbox_id=inbox.pk, event=inbound(1))
    created = await member_ws.receive_json_from(timeout=5)
    assert created == {"type": "conversation.created", "conversation_id": message.conversation_id, "version": 1}
    new_message = await member_ws.receive_json_from(timeout=5)
    assert new_message["type"] == "message.created" and new_message["message_id"] == message.pk

    outbound = await Message.objects.acreate(
        conversation_id=message.conversation_id,
        direction="out",
        type="text",
        channel="tiktok",
        provider_message_id="out-1",
        status="accepted",
        sent_at=recently(),
    )
    await sync_to_async(message_status_apply)(
        report=StatusReport(channel="tiktok", provider_message_id="out-1", status="delivered", at=recently())
    )
    tick = await member_ws.receive_json_from(timeout=5)
    assert (tick["type"], tick["message_id"], tick["status"]) == ("message.status", outbound.pk, "delivered")

    # The remaining event types: an agent action, a failed send, a retry.
    await sync_to_async(conversation_assign)(conversation_id=message.conversation_id, assignee=member, actor=member)
    updated = await member_ws.receive_json_from(timeout=5)
    assert (updated["type"], updated["assignee_id"]) == ("conversation.updated", member.pk)
    await Message.objects.filter(pk=outbound.pk).aupdate(status="failed")
    await sync_to_async(message_retry)(message_id=outbound.pk, author=member)
    event = await member_ws.receive_json_from(timeout=5)
    assert (event["type"], event["message_id"], event["attempt"]) == ("message.retried", outbound.pk, 2)

    assert await outsider_ws.receive_nothing(timeout=0.5)  # none of the seven events above reached the outsider
    await member_ws.disconnect()
    await outsider_ws.disconnect()


async def test_admin_joins_every_inbox(django_user_model):
    inbox = await Inbox.objects.acreate(name="Support")
    admin = await django_user_model.objects.acreate(username="boss", is_superuser=True, is_staff=True)
    ws = await connect(admin)
    await sync_to_async(message_receive)(inbox_id=inbox.pk, event=inbound(2))
    assert (await ws.receive_json_from(timeout=5))["type"] == "conversation.created"
    await ws.disconnect()


async def test_full_stack_uses_the_session_and_checks_the_origin(django_user_model):
    from django.test import Client

    from config.asgi import application

    await django_user_model.objects.acreate(username="agent")
    client = Client()
    await sync_to_async(client.force_login)(await django_user_model.objects.aget(username="agent"))
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()

    good = WebsocketCommunicator(
        application, "/ws/inbox/", headers=[(b"origin", b"http://testserver"), (b"cookie", cookie)]
    )
    connected, _ = await good.connect()
    assert connected
    assert (await good.receive_json_from())["type"] == "hello"
    await good.send_json_to({"type": "ping"})
    assert await good.receive_json_from() == {"type": "pong"}
    await good.disconnect()

    foreign = WebsocketCommunicator(
        application, "/ws/inbox/", headers=[(b"origin", b"https://evil.example"), (b"cookie", cookie)]
    )
    connected, _ = await foreign.connect()
    assert not connected
    await foreign.wait()

    anonymous = WebsocketCommunicator(application, "/ws/inbox/", headers=[(b"origin", b"http://testserver")])
    connected, code = await anonymous.connect()
    assert not connected and code == CLOSE_UNAUTHENTICATED
    await anonymous.wait()


async def test_a_batch_of_messages_arrives_as_one_frame_each_in_order(django_user_model):
    """A webhook batch publishes hundreds of events at once; they leave grouped but reach the agent one by one."""
    from django.db import transaction

    from inbox.services import messages_receive

    inbox = await Inbox.objects.acreate(name="Support")
    member = await django_user_model.objects.acreate(username="member")
    await sync_to_async(inbox.members.add)(member)
    ws = await connect(member)

    def receive_batch():
        with transaction.atomic():
            at = recently()
            return [created for _, created in messages_receive([(inbox.pk, inbound(n, at)) for n in range(60)])]

    assert await sync_to_async(receive_batch)() == [True] * 60
    frames = [await ws.receive_json_from(timeout=5) for _ in range(61)]
    assert frames[0]["type"] == "conversation.created"
    assert [f["type"] for f in frames[1:]] == ["message.created"] * 60
    assert [f["version"] for f in frames[1:]] == list(range(2, 62))
    texts = await sync_to_async(
        lambda: list(
            Message.objects.filter(pk__in=[f["message_id"] for f in frames[1:]])
            .order_by("pk")
            .values_list("text", flat=True)
        )
    )()
    assert texts == [f"hello {n}" for n in range(60)]
    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()


@pytest.mark.parametrize(
    "frame",
    [{"text_data": "not json"}, {"text_data": "[" * 100_000 + "]" * 100_000}, {"bytes_data": b"\x00\x01"}],
    ids=["not-json", "deeply-nested", "binary"],
)
async def test_a_frame_that_is_not_json_closes_the_socket_with_a_code_and_logs_once(django_user_model, caplog, frame):
    """Non-JSON, nested past the parser's recursion limit, or binary: the socket closes, no ASGI exception."""
    from inbox.consumers import CLOSE_BAD_FRAME

    member = await django_user_model.objects.acreate(username="member")
    ws = await connect(member)
    with caplog.at_level("WARNING", logger="inbox.consumers"):
        await ws.send_to(**frame)
        output = await ws.receive_output(timeout=5)
    assert output == {"type": "websocket.close", "code": CLOSE_BAD_FRAME}
    assert len([r for r in caplog.records if r.name == "inbox.consumers"]) == 1
    await ws.wait()


async def expect_revoked(ws: WebsocketCommunicator) -> None:
    from inbox.consumers import CLOSE_REVOKED

    assert await ws.receive_output(timeout=5) == {"type": "websocket.close", "code": CLOSE_REVOKED}
    await ws.wait()


async def test_logging_out_closes_the_users_open_sockets(django_user_model):
    from django.test import Client

    member = await django_user_model.objects.acreate(username="member")
    ws = await connect(member)
    client = Client()
    await sync_to_async(client.force_login)(member)
    await sync_to_async(client.logout)()
    await expect_revoked(ws)


async def test_deactivating_a_user_closes_their_open_sockets(django_user_model):
    inbox = await Inbox.objects.acreate(name="Support")
    member = await django_user_model.objects.acreate(username="member")
    await sync_to_async(inbox.members.add)(member)
    ws = await connect(member)
    member.is_active = False
    await member.asave()
    await expect_revoked(ws)


@pytest.mark.parametrize("how", ["remove", "reverse-remove", "clear"])
async def test_removal_from_an_inbox_closes_the_members_open_sockets_and_no_event_follows(django_user_model, how):
    inbox = await Inbox.objects.acreate(name="Support")
    member = await django_user_model.objects.acreate(username="member")
    await sync_to_async(inbox.members.add)(member)
    ws = await connect(member)
    bystander = await connect(await django_user_model.objects.acreate(username="bystander"))
    change = {
        "remove": lambda: inbox.members.remove(member),
        "reverse-remove": lambda: member.inboxes.remove(inbox),
        "clear": lambda: inbox.members.clear(),
    }[how]
    await sync_to_async(change)()
    await expect_revoked(ws)
    await sync_to_async(message_receive)(inbox_id=inbox.pk, event=inbound(3))
    assert await bystander.receive_nothing(timeout=0.3)  # not a member of anything: not revoked either
    await bystander.disconnect()
