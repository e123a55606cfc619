"""The live publisher: a batch's events handed over at once (`live.send_many`) leave in order, all of them, through
the real channel layer (Redis pub/sub), grouped as the browsers expect (`inbox.events` of at most MAX_BATCH)."""

import asyncio
import uuid

import pytest
from channels.layers import get_channel_layer

from inbox import live

pytestmark = [pytest.mark.anyio]


@pytest.fixture
def anyio_backend():
    return "asyncio"


def event(n: int) -> dict:
    return {"type": "message.created", "conversation_id": 1, "message_id": n, "direction": "in", "version": n}


async def test_a_batch_handed_over_at_once_leaves_in_order_and_complete():
    layer = get_channel_layer()
    group, other = f"test.{uuid.uuid4().hex}", f"test.{uuid.uuid4().hex}"  # pub/sub is server-wide: our own groups
    channel, other_channel = await layer.new_channel(), await layer.new_channel()
    await layer.group_add(group, channel)
    await layer.group_add(other, other_channel)
    try:
        count = live.MAX_BATCH + 50  # more than one group_send's worth
        items = [(group, event(n)) for n in range(count)]
        items.insert(10, (other, event(-1)))  # another group in the middle of the batch
        done = live.send_many(items)

        received: list[dict] = []
        deadline = asyncio.get_running_loop().time() + 10
        while len(received) < count:
            assert asyncio.get_running_loop().time() < deadline, f"only {len(received)} of {count} arrived"
            message = await asyncio.wait_for(layer.receive(channel), timeout=10)
            received.extend(message["events"] if message["type"] == "inbox.events" else [message["event"]])
        assert [e["message_id"] for e in received] == list(range(count))
        other_message = await asyncio.wait_for(layer.receive(other_channel), timeout=10)
        assert other_message == {"type": "inbox.event", "event": event(-1)}
        assert await asyncio.to_thread(done.wait, 10)  # set once all of them have left
    finally:
        await layer.group_discard(group, channel)
        await layer.group_discard(other, other_channel)
