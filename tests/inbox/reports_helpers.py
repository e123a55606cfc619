"""Builders for the report tests: the services called as the product calls them, each change committed."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from django.utils import timezone

from inbox.events import InboundMessage, StatusReport
from inbox.models import Message
from inbox.services import (
    conversation_assign,
    conversation_set_status,
    conversion_report,
    message_retry,
    message_status_apply,
    messages_receive,
    reply_queue,
)

AD = {"source": "ad", "ad_id": "ad-7", "ad_name": "Winter sale"}
TIKTOK_ME = {"source": "tiktok_me", "ref": "spring-promo"}


class Stream:
    """Services called as the product calls them, each change committed (so the subscriber runs)."""

    def __init__(self, inbox, commit=None, *, endpoint_id: str = "biz-1", after=None):
        # `commit`: pytest-django's django_capture_on_commit_callbacks inside a test's transaction; none with
        # transactional_db (each service commits, and its callbacks run, by itself). `after`: called after each
        # committed step (e.g. the deferred roll-ups' drain).
        self.inbox, self.endpoint_id, self.after = inbox, endpoint_id, after
        capture = commit or (lambda execute: contextlib.nullcontext())

        @contextlib.contextmanager
        def committed(execute=True):
            with capture(execute=execute):
                yield
            if self.after:
                self.after()

        self.commit = committed

    def inbound(
        self, user: str, n: int, *, referral=None, sent_minutes_ago: int = 0, times: int = 1, sent_outside=False
    ):
        event = InboundMessage(
            channel="tiktok",
            endpoint_id=self.endpoint_id,
            channel_user_id=user,
            provider_message_id=f"{user}-{n}",
            provider_conversation_id=user,
            sent_at=timezone.now() - timedelta(minutes=sent_minutes_ago),
            type="text",
            text=f"message {n}",
            provider="infobip",
            referral=referral or {},
            sent_outside=sent_outside,
        )
        with self.commit(execute=True):
            [(message, _)] = messages_receive([(self.inbox.pk, event)])
        for _ in range(times - 1):  # a redelivered webhook: the same event again, later
            with self.commit(execute=True):
                messages_receive([(self.inbox.pk, event)])
        return message.conversation

    def reply(self, conversation, author) -> Message:
        with self.commit(execute=True):
            return reply_queue(conversation_id=conversation.pk, author=author, type="text", text="On it")

    def report(self, message: Message, status: str, *, minutes_ago: int = 0) -> None:
        message.refresh_from_db()
        with self.commit(execute=True):
            message_status_apply(
                report=StatusReport(
                    channel="tiktok",
                    provider_message_id=message.provider_message_id,
                    status=status,
                    at=timezone.now() - timedelta(minutes=minutes_ago),
                    error={"name": "EC_NO_SESSION"} if status == "failed" else {},
                )
            )

    def __getattr__(self, name):
        service = {
            "assign": conversation_assign,
            "status": conversation_set_status,
            "conversion": conversion_report,
            "retry": message_retry,
        }[name]

        def call(**kwargs):
            with self.commit(execute=True):
                return service(**kwargs)

        return call
