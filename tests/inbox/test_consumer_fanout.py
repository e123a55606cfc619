"""The agents' websocket under fan-out: a live event reaches the socket without a trip to the database thread.

channels' `AsyncConsumer.dispatch` runs `close_old_connections` in the one thread-sensitive executor before every
message; the live events touch no database, and with a hundred sockets per process those trips were the
largest part of a tick's fan-out (py-spy of uvicorn, bench/README.md "Ticks"), and any slow database call of
one socket (a presence write) held every other socket's frames.
"""

import asyncio
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from inbox.live import inbox_group
from inbox.models import Inbox
from tests.inbox.test_consumers import connect

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def anyio_backend():
    return "asyncio"


def status(pk: int) -> dict:
    return {"type": "message.status", "conversation_id": 1, "message_id": pk, "status": "delivered", "version": 2}


async def test_live_events_reach_the_socket_while_the_database_thread_is_busy(django_user_model):
    inbox = await Inbox.objects.acreate(name="Support")
    member = await django_user_model.objects.acreate(username="member")
    await sync_to_async(inbox.members.add)(member)
    ws = await connect(member)

    entered, release = threading.Event(), threading.Event()

    def busy() -> None:  # a slow database call of another socket, in the one thread-sensitive executor
        entered.set()
        release.wait(20)

    holder = asyncio.ensure_future(sync_to_async(busy)())
    try:
        assert await asyncio.to_thread(entered.wait, 5)
        layer = get_channel_layer()
        await layer.group_send(inbox_group(inbox.pk), {"type": "inbox.event", "event": status(1)})
        assert await ws.receive_json_from(timeout=3) == status(1)
        await layer.group_send(inbox_group(inbox.pk), {"type": "inbox.events", "events": [status(2), status(3)]})
        assert [await ws.receive_json_from(timeout=3) for _ in range(2)] == [status(2), status(3)]
    finally:
        release.set()
        await holder
    # Other messages still go the usual way: a ping is answered (and its presence heartbeat written).
    await ws.send_json_to({"type": "ping"})
    assert await ws.receive_json_from(timeout=5) == {"type": "pong"}
    await ws.disconnect()
