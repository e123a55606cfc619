"""Redelivery storms against a real server: the same events posted concurrently are stored once."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from inbox.models import Contact, Conversation, Message, WebhookEvent
from tests.tiktok_channel.webhooks import encode, fixture, signed_headers, webhook_path

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_same_events_posted_three_times_concurrently_are_stored_once(live_server, account):
    bodies = []
    for n in range(40):
        payload = fixture("inbound_text")
        item = payload["results"][0]
        item.update(messageId=f"storm-{n}", sender=f"user-{n % 8}")
        item["message"]["conversationId"] = item["sender"]
        bodies.append(encode(payload))
    url = live_server.url + webhook_path(account)

    def deliver(body: bytes) -> int:
        headers = {"Content-Type": "application/json", **signed_headers(account, body)}
        return requests.post(url, data=body, headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(deliver, [body for body in bodies for _ in range(3)]))

    assert statuses == [200] * 120
    assert Message.objects.count() == 40
    assert Contact.objects.count() == 8 and Conversation.objects.count() == 8
    assert WebhookEvent.objects.count() == 120
    summaries = list(WebhookEvent.objects.values_list("summary", flat=True))
    assert sum(s.get("inbound", 0) for s in summaries) == 40
    assert sum(s.get("duplicate", 0) for s in summaries) == 80
