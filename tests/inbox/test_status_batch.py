"""A batch of status reports is applied in a fixed number of statements and leaves what the same reports applied one
by one leave: every message column a report may touch, the audit, the outcomes and the domain events.

On PostgreSQL the batch is two statements whatever its size: the locked lookup, and one statement that writes each
changed message once and audits the moves the guarded UPDATE made (bench/README.md, "Delivery and seen reports: the
apply path").
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inbox.events import StatusReport
from inbox.models import AuditLog, Contact, Conversation, Message
from inbox.services import StatusOutcome, message_status_apply, message_statuses_apply

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0) - timedelta(hours=1)


def at(minutes: int):
    return T0 + timedelta(minutes=minutes)


def _messages(inbox, prefix: str, endpoint: str = "biz-1") -> None:
    """Outbound messages in each state a report can meet."""
    contact = Contact.objects.create(channel="tiktok", endpoint_id=endpoint, channel_user_id=f"{prefix}-user")
    conversation = Conversation.objects.create(inbox=inbox, contact=contact, last_activity_at=at(0))
    states = {
        "queued": {"status": "queued", "queued_at": at(0)},
        "accepted": {"status": "accepted", "queued_at": at(0), "accepted_at": at(1)},
        "accepted2": {"status": "accepted", "queued_at": at(0), "accepted_at": at(1)},
        "accepted3": {"status": "accepted", "queued_at": at(0), "accepted_at": at(1), "provider_status": {"n": 1}},
        "delivered": {"status": "delivered", "queued_at": at(0), "accepted_at": at(1), "delivered_at": at(2)},
        "seen": {"status": "seen", "queued_at": at(0), "accepted_at": at(1), "seen_at": at(3)},
        "failed": {"status": "failed", "queued_at": at(0), "failed_at": at(2), "error": {"name": "EC_X"}},
    }
    for name, fields in states.items():
        Message.objects.create(
            conversation=conversation,
            direction="out",
            type="text",
            text=name,
            channel="tiktok",
            provider_message_id=f"{prefix}-{name}",
            sent_at=at(0),
            **fields,
        )


def _reports(prefix: str) -> list[StatusReport]:
    def report(name: str, status: str, minutes: int, **extra) -> StatusReport:
        return StatusReport(
            channel="tiktok", provider_message_id=f"{prefix}-{name}", status=status, at=at(minutes), **extra
        )

    delivered = {"provider_status": {"groupName": "DELIVERED", "name": "DELIVERED_TO_HANDSET"}}
    failure = {"provider_status": {"groupName": "UNDELIVERABLE"}, "error": {"name": "EC_ABSENT", "permanent": True}}
    return [
        report("queued", "accepted", 4, provider_status={"groupName": "ACCEPTED"}),
        report("queued", "delivered", 5, **delivered),  # two moves of one message in one batch
        report("queued", "seen", 6),
        report("accepted", "seen", 7),  # seen before delivered: delivered still records its time
        report("accepted", "delivered", 6, **delivered),
        report("accepted2", "failed", 5, **failure),
        report("accepted2", "delivered", 8, **delivered),  # delivered wins over a failure
        report("accepted3", "seen", 9),  # no provider status: the stored one is kept
        report("delivered", "failed", 9, **failure),  # stale: a delivered message never fails, no time either
        report("delivered", "delivered", 9, **delivered),  # stale: its time is kept
        report("seen", "delivered", 10, **delivered),  # stale, fills delivered_at
        report("failed", "seen", 11),  # a failed message becomes seen
        report("seen", "seen", 12),  # repeated
        report("nowhere", "delivered", 3, **delivered),  # unknown
    ]


def _state(prefix: str) -> dict:
    messages = Message.objects.filter(provider_message_id__startswith=f"{prefix}-").order_by("pk")
    return {
        "messages": [
            (
                m.provider_message_id.removeprefix(f"{prefix}-"),
                m.status,
                m.queued_at,
                m.accepted_at,
                m.delivered_at,
                m.seen_at,
                m.failed_at,
                m.provider_status,
                m.error,
            )
            for m in messages
        ],
        "audit": [
            (a.message.provider_message_id.removeprefix(f"{prefix}-"), a.actor_kind, a.action, a.before, a.after)
            for a in AuditLog.objects.filter(message__in=messages).select_related("message").order_by("pk")
        ],
    }


def _events(domain_events: list, prefix: str) -> list[tuple]:
    ids = dict(Message.objects.filter(provider_message_id__startswith=f"{prefix}-").values_list("pk", "text"))
    return [
        (event.type, ids[event.message_id], event.status, event.previous_status, event.at, event.attempt)
        for event in domain_events
        if getattr(event, "message_id", None) in ids
    ]


def test_a_batch_leaves_what_the_reports_one_by_one_leave(inbox, domain_events):
    _messages(inbox, "single")
    _messages(inbox, "batch")

    single_outcomes = [message_status_apply(report=report) for report in _reports("single")]
    batch_outcomes = message_statuses_apply(_reports("batch"))

    assert batch_outcomes == single_outcomes
    single, batch = _state("single"), _state("batch")
    assert batch == single
    assert _events(domain_events, "batch") == _events(domain_events, "single")
    # And the stream did what it says.
    messages = {row[0]: row for row in single["messages"]}
    assert messages["queued"][1] == "seen" and messages["queued"][7] == {
        "groupName": "DELIVERED",
        "name": "DELIVERED_TO_HANDSET",
    }
    assert messages["accepted"][1:7] == ("seen", at(0), at(1), at(6), at(7), None)
    assert messages["accepted2"][1] == "delivered" and messages["accepted2"][8] == {
        "name": "EC_ABSENT",
        "permanent": True,
    }
    assert messages["accepted3"][1] == "seen" and messages["accepted3"][7] == {"n": 1}
    assert messages["delivered"][1:7] == ("delivered", at(0), at(1), at(2), None, None)
    assert messages["seen"][4] == at(10) and messages["seen"][5] == at(3)
    assert messages["failed"][1] == "seen" and messages["failed"][8] == {"name": "EC_X"}
    assert single_outcomes[-1] == StatusOutcome.UNKNOWN
    assert single_outcomes.count(StatusOutcome.APPLIED) == 8
    assert len(single["audit"]) == 8


def test_a_batch_of_reports_costs_the_same_statements_whatever_its_size(inbox):
    _messages(inbox, "one")
    _messages(inbox, "many")
    with CaptureQueriesContext(connection) as one:
        message_statuses_apply(_reports("one")[:1])
    with CaptureQueriesContext(connection) as many:
        message_statuses_apply(_reports("many"))
    assert Message.objects.get(provider_message_id="many-accepted").status == "seen"
    if connection.vendor == "postgresql":
        # The locked lookup, then one statement writing every changed message and its audit rows.
        assert len(one) == len(many) == 2, [q["sql"][:80] for q in many.captured_queries]
    else:  # SQLite (development): a guarded UPDATE per changed message, then the audit rows
        assert len(one) == 3 and len(many) == 2 + 6  # six messages changed


def test_a_move_the_guarded_update_refuses_is_not_audited(inbox, monkeypatch):
    """The audit rows are written for the messages the UPDATE really moved: when the Python side would move a status
    down (as a writer racing past the row lock might), the WHERE refuses it and nothing is audited."""
    from inbox.services import statuses

    _messages(inbox, "race")
    monkeypatch.setattr(statuses, "moves_up", lambda current, new: True)
    message_statuses_apply(
        [
            StatusReport(channel="tiktok", provider_message_id="race-seen", status="delivered", at=at(20)),
            StatusReport(channel="tiktok", provider_message_id="race-accepted", status="delivered", at=at(21)),
        ]
    )
    seen = Message.objects.get(provider_message_id="race-seen")
    assert (seen.status, seen.delivered_at) == ("seen", None)
    assert list(AuditLog.objects.values_list("message__provider_message_id", "after")) == [
        ("race-accepted", {"status": "delivered"})
    ]


def test_an_agents_audit_rows_are_found_by_the_partial_actor_index_when_the_agent_is_deleted(inbox, django_user_model):
    """The actor index holds only rows with an actor (a status report's audit row has none, and writes no entry): a
    user's deletion (SET NULL on their audit rows) still finds their rows by it, not by reading the audit log."""
    agent = django_user_model.objects.create_user("agent-x")
    _messages(inbox, "big")
    message = Message.objects.filter(provider_message_id__startswith="big-").first()
    AuditLog.objects.bulk_create(
        AuditLog(
            actor_kind="provider", action="message.status", message=message, conversation_id=message.conversation_id
        )
        for _ in range(5_000)
    )
    AuditLog.objects.create(actor=agent, actor_kind="agent", action="conversation.assign")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE inbox_auditlog" if connection.vendor == "postgresql" else "ANALYZE")
    # What the deletion's SET NULL asks (Django: UPDATE … WHERE actor_id IN (…)), as a SELECT to explain.
    query = AuditLog.objects.filter(actor_id__in=[agent.pk]).order_by().values("id")
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            (plan,) = cursor.fetchone()
            plan = plan[0]["Plan"] if isinstance(plan, list) else plan["Plan"]
            text = json.dumps(plan)
            assert '"Index Name": "auditlog_actor"' in text and "Seq Scan" not in text, plan
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            details = " ".join(row[-1] for row in cursor.fetchall())
            assert "auditlog_actor" in details, details
    agent.delete()
    assert AuditLog.objects.filter(action="conversation.assign", actor__isnull=True).count() == 1
