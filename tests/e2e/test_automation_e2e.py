"""An automation rule end to end: the sandbox posts a signed inbound webhook, the processor applies it, the rule's
canned response goes out through the worker's outbox to the sandbox, and its outgoing webhook, answered 500 first,
is retried by the Celery worker and recorded. A redelivery of the same event runs nothing again."""

from __future__ import annotations

import json

import pytest

from inbox.automation import rules
from inbox.automation.models import AutomationRun, WebhookDelivery
from inbox.models import CannedResponse, Label, Message
from tests.e2e.conftest import wait_for
from tests.inbox.automation.receiver import Receiver

pytestmark = pytest.mark.e2e


def test_a_rule_labels_answers_through_the_outbox_and_its_webhook_is_retried_by_the_worker(stack, settings):
    settings.AUTOMATION_WEBHOOK_ALLOW_HTTP = True  # the receiver is plain http on 127.0.0.1 (the worker allows it)
    receiver = Receiver([500, 200])
    try:
        Label.objects.create(inbox=stack.inbox, name="refund")
        canned = CannedResponse.objects.create(
            inbox=stack.inbox, short_code="refund", text="Hi {{contact.name}}, refunds take 3 days."
        )
        rule = rules.rule_create(
            inbox_id=stack.inbox.pk,
            name="Refunds",
            actor=None,
            event="message_received",
            no_reply_minutes=None,
            conditions=[{"attribute": "message_text", "operator": "contains", "value": "refund"}],
            actions=[
                {"type": "add_label", "label": "refund"},
                {"type": "send_canned_response", "canned_response_id": canned.pk},
                {"type": "webhook", "url": receiver.url},
            ],
        )
        result = stack.simulate_inbound("tt-refund", "Can I get a refund?")
        conversation = stack.conversation("tt-refund")

        answer = wait_for(
            lambda: Message.objects.filter(conversation=conversation, direction="out", status="accepted").first(),
            20,
            "the canned response to be accepted by the sandbox",
        )
        assert answer.text == "Hi tt-refund, refunds take 3 days." and answer.author.username == "automation"
        delivery = wait_for(
            lambda: WebhookDelivery.objects.filter(run__rule=rule, status="delivered").first(),
            30,
            "the worker to deliver the webhook after a retry",
        )
        assert [t["status_code"] for t in delivery.tries] == [500, 200]
        assert json.loads(receiver.requests[-1]["body"])["message"]["text"] == "Can I get a refund?"
        assert "X-Inbox-Signature" in receiver.requests[-1]["headers"]
        assert list(conversation.labels.values_list("name", flat=True)) == ["refund"]

        stack.simulate_inbound("tt-refund", "Can I get a refund?", message_id=result["messageId"])  # redelivered
        assert AutomationRun.objects.filter(rule=rule).count() == 1
        assert Message.objects.filter(conversation=conversation, direction="out").count() == 1
        assert len(receiver.requests) == 2
    finally:
        receiver.close()
