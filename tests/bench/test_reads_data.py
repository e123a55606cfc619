"""The reads scenario's bulk data (bench/data.py `conversations_with_messages`) is vacuumed before it is measured:
left to autovacuum, the new rows were vacuumed while the reads scenario's wrk ran (bench/README.md, seventh
session). Outside a transaction it runs VACUUM (ANALYZE); inside one (VACUUM cannot) it keeps the ANALYZE."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from bench import data
from inbox.models import Conversation, Inbox, Message

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="VACUUM and pg_stat_user_tables are PostgreSQL's"),
]


def _stats(table: str) -> tuple[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = %s", [table])
        return cursor.fetchone()


@pytest.mark.django_db(transaction=True)
def test_the_loaded_tables_are_vacuumed_before_the_scenario_runs():
    inbox = Inbox.objects.create(name="Bench reads")
    before = {table: _stats(table)[0] for table in ("inbox_message", "inbox_conversation", "inbox_contact")}
    made = data.conversations_with_messages(inbox_id=inbox.pk, conversations=30, messages_per=4, prefix="v")
    assert Message.objects.filter(conversation__inbox=inbox).count() == 120
    for table, vacuums in before.items():
        assert _stats(table)[0] > vacuums, table
    assert Conversation.objects.filter(pk__in=made["conversation_ids"]).exclude(last_message_id=None).count() == 30


@pytest.mark.django_db
def test_inside_a_transaction_it_analyzes_only():
    inbox = Inbox.objects.create(name="Bench reads")
    with transaction.atomic():  # the test's own transaction is around it too: VACUUM would raise here
        made = data.conversations_with_messages(inbox_id=inbox.pk, conversations=5, messages_per=2, prefix="a")
    assert len(made["conversation_ids"]) == 5
