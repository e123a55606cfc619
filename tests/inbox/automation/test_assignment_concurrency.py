"""Two processors auto-assigning at the same moment never put an agent above capacity (PostgreSQL row locks)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from inbox.automation import assignment
from inbox.automation.models import AgentAvailability, InboxRouting
from inbox.models import Conversation, Inbox
from tests.inbox.helpers import receive

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent transactions need PostgreSQL"),
]


def test_concurrent_assigners_respect_capacity(django_user_model):
    inbox = Inbox.objects.create(name="Support")
    InboxRouting.objects.create(inbox=inbox, auto_assign=False)  # the test drives the assigners itself
    agents = []
    for name in ("ann", "ben"):
        user = django_user_model.objects.create_user(name, password="pw")
        inbox.members.add(user)
        assignment.presence_connected(user.pk)
        AgentAvailability.objects.filter(user=user).update(capacity=3)
        agents.append(user)
    conversations = [receive(inbox, f"user-{n}", 1).pk for n in range(12)]
    barrier = threading.Barrier(6)
    results: list = []
    errors: list = []

    def processor(share: list[int]) -> None:
        try:
            barrier.wait()
            for conversation_id in share:
                results.append(assignment.assign_one(conversation_id))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    shares = [conversations[i::6] for i in range(6)]
    threads = [threading.Thread(target=processor, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len(results) == 12
    per_agent = {user.pk: Conversation.objects.filter(assignee=user, status="open").count() for user in agents}
    assert per_agent == {agents[0].pk: 3, agents[1].pk: 3}
    assert Conversation.objects.filter(assignee__isnull=True).count() == 6
