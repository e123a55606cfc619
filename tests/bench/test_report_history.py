"""The reporting bench's data (bench/data.py `report_history`, set-based SQL): the rows it writes are what its
docstring says, and the roll-ups rebuilt from them hold the figures computed here from the recipe alone."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import Count, Q, Sum
from django.utils import timezone

from bench import data
from inbox.automation.models import CsatSurvey
from inbox.models import AuditLog, Conversation, Inbox, Message, ReportCycle, ReportDay
from inbox.reports import rollups
from inbox.reports.models import ReportCsat

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the bench data is PostgreSQL SQL"),
]

N, PER, RATINGS = 60, 10, [5, 5, 4, 5, 3, 4, 5, 2, 4, 1]


@pytest.fixture
def history(django_user_model):
    inbox = Inbox.objects.create(name="Bench reporting")
    agents = [django_user_model.objects.create_user(f"agent-{i}") for i in range(3)]
    data.report_history(inbox_id=inbox.pk, agent_ids=[a.pk for a in agents], conversations=N, messages_per=PER, days=90)
    return inbox, agents


def test_rows_follow_the_recipe(history):
    inbox, agents = history
    messages = Message.objects.filter(conversation__inbox=inbox)
    assert messages.count() == N * PER
    assert messages.filter(direction="in").count() == N * PER // 2
    out = messages.filter(direction="out")
    assert set(out.values_list("author_id", flat=True)) == {a.pk for a in agents}
    assert not out.exclude(status="seen").exists()
    resolved = [i for i in range(N) if i % 10 < 7]
    assert Conversation.objects.filter(inbox=inbox, status="resolved").count() == len(resolved)
    assert AuditLog.objects.filter(conversation__inbox=inbox, action="conversation.resolved").count() == len(resolved)
    assert messages.filter(referral__source="ad").count() == len([i for i in range(N) if i % 5 == 0])
    assert CsatSurvey.objects.filter(conversation__inbox=inbox, rating__isnull=False).count() == len(
        [i for i in resolved if i % 3 == 0]
    )
    # Nothing in the future: the charts' range ends today.
    assert not messages.filter(created_at__gt=timezone.now()).exists()
    assert not AuditLog.objects.filter(conversation__inbox=inbox, created_at__gt=timezone.now()).exists()


def test_rebuilt_rollups_hold_the_recipes_figures(history):
    inbox, _agents = history
    rollups.rebuild(inbox_ids=[inbox.pk])
    resolved = [i for i in range(N) if i % 10 < 7]
    totals = ReportDay.objects.filter(inbox=inbox).aggregate(
        opened_total=Sum("opened"),
        resolved_total=Sum("resolved"),
        messages_in=Sum("messages_in"),
        messages_out=Sum("messages_out"),
        first_responses=Sum("first_response_count"),
        ads=Sum("opened", filter=Q(source_kind="ad")),
        links=Sum("opened", filter=Q(source_kind="tiktok_me")),
    )
    assert totals == {
        "opened_total": N,
        "resolved_total": len(resolved),
        "messages_in": N * PER // 2,
        "messages_out": N * PER // 2,
        "first_responses": N,
        "ads": len([i for i in range(N) if i % 5 == 0]),
        "links": len([i for i in range(N) if i % 10 == 1]),
    }
    # The first reply comes 60 + (1336 i mod 2161) seconds after the customer's first message: spread over
    # seconds within 1–37 minutes, not whole minutes.
    gaps = [60 + (1336 * i) % 2161 for i in range(N)]
    first = sorted(ReportCycle.objects.filter(inbox=inbox).values_list("first_response_seconds", flat=True))
    assert first == sorted(gaps)
    assert 60 <= first[0] and first[-1] <= 37 * 60
    assert len(set(first)) == N and len({s % 60 for s in first}) > N // 2
    # Resolved 10 minutes after the last of the PER messages, PER - 1 gaps after the first.
    resolution = ReportCycle.objects.filter(inbox=inbox, resolution_seconds__isnull=False)
    assert sorted(resolution.values_list("resolution_seconds", flat=True)) == sorted(
        (PER - 1) * gaps[i] + 600 for i in resolved
    )
    rated = [RATINGS[i % 10] for i in resolved if i % 3 == 0]
    csat = ReportCsat.objects.filter(inbox=inbox).values("rating").annotate(n=Sum("responses")).order_by("rating")
    assert {row["rating"]: row["n"] for row in csat} == {r: rated.count(r) for r in set(rated)}
    assert ReportCycle.objects.filter(inbox=inbox).aggregate(n=Count("pk"))["n"] == N
