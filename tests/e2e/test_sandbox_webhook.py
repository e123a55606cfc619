"""The sandbox against our real webhook: its signed reports move a message to delivered then seen, and a
simulated TikTok user opens a conversation."""

from __future__ import annotations

import pytest
import requests
from django.core.management import call_command
from django.utils import timezone

from inbox.models import Contact, Conversation, Message
from tests.tiktok_channel.sandbox_helpers import wait_until
from tiktok_channel.sandbox.accounts import DatabaseAccounts
from tiktok_channel.sandbox.behaviour import Behaviour
from tiktok_channel.sandbox.server import Sandbox, SandboxServer

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_sandbox_reports_make_a_sent_message_delivered_then_seen(live_server, settings, account, inbox):
    settings.PUBLIC_BASE_URL = live_server.url
    contact = Contact.objects.create(channel="tiktok", endpoint_id="biz-1", channel_user_id="user-1")
    conversation = Conversation.objects.create(
        provider="infobip", inbox=inbox, contact=contact, last_activity_at=timezone.now()
    )
    message = Message.objects.create(
        conversation=conversation,
        direction="out",
        type="text",
        text="Hello",
        channel="tiktok",
        provider_message_id="e2e-out-1",
        status="accepted",
        sent_at=timezone.now(),
    )
    server = SandboxServer(Sandbox(DatabaseAccounts(), Behaviour(delivery_delay_ms=50, seen_delay_ms=300)))
    server.start()
    try:
        sent = requests.post(
            f"{server.url}/tiktok/1/messages",
            json={
                "messages": [
                    {
                        "sender": "biz-1",
                        "destinations": [{"to": "user-1", "messageId": "e2e-out-1"}],
                        "content": {"type": "TEXT", "text": "Hello"},
                    }
                ]
            },
            headers={"Authorization": f"App {account.api_key}"},
            timeout=5,
        )
        assert sent.status_code == 200
        wait_until(lambda: Message.objects.get(pk=message.pk).status == "delivered", 10, "delivered")
        wait_until(lambda: Message.objects.get(pk=message.pk).status == "seen", 10, "seen")
        message.refresh_from_db()
        assert message.delivered_at and message.seen_at
        # The webhook answers before the sandbox records the answer: poll for it.
        wait_until(lambda: len(server.sandbox.state()["webhooks"]) == 2, 5, "both posts recorded")
        assert [d["status"] for d in server.sandbox.state()["webhooks"]] == [200, 200]
    finally:
        server.stop()


def test_simulate_tiktok_user_creates_a_conversation(live_server, settings, account, inbox):
    settings.PUBLIC_BASE_URL = live_server.url
    call_command("simulate_tiktok_user", "--sender", "biz-1", "--user", "tt-new", "--text", "Hi, anyone there?")
    conversation = Conversation.objects.get(contact__channel_user_id="tt-new")
    assert conversation.inbox == inbox
    assert conversation.messages.get().text == "Hi, anyone there?"
