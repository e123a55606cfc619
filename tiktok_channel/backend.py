"""Infobip's TikTok API as an `inbox.providers.Backend`: the one provider-specific step of each send."""

from __future__ import annotations

import dataclasses
from collections import defaultdict

from django.conf import settings

from inbox import providers
from inbox.events import StatusReport
from inbox.models import Conversation, Conversion, Message, WebhookEvent
from tiktok_channel import client, health, infobip_webhooks
from tiktok_channel.models import CHANNEL, PROVIDER, TikTokSender


def active_sender(business_account_id: str) -> TikTokSender | None:
    """The active sender (with its active account) that owns a business account id, or None."""
    sender = TikTokSender.objects.select_related("account").filter(business_account_id=business_account_id).first()
    if sender is None or not sender.active or not sender.account.active:
        return None
    return sender


def _sender_unavailable(business_account_id: str) -> providers.SendResult:
    return providers.SendResult(
        providers.UNAVAILABLE,
        error={
            "name": "SENDER_UNAVAILABLE",
            "description": f"no active TikTok sender {business_account_id}",
            "permanent": True,
        },
    )


class InfobipBackend(providers.Backend):
    """TikTok business accounts (senders) reached through an Infobip account; the conversation's contact's
    `endpoint_id` is the sender's business account id."""

    name = PROVIDER
    channel = CHANNEL
    capabilities = providers.Capabilities(
        content_types=(Message.Type.TEXT, Message.Type.IMAGE, Message.Type.SHARE_POST),
        quoting=True,
        user_initiated=True,
        typing_events=True,
        read_receipts=True,
        conversions=True,
        delivery_reports=True,
    )

    def send(self, message: Message, *, validity_seconds: int) -> providers.SendResult:
        endpoint_id = message.conversation.contact.endpoint_id
        sender = active_sender(endpoint_id)
        if sender is None:
            return _sender_unavailable(endpoint_id)
        body = client.message_request(
            message,
            account=sender.account,
            business_account_id=sender.business_account_id,
            validity=min(validity_seconds, client.MAX_VALIDITY_SECONDS),
        )
        result = client.send_messages(sender.account, body)
        if result.outcome != providers.ACCEPTED and result.error:
            health.record_error(sender.account_id, result.error, where="send")
        return result

    def send_batch_limit(self) -> int:
        return settings.INFOBIP_SEND_BATCH_SIZE

    def send_batch(self, items: list[tuple[Message, int]]) -> list[providers.SendResult]:
        """All the messages in one `POST /tiktok/1/messages` (one `messages[]` entry each, with its own id,
        content and validity); each gets its own fate from the answer's `messages[]`, matched by our id."""
        if len(items) == 1:
            message, validity = items[0]
            return [self.send(message, validity_seconds=validity)]
        endpoint_id = items[0][0].conversation.contact.endpoint_id
        sender = active_sender(endpoint_id)
        if sender is None:
            return [_sender_unavailable(endpoint_id)] * len(items)
        body = client.batch_request(
            [(message, min(validity, client.MAX_VALIDITY_SECONDS)) for message, validity in items],
            account=sender.account,
            business_account_id=sender.business_account_id,
        )
        results = client.send_message_batch(sender.account, body, [m.provider_message_id for m, _ in items])
        errors = [result.error for result in results if result.outcome != providers.ACCEPTED and result.error]
        if errors:
            health.record_error(sender.account_id, errors[0], where="send")
        return results

    def send_event(self, conversation: Conversation, kind: str) -> providers.SendResult:
        sender = active_sender(conversation.contact.endpoint_id)
        if sender is None:
            return _sender_unavailable(conversation.contact.endpoint_id)
        body = client.event_request(conversation, business_account_id=sender.business_account_id, kind=kind)
        return client.send_events(sender.account, body)

    def process_webhooks(self, events: list[WebhookEvent]) -> None:
        infobip_webhooks.process_ledger(events)

    def replay_webhook(self, event: WebhookEvent) -> None:
        infobip_webhooks.replay_event(event)

    def report_conversion(self, conversion: Conversion) -> providers.SendResult:
        endpoint_id = conversion.conversation.contact.endpoint_id
        sender = active_sender(endpoint_id)
        if sender is None:
            return _sender_unavailable(endpoint_id)
        body = client.conversion_request(conversion, business_account_id=sender.business_account_id)
        return client.send_conversions(sender.account, body)

    def reconcile(self, messages: list[Message]) -> list[StatusReport]:
        """Ask each message's account for its log entry: a final status there (delivered, undeliverable,
        expired, rejected) becomes a report scoped to that account's senders, like its webhooks'."""
        by_account: dict[int, list[Message]] = defaultdict(list)
        accounts = {}
        for message in messages:
            sender = active_sender(message.conversation.contact.endpoint_id)
            if sender is not None and message.provider_message_id:
                accounts[sender.account_id] = sender.account
                by_account[sender.account_id].append(message)
        reports: list[StatusReport] = []
        endpoints = infobip_webhooks.endpoints_of_accounts(set(by_account))
        for account_id, sent in by_account.items():
            for entry in client.message_logs(accounts[account_id], [m.provider_message_id for m in sent]):
                report = infobip_webhooks.status_report(entry)
                if report is not None and report.status != Message.Status.ACCEPTED:
                    reports.append(dataclasses.replace(report, endpoint_ids=endpoints.get(account_id, ())))
        return reports
