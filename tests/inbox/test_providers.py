"""Providers per connection: a second backend of channel "tiktok" serves another inbox beside the Infobip
sender, and each conversation's replies reach its own provider through the same outbox code."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import responses
from django.utils import timezone

from inbox import outbox, providers
from inbox.events import InboundMessage, StatusReport
from inbox.models import Inbox, Message, ParkedReport
from inbox.services import message_receive, reply_queue
from inbox.tasks import send_message

pytestmark = pytest.mark.django_db
INFOBIP_URL = "https://xyz.api.infobip.com/tiktok/1/messages"


class FakeBackend(providers.Backend):
    """A direct-TikTok-like provider: records each call, answers with what the test queued up."""

    name = "fake-direct"
    channel = "tiktok"
    capabilities = providers.Capabilities(content_types=(Message.Type.TEXT,), quoting=False)

    def __init__(self) -> None:
        self.sent: list[tuple[int, str, int]] = []
        self.answers: list[providers.SendResult] = []

    def send(self, message: Message, *, validity_seconds: int) -> providers.SendResult:
        self.sent.append((message.pk, message.text, validity_seconds))
        if self.answers:
            return self.answers.pop(0)
        return providers.SendResult(providers.ACCEPTED, provider_message_id=f"tt-{message.pk}")


@pytest.fixture
def fake(monkeypatch):
    backend = FakeBackend()
    monkeypatch.setitem(providers._backends, backend.name, backend)
    return backend


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    """Sends are run by the test (the task's own code, eagerly), not by a broker."""
    enqueued: list[int] = []
    monkeypatch.setattr("inbox.outbox.schedule_send", lambda message_id, attempt_id=None: enqueued.append(message_id))
    monkeypatch.setattr(send_message, "delay", enqueued.append)
    return enqueued


def inbound(*, provider: str, endpoint_id: str, user: str, text: str) -> InboundMessage:
    return InboundMessage(
        channel="tiktok",
        endpoint_id=endpoint_id,
        channel_user_id=user,
        provider_message_id=f"{provider}-{user}-1",
        provider_conversation_id=user,
        sent_at=timezone.now() - timedelta(minutes=1),
        type="text",
        text=text,
        provider=provider,
    )


def infobip_ok(request):
    body = json.loads(request.body)
    message_id = body["messages"][0]["destinations"][0]["messageId"]
    status = {"groupId": 1, "groupName": "PENDING", "id": 7, "name": "PENDING_ENROUTE"}
    return 200, {}, json.dumps({"bulkId": "b", "messages": [{"messageId": message_id, "status": status}]})


@responses.activate
def test_each_conversation_replies_through_its_own_provider(account, inbox, agent, fake):
    direct_inbox = Inbox.objects.create(name="Direct")
    direct_inbox.members.add(agent)
    responses.add_callback(responses.POST, INFOBIP_URL, callback=infobip_ok)

    via_infobip, _ = message_receive(
        inbox_id=inbox.pk, event=inbound(provider="infobip", endpoint_id="biz-1", user="ann", text="Hi Infobip")
    )
    via_direct, _ = message_receive(
        inbox_id=direct_inbox.pk, event=inbound(provider=fake.name, endpoint_id="tt-biz", user="bob", text="Hi TikTok")
    )
    assert via_infobip.conversation.provider == "infobip" and via_direct.conversation.provider == fake.name

    to_ann = reply_queue(conversation_id=via_infobip.conversation_id, author=agent, type="text", text="for ann")
    to_bob = reply_queue(conversation_id=via_direct.conversation_id, author=agent, type="text", text="for bob")
    assert send_message.apply(args=[to_ann.pk]).result == "accepted"
    assert send_message.apply(args=[to_bob.pk]).result == "accepted"

    # Infobip got ann's reply only; the fake provider bob's only, with what is left of the reply window.
    (call,) = responses.calls
    sent = json.loads(call.request.body)["messages"][0]
    assert (sent["sender"], sent["destinations"][0]["to"], sent["content"]["text"]) == ("biz-1", "ann", "for ann")
    assert [(pk, text) for pk, text, _ in fake.sent] == [(to_bob.pk, "for bob")]
    assert 47 * 3600 < fake.sent[0][2] <= 48 * 3600
    to_ann.refresh_from_db()
    to_bob.refresh_from_db()
    assert (to_ann.status, to_bob.status) == ("accepted", "accepted")
    assert to_bob.provider_status == {"messageId": f"tt-{to_bob.pk}"}


def test_the_outbox_retries_and_fails_for_any_provider(inbox, agent, fake, settings):
    """Backoff, the retry budget and the final failure are the core's: the fake provider gets them too."""
    settings.OUTBOX_SEND_MAX_TRIES = 2
    message, _ = message_receive(
        inbox_id=inbox.pk, event=inbound(provider=fake.name, endpoint_id="tt-biz", user="cy", text="hello")
    )
    reply = reply_queue(conversation_id=message.conversation_id, author=agent, type="text", text="answer")
    busy = providers.SendResult(providers.RETRYABLE, error={"name": "RATE_LIMITED", "description": "slow down"})
    fake.answers = [busy, busy]
    assert send_message.apply(args=[reply.pk]).result == "failed"
    assert len(fake.sent) == 2
    reply.refresh_from_db()
    assert reply.status == "failed"
    assert reply.error["name"] == "RATE_LIMITED" and reply.error["retries_exhausted"] is True


def test_capabilities_are_enforced_before_queueing(inbox, agent, fake):
    message, _ = message_receive(
        inbox_id=inbox.pk, event=inbound(provider=fake.name, endpoint_id="tt-biz", user="di", text="look")
    )
    from inbox.errors import ApplicationError

    with pytest.raises(ApplicationError) as image:
        reply_queue(
            conversation_id=message.conversation_id,
            author=agent,
            type="image",
            media_url="https://example.com/a.png",
        )
    assert (image.value.code, image.value.status) == ("invalid_type", 422)
    with pytest.raises(ApplicationError) as quote:
        reply_queue(
            conversation_id=message.conversation_id, author=agent, type="text", text="re", quoted_message_id=message.pk
        )
    assert quote.value.code == "invalid_quote"
    assert not Message.objects.filter(direction="out").exists()


def test_a_conversation_whose_provider_is_gone_cannot_be_answered(inbox, agent, fake, monkeypatch):
    message, _ = message_receive(
        inbox_id=inbox.pk, event=inbound(provider=fake.name, endpoint_id="tt-biz", user="ed", text="anyone?")
    )
    reply = reply_queue(conversation_id=message.conversation_id, author=agent, type="text", text="yes")
    monkeypatch.delitem(providers._backends, fake.name)
    assert send_message.apply(args=[reply.pk]).result == "failed"
    reply.refresh_from_db()
    assert reply.error["name"] == "PROVIDER_UNAVAILABLE"
    from inbox.errors import ApplicationError

    with pytest.raises(ApplicationError) as refused:
        reply_queue(conversation_id=message.conversation_id, author=agent, type="text", text="again")
    assert (refused.value.code, refused.value.status) == ("channel_unavailable", 409)


def test_a_report_before_the_acceptance_is_parked_then_applied_by_the_send(inbox, agent, fake):
    message, _ = message_receive(
        inbox_id=inbox.pk, event=inbound(provider=fake.name, endpoint_id="tt-biz", user="flo", text="hey")
    )
    reply = reply_queue(conversation_id=message.conversation_id, author=agent, type="text", text="hello")
    # Parked while the row raced its commit (the provider's report overtook our own bookkeeping).
    early = StatusReport(
        channel="tiktok", provider_message_id=reply.provider_message_id, status="delivered", at=timezone.now()
    )
    outbox.park_reports([early])
    outbox.park_reports([early])
    assert ParkedReport.objects.count() == 1  # the same report again is kept once
    assert send_message.apply(args=[reply.pk]).result == "accepted"
    reply.refresh_from_db()
    assert reply.status == "delivered"


def test_the_shared_ledger_hands_each_provider_its_own_rows(fake, account, monkeypatch):
    """One processor for every provider: pending rows go to their provider's backend; a row of a provider that is
    not installed is marked failed with the reason (and stays replayable)."""
    from inbox import processor
    from inbox.models import WebhookEvent

    handed: list[list[int]] = []

    def process(events):
        handed.append([event.pk for event in events])
        WebhookEvent.objects.filter(pk__in=[e.pk for e in events]).update(verdict=WebhookEvent.Verdict.PROCESSED)

    monkeypatch.setattr(fake, "process_webhooks", process, raising=False)
    rows = {}
    for name in ("infobip", fake.name, "gone"):
        processor.store_pending(
            provider=name,
            connection_id=account.pk,
            path_kind="any",
            received_at=timezone.now(),
            headers={},
            body='{"results": []}',
            result_count=0,
        )
        rows[name] = WebhookEvent.objects.order_by("-pk").first()
    assert processor.drain() == 3
    assert handed == [[rows[fake.name].pk]]
    verdicts = dict(WebhookEvent.objects.values_list("provider", "verdict"))
    assert verdicts == {"infobip": "processed", fake.name: "processed", "gone": "failed"}
    assert WebhookEvent.objects.get(provider="gone").error == "no provider 'gone' is installed"


def _two_replies_on_one_connection(inbox, agent, name: str) -> list[Message]:
    replies = []
    for user in ("dee", "eve"):
        received, _ = message_receive(
            inbox_id=inbox.pk, event=inbound(provider=name, endpoint_id="tt-biz", user=user, text="hello")
        )
        replies.append(
            reply_queue(conversation_id=received.conversation_id, author=agent, type="text", text=f"to {user}")
        )
    return replies


def test_a_provider_without_batches_sends_one_by_one_through_the_same_code(inbox, agent, fake):
    first, second = _two_replies_on_one_connection(inbox, agent, fake.name)
    assert send_message.apply(args=[first.pk]).result == "accepted"
    assert [pk for pk, _, _ in fake.sent] == [first.pk]  # the other reply is not taken along
    assert send_message.apply(args=[second.pk]).result == "accepted"
    assert [pk for pk, _, _ in fake.sent] == [first.pk, second.pk]


class BatchingBackend(FakeBackend):
    name = "fake-batching"

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[int]] = []

    def send_batch_limit(self) -> int:
        return 10

    def send_batch(self, items):
        self.calls.append([message.pk for message, _ in items])
        return [
            providers.SendResult(providers.ACCEPTED, provider_message_id=f"tt-{message.pk}")
            if n == 0
            else providers.SendResult(providers.PERMANENT, error={"name": "REFUSED", "description": "no"})
            for n, (message, _) in enumerate(items)
        ]


def test_a_provider_with_batches_gets_the_ready_replies_of_the_connection_in_one_call(inbox, agent, monkeypatch):
    backend = BatchingBackend()
    monkeypatch.setitem(providers._backends, backend.name, backend)
    first, second = _two_replies_on_one_connection(inbox, agent, backend.name)
    assert send_message.apply(args=[first.pk]).result == "accepted"
    assert backend.calls == [[first.pk, second.pk]]
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("accepted", "failed")
    assert second.error["name"] == "REFUSED"
