"""`/api/v1/reports/…`: figures from the roll-ups equal figures computed here from the raw rows; scoped to the
caller's inboxes; filters (a team's too); CSV equal to the JSON table; bad input is a 422 with a reason; CSAT."""

from __future__ import annotations

import csv
import io
import math
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from inbox.automation.csat import csat_rate, survey_token
from inbox.automation.models import CsatSurvey, InboxRouting, Team
from inbox.models import AuditLog, Inbox, Message
from inbox.reports.api import cell_text
from tests.inbox.helpers import api
from tests.inbox.reports_helpers import AD, Stream

pytestmark = pytest.mark.django_db
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture(autouse=True)
def _no_celery(monkeypatch):
    """The broker is the boundary: sends and conversion reports are only recorded, not delivered."""
    monkeypatch.setattr("inbox.outbox.schedule_send", lambda message_id, attempt_id=None: None)
    monkeypatch.setattr("inbox.outbox.schedule_conversion", lambda conversion_id: None)


def percentile_disc(values: list[float], fraction: float) -> float:
    """PostgreSQL's percentile_disc, written again: the first sample whose position reaches the fraction."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


@pytest.fixture
def history(django_user_model, django_capture_on_commit_callbacks):
    support = Inbox.objects.create(name="Support", time_zone="Europe/Berlin")
    other = Inbox.objects.create(name="Other", time_zone="Europe/Berlin")
    agent = django_user_model.objects.create_user("agent", password="pw", first_name="Ada")
    colleague = django_user_model.objects.create_user("colleague", password="pw", first_name="Cole")
    outsider = django_user_model.objects.create_user("outsider", password="pw")
    admin = django_user_model.objects.create_superuser("admin", password="pw")
    support.members.add(agent, colleague)
    other.members.add(outsider)
    InboxRouting.objects.create(inbox=support, csat_enabled=True)  # each resolution asks for a rating
    front = Team.objects.create(inbox=support, name="Front")
    front.members.add(agent)
    billing = Team.objects.create(inbox=support, name="Billing")
    billing.members.add(colleague)
    sales = Team.objects.create(inbox=other, name="Sales")
    sales.members.add(outsider)
    s, o = Stream(support, django_capture_on_commit_callbacks), Stream(other, django_capture_on_commit_callbacks)
    start = timezone.now().astimezone(BERLIN).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=3)
    with time_machine.travel(start, tick=False) as clock:
        alice = s.inbound("alice", 1, referral=AD)
        bob = s.inbound("bob", 1)
        clock.shift(timedelta(minutes=10))
        s.reply(alice, agent)
        clock.shift(timedelta(minutes=10))
        s.status(conversation_id=alice.pk, status="resolved", actor=agent)
        clock.shift(timedelta(minutes=20))
        s.reply(bob, colleague)
        clock.shift(timedelta(days=1))
        carol = s.inbound("carol", 1)
        clock.shift(timedelta(minutes=5))
        s.reply(carol, colleague)
        s.status(conversation_id=bob.pk, status="resolved", actor=agent)
        o.inbound("zed", 1)
        clock.shift(timedelta(minutes=30))
        for conversation, rating in ((alice, 5), (bob, 2)):  # the customers rate on the public page
            survey = CsatSurvey.objects.get(conversation=conversation)
            with django_capture_on_commit_callbacks(execute=True):
                csat_rate(token=survey_token(survey), rating=rating)
    return {
        "support": support,
        "other": other,
        "agent": agent,
        "colleague": colleague,
        "outsider": outsider,
        "admin": admin,
        "front": front,
        "billing": billing,
        "sales": sales,
        "day0": start.date(),
        "day1": (start + timedelta(days=1)).date(),
    }


def params(history, **extra):
    return {"since": history["day0"].isoformat(), "until": (history["day0"] + timedelta(days=2)).isoformat(), **extra}


def test_volume_per_day_of_the_callers_inboxes(history):
    answer = api(history["agent"]).get("/api/v1/reports/volume/", params(history))
    assert answer.status_code == 200, answer.content
    rows = {row["day"]: row for row in answer.json()["rows"]}
    assert len(rows) == 3  # every day of the range, empty ones too
    assert rows[history["day0"].isoformat()] == {
        "day": history["day0"].isoformat(),
        "opened": 2,
        "resolved": 1,
        "messages_in": 2,
        "messages_out": 2,
    }
    assert rows[history["day1"].isoformat()]["opened"] == 1  # zed, in the other inbox, is not the agent's
    assert answer.json()["totals"] == {"opened": 3, "resolved": 2, "messages_in": 3, "messages_out": 3}


def test_response_times_equal_the_raw_rows(history):
    support = history["support"]
    samples = []
    for conversation in support.conversations.all():
        inbound = conversation.messages.filter(direction=Message.Direction.IN).order_by("created_at").first()
        reply = conversation.messages.filter(direction=Message.Direction.OUT).order_by("queued_at").first()
        samples.append((reply.queued_at - inbound.created_at).total_seconds())
    answer = api(history["admin"]).get("/api/v1/reports/response-times/", params(history, inbox=support.pk)).json()
    assert sorted(samples) == [5 * 60, 10 * 60, 40 * 60]
    assert answer["totals"]["first_response_count"] == 3
    assert answer["totals"]["first_response_median"] == round(percentile_disc(samples, 0.5) / 60, 1) == 10.0
    assert answer["totals"]["first_response_p90"] == round(percentile_disc(samples, 0.9) / 60, 1) == 40.0
    day0 = next(row for row in answer["rows"] if row["day"] == history["day0"].isoformat())
    assert (day0["first_response_median"], day0["resolution_median"], day0["resolution_count"]) == (10.0, 20.0, 1)


def test_agent_filter_and_agents_chart(history):
    colleague = history["colleague"]
    volume = api(history["agent"]).get("/api/v1/reports/volume/", params(history, agent=colleague.pk)).json()
    assert volume["totals"]["messages_out"] == 2
    agents = api(history["agent"]).get("/api/v1/reports/agents/", params(history)).json()["rows"]
    by_name = {row["agent"]: row for row in agents}
    assert by_name["Ada"]["messages_out"] == 1 and by_name["Cole"]["messages_out"] == 2
    assert by_name["Ada"]["resolved"] == 2  # both unassigned: a resolution is the resolving agent's
    assert "No agent" in by_name and by_name["No agent"]["opened"] == 1  # carol: open, unassigned
    assert by_name["Cole"]["first_response_median"] == 5.0  # carol 5 min, bob 40 min: the lower middle


def test_sources_heatmap_and_index(history):
    client = api(history["agent"])
    sources = client.get("/api/v1/reports/sources/", params(history)).json()["rows"]
    ad = next(row for row in sources if row["source_kind"] == "ad")
    assert (ad["source_id"], ad["name"], ad["opened"], ad["resolution_rate"]) == ("ad-7", "Winter sale", 1, 100.0)
    organic = next(row for row in sources if row["source_kind"] == "organic")
    assert (organic["opened"], organic["resolution_rate"]) == (2, 50.0)
    heat = client.get("/api/v1/reports/heatmap/", params(history)).json()
    weekday = history["day0"].strftime("%a")
    row = next(row for row in heat["rows"] if row["weekday"] == weekday)
    assert row["h09"] >= 2 and heat["totals"]["opened"] == 3
    index = client.get("/api/v1/reports/").json()
    assert [inbox["name"] for inbox in index["inboxes"]] == ["Support"]
    assert {agent["name"] for agent in index["agents"]} == {"Ada", "Cole"}
    assert [chart["key"] for chart in index["charts"]] == [
        "volume",
        "response-times",
        "heatmap",
        "agents",
        "sources",
        "teams",
        "csat",
        "csat-agents",
    ]
    assert [(team["name"], team["members"]) for team in index["teams"]] == [
        ("Billing", [history["colleague"].pk]),
        ("Front", [history["agent"].pk]),
    ]  # the support inbox's teams only: Sales is another inbox's


def test_scoped_to_the_inboxes_the_caller_may_see(history):
    outsider = api(history["outsider"])
    refused = outsider.get("/api/v1/reports/volume/", params(history, inbox=history["support"].pk))
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_inbox"
    own = outsider.get("/api/v1/reports/volume/", params(history)).json()
    assert own["totals"]["opened"] == 1  # zed only
    everything = api(history["admin"]).get("/api/v1/reports/volume/", params(history)).json()
    assert everything["totals"]["opened"] == 4
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/reports/volume/").status_code in (401, 403)


@pytest.mark.parametrize(
    "chart", ["volume", "response-times", "heatmap", "agents", "sources", "teams", "csat", "csat-agents"]
)
def test_csv_is_the_table(history, chart):
    client = api(history["agent"])
    table = client.get(f"/api/v1/reports/{chart}/", params(history)).json()
    answer = client.get(f"/api/v1/reports/{chart}/", params(history, format="csv"))
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/csv")
    assert answer["Content-Disposition"].startswith(f'attachment; filename="{chart}-')
    lines = list(csv.reader(io.StringIO(answer.content.decode())))
    assert lines[0] == [column["label"] for column in table["columns"]]
    assert lines[1:] == [[cell_text(row.get(c["key"]), c["unit"]) for c in table["columns"]] for row in table["rows"]]
    assert len(lines) == len(table["rows"]) + 1 > 1


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"since": "2026-02-10", "until": "2026-02-01"}, "since"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2020-01-01", "until": "2026-01-01"}, "since"),
        ({"agent": "-3"}, "agent"),
        ({"inbox": "x"}, "inbox"),
        ({"team": "0"}, "team"),
    ],
)
def test_bad_filters_are_a_422_with_the_field(history, query, field):
    answer = api(history["agent"]).get("/api/v1/reports/volume/", query)
    assert answer.status_code == 422
    assert field in answer.json()["fields"]
    csv_answer = api(history["agent"]).get("/api/v1/reports/volume/", {**query, "format": "csv"})
    assert csv_answer.status_code == 422 and b"invalid" in csv_answer.content


def test_the_reports_page_needs_a_login_and_links_from_the_inbox(client, history):
    assert client.get("/reports/").status_code == 302
    client.force_login(history["agent"])
    page = client.get("/reports/")
    assert page.status_code == 200 and b'id="report-charts"' in page.content and b"reports-config" in page.content
    assert b'href="/reports/"' in client.get("/").content


def csat_from_raw_rows(inbox, since, until) -> dict:
    """The ratings of an inbox's conversations given in the range (the inbox's local days), each for the agent of
    the resolution it rates: the assignee then, or whoever resolved it — read from the surveys and the audit log."""
    zone = ZoneInfo(inbox.time_zone)
    per_agent: dict = {}
    for survey in CsatSurvey.objects.filter(conversation__inbox=inbox, rating__isnull=False):
        if not since <= survey.rated_at.astimezone(zone).date() <= until:
            continue
        audits = AuditLog.objects.filter(conversation=survey.conversation, created_at__lte=survey.created_at)
        resolution = audits.filter(action="conversation.resolved").order_by("-created_at", "-pk").first()
        assignment = (
            audits.filter(
                action__in=["conversation.assigned", "conversation.unassigned"], created_at__lte=resolution.created_at
            )
            .order_by("-created_at", "-pk")
            .first()
        )
        agent = (assignment and assignment.after.get("assignee")) or resolution.actor_id
        per_agent.setdefault(agent, []).append(survey.rating)
    return per_agent


def test_csat_equals_the_raw_rows(history):
    support, until = history["support"], history["day0"] + timedelta(days=2)
    per_agent = csat_from_raw_rows(support, history["day0"], until)
    ratings = [rating for values in per_agent.values() for rating in values]
    assert sorted(ratings) == [2, 5] and set(per_agent) == {history["agent"].pk}
    client = api(history["agent"])
    chart = client.get("/api/v1/reports/csat/", params(history)).json()
    assert chart["totals"] == {
        "responses": len(ratings),
        "average": round(sum(ratings) / len(ratings), 2),
        "satisfied": round(100 * sum(r >= 4 for r in ratings) / len(ratings), 1),
    }
    assert {row["rating"]: row["responses"] for row in chart["rows"]} == {r: ratings.count(r) for r in range(1, 6)}
    assert [row["rating"] for row in chart["rows"]] == [5, 4, 3, 2, 1]
    agents = client.get("/api/v1/reports/csat-agents/", params(history)).json()["rows"]
    assert [(row["agent_id"], row["responses"], row["average"]) for row in agents] == [
        (pk, len(values), round(sum(values) / len(values), 2)) for pk, values in per_agent.items()
    ]
    assert agents[0]["rating_5"] == 1 and agents[0]["rating_2"] == 1 and agents[0]["agent"] == "Ada"
    # A range that ends before the ratings were given has none.
    before = client.get("/api/v1/reports/csat/", {"since": "2025-01-01", "until": "2025-01-31"}).json()
    assert before["totals"] == {"responses": 0, "average": None, "satisfied": None}


def test_team_filter_is_its_members_figures(history):
    client = api(history["agent"])
    billing = client.get("/api/v1/reports/volume/", params(history, team=history["billing"].pk)).json()
    assert billing["totals"]["messages_out"] == 2  # Cole's replies, as the agent filter counts them
    agents = client.get("/api/v1/reports/agents/", params(history, team=history["billing"].pk)).json()["rows"]
    assert [row["agent"] for row in agents] == ["Cole"]
    times = client.get("/api/v1/reports/response-times/", params(history, team=history["billing"].pk)).json()
    assert (times["totals"]["first_response_count"], times["totals"]["first_response_median"]) == (2, 5.0)
    assert (
        client.get("/api/v1/reports/csat/", params(history, team=history["billing"].pk)).json()["totals"]["responses"]
        == 0
    )  # the ratings are Ada's resolutions
    front = client.get("/api/v1/reports/csat/", params(history, team=history["front"].pk)).json()
    assert front["totals"]["responses"] == 2
    # With an agent too: the members among them (Cole is not in Front).
    none = client.get(
        "/api/v1/reports/volume/", params(history, team=history["front"].pk, agent=history["colleague"].pk)
    ).json()
    assert none["totals"]["messages_out"] == 0


def test_a_team_of_another_inbox_is_refused(history):
    sales = history["sales"].pk
    refused = api(history["agent"]).get("/api/v1/reports/volume/", params(history, team=sales))
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_team"
    assert "team" in refused.json()["fields"]
    unknown = api(history["agent"]).get("/api/v1/reports/volume/", params(history, team=sales + 1000))
    assert unknown.status_code == 422 and unknown.json()["code"] == "invalid_team"
    mixed = api(history["admin"]).get(
        "/api/v1/reports/volume/", params(history, team=sales, inbox=history["support"].pk)
    )
    assert mixed.status_code == 422 and mixed.json()["code"] == "invalid_team"  # a team of another inbox
    allowed = api(history["admin"]).get("/api/v1/reports/volume/", params(history, team=sales)).json()
    assert allowed["totals"]["opened"] == 0  # zed is unassigned: no member's


def test_teams_chart_equals_its_members_raw_rows(history):
    support = history["support"]
    per_agent = csat_from_raw_rows(support, history["day0"], history["day0"] + timedelta(days=2))
    first_responses: dict = {}
    for conversation in support.conversations.all():
        inbound = conversation.messages.filter(direction=Message.Direction.IN).order_by("created_at").first()
        reply = conversation.messages.filter(direction=Message.Direction.OUT, author__isnull=False)
        reply = reply.exclude(author__username="automation").order_by("queued_at").first()
        first_responses.setdefault(reply.author_id, []).append((reply.queued_at - inbound.created_at).total_seconds())
    rows = api(history["agent"]).get("/api/v1/reports/teams/", params(history)).json()["rows"]
    assert [row["team"] for row in rows] == ["Billing", "Front"]
    for row, team in zip(rows, [history["billing"], history["front"]], strict=True):
        members = list(team.members.values_list("pk", flat=True))
        replies = Message.objects.filter(
            conversation__inbox=support, direction=Message.Direction.OUT, author_id__in=members
        ).count()
        samples = [seconds for member in members for seconds in first_responses.get(member, [])]
        ratings = [rating for member in members for rating in per_agent.get(member, [])]
        assert row["messages_out"] == replies, team.name
        assert row["first_response_median"] == round(percentile_disc(samples, 0.5) / 60, 1), team.name
        assert row["first_response_p90"] == round(percentile_disc(samples, 0.9) / 60, 1), team.name
        assert row["csat_responses"] == len(ratings)
        assert row["csat_average"] == (round(sum(ratings) / len(ratings), 2) if ratings else None)
    assert (rows[0]["first_response_median"], rows[0]["first_response_p90"]) == (5.0, 40.0)  # Cole: carol, bob
    assert (rows[1]["resolved"], rows[1]["csat_average"]) == (2, 3.5)  # Ada resolved both, rated 5 and 2
    assert cell_text(3.5, "avg") == "3.50"


def test_sources_name_an_ad_by_its_latest_name(settings):
    """An ad renamed between two conversations shows its new name (one index probe per source on PostgreSQL)."""
    from datetime import UTC, date, datetime

    from inbox.models import Conversation, ReportCycle, ReportDay
    from inbox.reports import selectors
    from tests.inbox.helpers import receive

    settings.REPORTS_ROLLUPS = "off"  # the roll-up rows below are written by hand
    inbox = Inbox.objects.create(name="Renames")
    day = date(2026, 3, 2)
    for n, name in enumerate(["Spring sale", "Spring sale, final days"]):
        conversation = receive(inbox, f"buyer-{n}", 1, text="hi")
        assert isinstance(conversation, Conversation)
        ReportCycle.objects.create(
            inbox=inbox,
            conversation=conversation,
            seq=0,
            opened_at=datetime(2026, 3, 2, 9 + n, tzinfo=UTC),
            opened_day=day,
            source_kind="ad",
            source_id="ad-9",
            source_name=name,
        )
    ReportDay.objects.create(inbox=inbox, day=day, source_kind="ad", source_id="ad-9", opened=2)
    chart = selectors.sources(selectors.ReportScope(inbox_ids=(inbox.pk,), since=day, until=day))
    assert [(row["source_id"], row["name"], row["opened"]) for row in chart["rows"]] == [
        ("ad-9", "Spring sale, final days", 2)
    ]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the names' index probe is PostgreSQL's path")
def test_an_unnamed_source_costs_its_name_probe_no_rows(settings):
    """The names' index holds named cycles only: the organic source (never named) is probed without walking its
    cycles. Before, its probe filtered out every organic cycle of the inbox (~10,000 rows per request at the bench's
    100,000 conversations)."""
    import json
    from datetime import UTC, date, datetime

    from django.test.utils import CaptureQueriesContext

    from inbox.models import Conversation, ReportCycle, ReportDay
    from inbox.reports import selectors
    from tests.inbox.helpers import receive

    settings.REPORTS_ROLLUPS = "off"  # the roll-up rows below are written by hand
    inbox = Inbox.objects.create(name="Mostly organic")
    day = date(2026, 3, 2)
    conversation = receive(inbox, "buyer", 1, text="hi")
    assert isinstance(conversation, Conversation)
    opened = datetime(2026, 3, 2, 9, tzinfo=UTC)
    ReportCycle.objects.bulk_create(
        [
            ReportCycle(
                inbox=inbox,
                conversation=conversation,
                seq=n,
                opened_at=opened + timedelta(seconds=n),
                opened_day=day,
                source_kind="ad" if n == 0 else "organic",
                source_id="ad-9" if n == 0 else "",
                source_name="Spring sale" if n == 0 else "",
            )
            for n in range(300)
        ]
    )
    ReportDay.objects.create(inbox=inbox, day=day, source_kind="organic", source_id="", opened=299)
    ReportDay.objects.create(inbox=inbox, day=day, source_kind="ad", source_id="ad-9", opened=1)
    scope = selectors.ReportScope(inbox_ids=(inbox.pk,), since=day, until=day)
    with CaptureQueriesContext(connection) as queries:
        chart = selectors.sources(scope)
    assert [(row["source_kind"], row["name"]) for row in chart["rows"]] == [("organic", ""), ("ad", "Spring sale")]
    probe = queries.captured_queries[-1]["sql"]
    assert "reportcycle" in probe
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # the index's content is under test, not the planner's pick
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + probe)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan

    def removed(node: dict) -> int:
        return node.get("Rows Removed by Filter", 0) + sum(removed(child) for child in node.get("Plans", []))

    assert removed(plan[0]["Plan"]) == 0
