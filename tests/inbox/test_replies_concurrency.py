"""Two requests with the same Idempotency-Key at the same moment, on PostgreSQL (row locks are real there)."""

import threading

import pytest
from django.db import connection, connections

from inbox.models import Inbox, Message
from tests.inbox.helpers import api, receive

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent transactions need PostgreSQL"),
]


def test_two_concurrent_requests_with_one_key_create_one_reply(django_user_model, monkeypatch):
    monkeypatch.setattr("inbox.outbox.schedule_send", lambda message_id, attempt_id=None: None)
    inbox = Inbox.objects.create(name="Support")
    agent = django_user_model.objects.create_user("agent", password="pw")
    inbox.members.add(agent)
    conversation = receive(inbox, "bob", 1, text="hi")
    barrier = threading.Barrier(4)
    answers: list = []

    def post() -> None:
        try:
            barrier.wait()
            response = api(agent).post(
                f"/api/v1/conversations/{conversation.pk}/messages/",
                {"text": "once"},
                format="json",
                HTTP_IDEMPOTENCY_KEY="double-enter",
            )
            answers.append((response.status_code, response.json()["id"]))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(answers) == 4 and {status for status, _ in answers} == {201}
    assert len({message_id for _, message_id in answers}) == 1
    assert Message.objects.filter(direction="out").count() == 1
