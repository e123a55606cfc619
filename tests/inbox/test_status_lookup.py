"""A status report finds its outbound message by the provider id, not by reading the whole message table.

The unique constraint on (channel, endpoint_id, provider_message_id) cannot serve the lookup (replies have no
endpoint_id, echoes of messages sent outside have theirs, so the report's lookup does not name it): without an index
of its own, every report batch scanned every message (bench/README.md "Ticks", fifth session: 60 % of a core of
PostgreSQL during the live ticks after the ingest scenarios). The plan of the statement the service really runs is
checked on the database the suite runs on.
"""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inbox.events import StatusReport
from inbox.models import Contact, Conversation, Inbox, Message
from inbox.services import StatusOutcome, message_status_apply

pytestmark = pytest.mark.django_db

OTHER_MESSAGES = 20_000


def _world() -> tuple[Conversation, list[str]]:
    inbox = Inbox.objects.create(name="Support")
    contact = Contact.objects.create(channel="tiktok", endpoint_id="biz-1", channel_user_id="user-1")
    conversation = Conversation.objects.create(inbox=inbox, contact=contact, last_activity_at=timezone.now())
    now = timezone.now()
    common = {"conversation": conversation, "type": "text", "text": "hi", "channel": "tiktok", "sent_at": now}
    rows = [
        Message(direction="out", status="accepted", provider_message_id=f"out-{n}", **common)
        for n in range(OTHER_MESSAGES)
    ]
    rows += [  # inbound ones too, with their endpoint, as a table in use has
        Message(direction="in", endpoint_id="biz-1", provider_message_id=f"in-{n}", **common) for n in range(2_000)
    ]
    Message.objects.bulk_create(rows, batch_size=2_000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE inbox_message" if connection.vendor == "postgresql" else "ANALYZE")
    return conversation, [f"out-{n}" for n in range(OTHER_MESSAGES)]


def _lookup_sql(provider_message_id: str) -> tuple[str, str]:
    """Apply a DELIVERED report; the SELECT it ran on the message table, and its outcome."""
    report = StatusReport(
        channel="tiktok", provider_message_id=provider_message_id, status="delivered", at=timezone.now()
    )
    with CaptureQueriesContext(connection) as queries:
        outcome = message_status_apply(report=report)
    [sql] = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('SELECT "inbox_message"."id"')]
    return sql, outcome


def test_a_report_reads_a_few_pages_of_a_large_message_table_not_all_of_it():
    _, ids = _world()
    sql, outcome = _lookup_sql(ids[12_345])
    assert outcome == StatusOutcome.APPLIED
    assert Message.objects.get(provider_message_id=ids[12_345]).status == "delivered"

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}")
            (plan,) = cursor.fetchone()
            plan = plan if isinstance(plan, list) else json.loads(plan)

            def message_nodes(node):
                if node.get("Relation Name") == "inbox_message":
                    yield node
                for child in node.get("Plans", []):
                    yield from message_nodes(child)

            [node] = list(message_nodes(plan[0]["Plan"]))
            pages = node.get("Shared Hit Blocks", 0) + node.get("Shared Read Blocks", 0)
            # The table is ~300 pages and its unique index ~100: a lookup by id touches a handful (the root, a
            # leaf, the row). Before the index, the planner read all of one or the other.
            assert node["Node Type"] in ("Index Scan", "Bitmap Heap Scan", "Index Only Scan"), node["Node Type"]
            assert pages <= 10, (pages, node)
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
            details = [row[-1] for row in cursor.fetchall()]
            [message] = [d for d in details if " m " in f" {d} " or "inbox_message" in d]
            # SQLite: a SEARCH bound by the provider id, not a SCAN. (With its statistics SQLite skip-scans the unique
            # index's few endpoints, so this holds there without the new index too: PostgreSQL is what it guards.)
            assert message.startswith("SEARCH") and "provider_message_id=?" in message, details
