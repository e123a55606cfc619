"""Report percentiles from the histograms of shown values (ReportHistogram) equal the exact computation they
replace: percentile_disc over every sample (ReportCycle), then rounded to minutes with one decimal — per day, per
agent, per team, for the whole range, under the agent and team filters; ties, one sample, even and odd counts,
resolutions of days, and seconds whose minutes sit on a rounding tie."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from inbox.automation.models import Team
from inbox.models import Inbox, ReportCycle, ReportHistogram
from inbox.reports.rollups import shown_tenths
from inbox.reports.selectors import _figures, _grouped_figures, _run
from tests.inbox.helpers import api
from tests.inbox.reports_helpers import Stream

pytestmark = pytest.mark.django_db
BERLIN = ZoneInfo("Europe/Berlin")
RANGE = timedelta(days=3)  # the charts' range: from the first day to three days later


@pytest.fixture(autouse=True)
def _no_celery(monkeypatch):
    """The broker is the boundary: sends are only recorded, not delivered."""
    monkeypatch.setattr("inbox.outbox.schedule_send", lambda message_id, attempt_id=None: None)


def percentile_disc(values: list, fraction: float):
    """PostgreSQL's percentile_disc, written again: the first sample whose position reaches the fraction."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def exact(samples: list) -> tuple:
    """What the charts showed before the histograms: the percentile of the raw seconds, then rounded."""
    return len(samples), round(percentile_disc(samples, 0.5) / 60, 1), round(percentile_disc(samples, 0.9) / 60, 1)


def test_a_histogram_of_shown_values_gives_the_rounded_percentiles_of_the_samples():
    """Rounding keeps the order, so percentile_disc commutes with it: checked on many random sets, whose seconds
    include the x.x5-minute ties (6k + 3 seconds) where float rounding goes either way."""
    rng = random.Random(20261130)
    for _ in range(2000):
        n = rng.choice([1, 2, 3, 4, 5, 10, 11, 50, 101])
        pool = [rng.choice([3, 9, 15, 21, 27, 33]) + 6 * rng.randrange(0, 2000) for _ in range(4)]
        samples = [rng.choice(pool) if rng.random() < 0.4 else rng.randrange(0, 5 * 86400) for _ in range(n)]
        histogram: dict[str, int] = defaultdict(int)
        for seconds in samples:
            histogram[str(shown_tenths(seconds))] += 1
        assert _figures(histogram) == exact(samples), samples
    assert (shown_tenths(3), shown_tenths(9), shown_tenths(86400 * 3 + 7)) == (1, 1, 43201)  # round(9 / 60, 1) == 0.1


def test_percentiles_of_many_histogram_rows_are_those_of_all_their_samples():
    """A chart's group is several histogram rows (ascending runs, counts above one expanded, counts of one kept as
    they are) sorted together, and its whole range a selection over the sorted groups: both equal percentile_disc
    over every sample of the rows, for random rows with ties inside and across rows."""
    rng = random.Random(20261201)
    for _ in range(300):
        groups, every = defaultdict(list), defaultdict(list)
        for _row in range(rng.randrange(1, 12)):
            key = rng.randrange(3)
            counts: dict[int, int] = defaultdict(int)
            for _sample in range(rng.randrange(1, 30)):
                counts[rng.randrange(0, 40) if rng.random() < 0.5 else rng.randrange(0, 5000)] += 1
            tenths = sorted(counts)
            groups[key] += _run(tenths, [counts[t] for t in tenths])
            every[key] += [t for t in tenths for _ in range(counts[t])]
        found = _grouped_figures(groups, whole=True)
        wanted = {key: values for key, values in every.items()}
        wanted[None] = [value for values in every.values() for value in values]
        for key, values in wanted.items():
            expected = (len(values), percentile_disc(values, 0.5) / 10, percentile_disc(values, 0.9) / 10)
            assert found[key] == expected, (key, values)
    assert _run([5, 7], [1, 1]) == [5, 7] and _run([5, 7], [2, 1]) == [5, 5, 7]


# (customer, day, responder, first response seconds, then resolved by the responder this many seconds later)
CONVERSATIONS = [
    ("c1", 0, "ada", 3, 2 * 86400 + 7),  # resolved two days later
    ("c2", 0, "ada", 9, None),  # 0.15 minutes: shown 0.1 (the float is below the tie)
    ("c3", 0, "ben", 9, None),  # a tie with c2, another agent
    ("c4", 0, "cy", 600, 45 * 60),
    ("c5", 0, "ada", 601, None),  # 10.0 minutes as 600 is: a tie of shown values, not of seconds
    ("c6", 0, "ben", 63, 90),
    ("c7", 1, "ada", 3, 600),
    ("c8", 1, "ben", 1203, None),  # 20.05 minutes
    ("c9", 1, "cy", 9, 3 * 86400),
    ("c10", 1, "ada", 5 * 3600 + 27, 3),
    ("c11", 1, "cy", 9, None),
    ("c12", 2, "ben", 5, 600),  # the only sample of its day
]


@pytest.fixture
def history(django_user_model, django_capture_on_commit_callbacks):
    inbox = Inbox.objects.create(name="Support", time_zone="Europe/Berlin")
    people = {name: django_user_model.objects.create_user(name, password="pw") for name in ("ada", "ben", "cy")}
    admin = django_user_model.objects.create_superuser("admin", password="pw")
    inbox.members.add(*people.values())
    front = Team.objects.create(inbox=inbox, name="Front")
    front.members.add(people["ada"], people["cy"])
    billing = Team.objects.create(inbox=inbox, name="Billing")
    billing.members.add(people["ben"], people["cy"])  # cy is in both teams
    s = Stream(inbox, django_capture_on_commit_callbacks)
    start = timezone.now().astimezone(BERLIN).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=6)
    with time_machine.travel(start, tick=False) as clock:
        for index, (user, day, responder, first, resolution) in enumerate(CONVERSATIONS):
            clock.move_to(start + timedelta(days=day, minutes=20 * index))
            conversation = s.inbound(user, 1)
            clock.shift(timedelta(seconds=first))
            s.reply(conversation, people[responder])
            if resolution is not None:
                clock.shift(timedelta(seconds=resolution))
                s.status(conversation_id=conversation.pk, status="resolved", actor=people[responder])
    return {"inbox": inbox, "admin": admin, "people": people, "front": front, "billing": billing, "start": start}


def expected(history, *, agents=None, pairs=None) -> dict:
    """The old computation, from every cycle: {(metric, group): (count, median, p90)}; groups: ("day", day),
    ("agent", id), ("team", id), ("all",)."""
    samples: dict[tuple, list] = defaultdict(list)
    for cycle in ReportCycle.objects.filter(inbox=history["inbox"]):
        for metric, day, agent, seconds in (
            ("first", cycle.first_response_day, cycle.responder_id, cycle.first_response_seconds),
            ("resolution", cycle.resolved_day, cycle.agent_id, cycle.resolution_seconds),
        ):
            if day is None or not history["start"].date() <= day <= history["start"].date() + RANGE:
                continue  # c9's resolution is after the range
            for team_id, _inbox_id, member in pairs or []:
                if member == agent:
                    samples[(metric, "team", team_id)].append(seconds)
            if agents is not None and agent not in agents:
                continue
            for group in (("day", day.isoformat()), ("agent", agent), ("all",)):
                samples[(metric, *group)].append(seconds)
    return {key: exact(values) for key, values in samples.items()}


def chart(history, name: str, **extra) -> dict:
    since = history["start"].date()
    params = {"since": since.isoformat(), "until": (since + RANGE).isoformat(), **extra}
    answer = api(history["admin"]).get(f"/api/v1/reports/{name}/", params)
    assert answer.status_code == 200, answer.content
    return answer.json()


def figures(row: dict, prefix: str, count: str | None = None) -> tuple:
    return row.get(count or f"{prefix}_count"), row[f"{prefix}_median"], row[f"{prefix}_p90"]


def test_the_data_has_the_cases_that_matter(history):
    cycles = list(ReportCycle.objects.filter(inbox=history["inbox"]))
    seconds = [cycle.first_response_seconds for cycle in cycles]
    assert len(seconds) == len(CONVERSATIONS) and len(set(seconds)) < len(seconds)  # ties
    assert max(cycle.resolution_seconds or 0 for cycle in cycles) > 3 * 86400  # days
    sizes = {len([c for c in cycles if c.first_response_day == day]) for day in {c.first_response_day for c in cycles}}
    assert {1} < sizes and any(n % 2 for n in sizes) and any(n % 2 == 0 for n in sizes)
    # Ten rows of histograms (inbox × day × agent × metric), not a row per sample.
    assert ReportHistogram.objects.count() < len(cycles) + len([c for c in cycles if c.resolved_at])


@pytest.mark.parametrize("scope", ["all", "agent", "team"])
def test_response_times_per_day_equal_the_exact_percentiles(history, scope):
    extra, agents = {}, None
    if scope == "agent":
        extra, agents = {"agent": history["people"]["ada"].pk}, {history["people"]["ada"].pk}
    elif scope == "team":
        extra = {"team": history["front"].pk}
        agents = set(history["front"].members.values_list("pk", flat=True))
    want = expected(history, agents=agents)
    answer = chart(history, "response-times", **extra)
    seen = 0
    for row in answer["rows"]:
        for metric, prefix in (("first", "first_response"), ("resolution", "resolution")):
            got = figures(row, prefix)
            assert got == want.get((metric, "day", row["day"]), (0, None, None)), (scope, row["day"], metric)
            seen += got[0]
    assert seen > 0
    for metric, prefix in (("first", "first_response"), ("resolution", "resolution")):
        assert figures(answer["totals"], prefix) == want[(metric, "all")], (scope, metric)


@pytest.mark.parametrize("team", [False, True])
def test_agents_chart_equals_the_exact_percentiles(history, team):
    extra, agents = {}, None
    if team:
        extra = {"team": history["billing"].pk}
        agents = set(history["billing"].members.values_list("pk", flat=True))
    want = expected(history, agents=agents)
    rows = {row["agent_id"] or 0: row for row in chart(history, "agents", **extra)["rows"]}
    assert {key[2] for key in want if key[1] == "agent"} <= set(rows)
    for agent_id, row in rows.items():
        assert figures(row, "first_response") == want.get(("first", "agent", agent_id), (0, None, None))
        resolution = want.get(("resolution", "agent", agent_id), (0, None, None))
        assert (row["resolution_median"], row["resolution_p90"]) == resolution[1:]


def test_teams_chart_equals_the_exact_percentiles(history):
    teams = (history["front"], history["billing"])
    pairs = [(team.pk, team.inbox_id, member.pk) for team in teams for member in team.members.all()]
    want = expected(history, pairs=pairs)
    rows = {row["team_id"]: row for row in chart(history, "teams")["rows"]}
    for team in teams:
        row = rows[team.pk]
        assert figures(row, "first_response") == want[("first", "team", team.pk)]
        assert (row["resolution_median"], row["resolution_p90"]) == want[("resolution", "team", team.pk)][1:]
