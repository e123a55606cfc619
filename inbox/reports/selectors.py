"""Reads of the report roll-ups: one function per chart, each answering a table (columns and rows).

Every chart reads roll-up rows only (ReportDay, ReportHour, ReportHistogram, ReportCsat), never messages nor a
row per conversation (the sources chart's names: one ReportCycle index probe per source). A chart is a dict
`{"chart", "title", "kind", "x", "series", "columns", "rows", "totals"}`: the page draws `series` of `rows`
against `x` and shows the same rows as a table; the CSV export is that table. Durations are minutes (one
decimal), rates percent (one decimal).

Medians and 90th percentiles are `percentile_disc` (as PostgreSQL defines it) over the samples: the smallest
sample with at least half (90 %) of the samples at or below it — always a time that really happened. They are
exact at the precision shown: the samples are kept as shown (minutes with one decimal) in histograms per inbox,
local day, agent and metric (ReportHistogram), read here and sorted per day, agent, team or the whole range;
rounding keeps the order, so the percentile of the shown values is the shown percentile of the samples.

A **team** filter narrows `agent_ids` in `ReportScope` to the team's members and `inbox_ids` to the team's
inbox (every query below filters on the agent columns through `scope.agent_q`); the **CSAT** charts read
`ReportCsat` (ratings per inbox, local day, agent and rating). The API and the page list the charts from CHARTS.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import chain, repeat

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Q, Sum

from inbox.models import Inbox, ReportCycle, ReportDay, ReportHistogram, ReportHour
from inbox.reports.models import ReportCsat

FIRST_RESPONSE, RESOLUTION = ReportHistogram.FIRST_RESPONSE, ReportHistogram.RESOLUTION

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
SOURCE_LABELS = {"organic": "Organic", "ad": "Ad", "tiktok_me": "TikTok.me link", "other": "Other referral"}


@dataclass(frozen=True)
class ReportScope:
    inbox_ids: tuple[int, ...]
    since: date
    until: date
    agent_ids: tuple[int, ...] | None = None  # None: every agent (and none)

    def agent_q(self, field: str = "agent_id") -> Q:
        return Q() if self.agent_ids is None else Q(**{f"{field}__in": self.agent_ids})

    def days(self) -> list[date]:
        return [self.since + timedelta(days=n) for n in range((self.until - self.since).days + 1)]


@contextmanager
def report_reads() -> Iterator[None]:
    """One chart's queries: one transaction (one snapshot)."""
    with transaction.atomic():
        yield


def _average(total: int, count: int) -> float | None:
    return None if not count else round(total / count, 2)


def _percent(part: int, whole: int) -> float | None:
    return None if not whole else round(100 * part / whole, 1)


def _column(key: str, label: str, unit: str = "") -> dict:
    return {"key": key, "label": label, "unit": unit}


def _days_qs(scope: ReportScope):
    return ReportDay.objects.filter(
        scope.agent_q(), inbox_id__in=scope.inbox_ids, day__gte=scope.since, day__lte=scope.until
    )


def _histogram_rows(scope: ReportScope, metric: str, agent_ids=None) -> list[tuple]:
    """(inbox id, day, agent id, tenths, samples) of the histograms of `metric` in scope, under the agent filter (or,
    given, of these agents: the teams chart's members)."""
    agent_ids = scope.agent_ids if agent_ids is None else agent_ids
    if connection.vendor != "postgresql":
        rows = ReportHistogram.objects.filter(
            inbox_id__in=scope.inbox_ids, metric=metric, day__gte=scope.since, day__lte=scope.until
        )
        if agent_ids is not None:
            rows = rows.filter(agent_id__in=agent_ids)
        return list(rows.values_list("inbox_id", "day", "agent_id", "tenths", "samples"))
    table = connection.ops.quote_name(ReportHistogram._meta.db_table)
    params: list = [list(scope.inbox_ids), metric, scope.since, scope.until]
    agent = ""
    if agent_ids is not None:
        agent, params = " AND agent_id = ANY(%s)", [*params, list(agent_ids)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT inbox_id, day, agent_id, tenths, samples FROM {table} "  # noqa: S608 - the model's table
            f"WHERE inbox_id = ANY(%s) AND metric = %s AND day BETWEEN %s AND %s{agent}",
            params,
        )
        return cursor.fetchall()


def _run(tenths: list[int], samples: list[int]) -> list[int]:
    """A histogram row as its samples' shown values, ascending: `tenths` itself when every count is one (samples spread
    over seconds rarely share a tenth of a minute within a row), else each value as many times as its count."""
    if len(tenths) == sum(samples):  # every count is at least one
        return tenths
    return list(chain.from_iterable(map(repeat, tenths, samples)))


def _kth(runs: list[list[int]], k: int) -> int:
    """The k-th smallest (1-based) of the values of ascending `runs` together: the smallest value with at least k
    values at or below it, found by halving the value range and counting with a bisection per run (in C) — no
    merge of the runs."""
    low, high = min(run[0] for run in runs), max(run[-1] for run in runs)
    while low < high:
        middle = (low + high) // 2
        if sum(map(bisect_right, runs, repeat(middle))) >= k:
            high = middle
        else:
            low = middle + 1
    return low


def _positions(total: int) -> tuple[int, int]:
    """The 1-based positions of the median and the 90th percentile among `total` ascending samples: percentile_disc
    as PostgreSQL computes it — the fraction of the count rounded up (a float product, as PostgreSQL's), at least 1."""
    return max(1, math.ceil(0.5 * total)), max(1, math.ceil(0.9 * total))


def _run_figures(runs: list[list[int]]) -> tuple[int, float | None, float | None]:
    """(samples, median, 90th percentile in minutes) of the samples' shown values (tenths of a minute) in ascending
    runs."""
    runs = [run for run in runs if run]
    total = sum(map(len, runs))
    if not total:
        return 0, None, None
    return total, *(_kth(runs, k) / 10 for k in _positions(total))


def _figures(counts: dict) -> tuple[int, float | None, float | None]:
    """(samples, median, 90th percentile in minutes) of a histogram {tenths of a minute: samples}."""
    ordered = sorted((int(tenths), n) for tenths, n in counts.items())
    return _run_figures([_run([t for t, _ in ordered], [n for _, n in ordered])])


def _grouped_figures(groups: dict[object, list[int]], *, whole: bool) -> dict:
    """{key: figures} of groups of samples' values (the group's histogram rows' runs one after the other), and with
    `whole` under None all of them.

    Each group is sorted (timsort merges its rows' ascending runs, in C) and read at the percentiles' positions; the
    whole is a selection over the sorted groups (`_kth`). Merging the rows' maps value by value in Python was most of
    a chart's time at 100,000 conversations (bench/README.md, "Charts: histograms as sorted runs")."""
    found = {}
    for key, values in groups.items():
        values.sort()
        found[key] = (len(values), *(values[k - 1] / 10 for k in _positions(len(values))))
    if whole and groups:
        found[None] = _run_figures(list(groups.values()))
    return found


def _percentiles(scope: ReportScope, metric: str, *, by: str) -> dict:
    """{group: (count, median min, p90 min)} of `metric`'s samples whose day is in range, grouped by `by` ("day"
    or "agent_id"), and under None all of them."""
    groups: dict = defaultdict(list)
    for _inbox_id, day, agent_id, tenths, samples in _histogram_rows(scope, metric):
        groups[day if by == "day" else agent_id] += _run(tenths, samples)
    return _grouped_figures(groups, whole=True)


def _totals(rows: list[dict], keys: list[str]) -> dict:
    return {key: sum(row[key] or 0 for row in rows) for key in keys}


def volume(scope: ReportScope) -> dict:
    """Conversations opened and resolved, messages in and out, per day."""
    keys = ["opened", "resolved", "messages_in", "messages_out"]
    found = {row["day"]: row for row in _days_qs(scope).values("day").annotate(**{k: Sum(k) for k in keys}).order_by()}
    rows = [{"day": day.isoformat(), **{k: (found.get(day) or {}).get(k) or 0 for k in keys}} for day in scope.days()]
    return {
        "chart": "volume",
        "title": "Conversations and messages per day",
        "kind": "line",
        "x": "day",
        "series": keys,
        "columns": [
            _column("day", "Day"),
            _column("opened", "Opened"),
            _column("resolved", "Resolved"),
            _column("messages_in", "Messages in"),
            _column("messages_out", "Messages out"),
        ],
        "rows": rows,
        "totals": _totals(rows, keys),
    }


def response_times(scope: ReportScope) -> dict:
    """First response and resolution times per day: medians and 90th percentiles, in minutes."""
    first = _percentiles(scope, FIRST_RESPONSE, by="day")
    resolution = _percentiles(scope, RESOLUTION, by="day")
    rows = []
    for day in scope.days():
        f_n, f_median, f_p90 = first.get(day, (0, None, None))
        r_n, r_median, r_p90 = resolution.get(day, (0, None, None))
        rows.append(
            {
                "day": day.isoformat(),
                "first_response_count": f_n,
                "first_response_median": f_median,
                "first_response_p90": f_p90,
                "resolution_count": r_n,
                "resolution_median": r_median,
                "resolution_p90": r_p90,
            }
        )
    whole_first = first.get(None, (0, None, None))
    whole_resolution = resolution.get(None, (0, None, None))
    return {
        "chart": "response-times",
        "title": "First response and resolution time (minutes)",
        "kind": "line",
        "x": "day",
        "series": ["first_response_median", "first_response_p90", "resolution_median", "resolution_p90"],
        "columns": [
            _column("day", "Day"),
            _column("first_response_count", "First responses"),
            _column("first_response_median", "First response, median", "min"),
            _column("first_response_p90", "First response, 90th pct", "min"),
            _column("resolution_count", "Resolutions"),
            _column("resolution_median", "Resolution, median", "min"),
            _column("resolution_p90", "Resolution, 90th pct", "min"),
        ],
        "rows": rows,
        "totals": {
            "first_response_count": whole_first[0],
            "first_response_median": whole_first[1],
            "first_response_p90": whole_first[2],
            "resolution_count": whole_resolution[0],
            "resolution_median": whole_resolution[1],
            "resolution_p90": whole_resolution[2],
        },
    }


def agents(scope: ReportScope) -> dict:
    """Per agent: conversations, resolutions, replies, first response and resolution times."""
    counts = {
        row["agent_id"]: row
        for row in _days_qs(scope)
        .values("agent_id")
        .annotate(opened=Sum("opened"), resolved=Sum("resolved"), messages_out=Sum("messages_out"))
        .order_by()
    }
    first = _percentiles(scope, FIRST_RESPONSE, by="agent_id")
    resolution = _percentiles(scope, RESOLUTION, by="agent_id")
    ids = set(counts) | {key for key in [*first, *resolution] if key is not None}
    names = {
        user.pk: user.get_full_name() or user.get_username()
        for user in get_user_model().objects.filter(pk__in=[pk for pk in ids if pk])
    }
    rows = []
    for agent_id in sorted(ids, key=lambda pk: (pk == 0, names.get(pk, "").lower(), pk)):
        row = counts.get(agent_id) or {}
        f_n, f_median, f_p90 = first.get(agent_id, (0, None, None))
        _r_n, r_median, r_p90 = resolution.get(agent_id, (0, None, None))
        rows.append(
            {
                "agent_id": agent_id or None,
                "agent": names.get(agent_id, "No agent" if not agent_id else f"#{agent_id}"),
                "opened": row.get("opened") or 0,
                "resolved": row.get("resolved") or 0,
                "messages_out": row.get("messages_out") or 0,
                "first_response_count": f_n,
                "first_response_median": f_median,
                "first_response_p90": f_p90,
                "resolution_median": r_median,
                "resolution_p90": r_p90,
            }
        )
    return {
        "chart": "agents",
        "title": "Agents",
        "kind": "bar",
        "x": "agent",
        "series": ["resolved", "messages_out"],
        "columns": [
            _column("agent", "Agent"),
            _column("opened", "Conversations"),
            _column("resolved", "Resolved"),
            _column("messages_out", "Replies"),
            _column("first_response_count", "First responses"),
            _column("first_response_median", "First response, median", "min"),
            _column("first_response_p90", "First response, 90th pct", "min"),
            _column("resolution_median", "Resolution, median", "min"),
            _column("resolution_p90", "Resolution, 90th pct", "min"),
        ],
        "rows": rows,
        "totals": _totals(rows, ["opened", "resolved", "messages_out", "first_response_count"]),
    }


def heatmap(scope: ReportScope) -> dict:
    """Conversations opened per day of the week and hour (the inbox's time zone)."""
    # Summed per day and hour, the days' weekdays taken here: an ISODOW extract per roll-up row doubled the query.
    cells: dict[tuple[int, int], int] = {}
    for day, hour, opened in (
        ReportHour.objects.filter(
            scope.agent_q(), inbox_id__in=scope.inbox_ids, day__gte=scope.since, day__lte=scope.until
        )
        .values("day", "hour")
        .annotate(opened=Sum("opened"))
        .order_by()
        .values_list("day", "hour", "opened")
    ):
        key = (day.isoweekday(), hour)
        cells[key] = cells.get(key, 0) + opened
    hours = [f"h{hour:02d}" for hour in range(24)]
    rows = [
        {"weekday": name, **{hours[hour]: cells.get((iso, hour), 0) for hour in range(24)}}
        for iso, name in enumerate(WEEKDAYS, start=1)
    ]
    return {
        "chart": "heatmap",
        "title": "Conversations opened by day of week and hour",
        "kind": "heatmap",
        "x": "weekday",
        "series": hours,
        "columns": [_column("weekday", "Day"), *(_column(key, key[1:]) for key in hours)],
        "rows": rows,
        "totals": {"opened": sum(cells.values())},
    }


def sources(scope: ReportScope) -> dict:
    """Per source (organic, each ad, each TikTok.me ref): conversations, replies, resolution rate, conversions."""
    keys = ["opened", "replied", "messages_out", "conversions"]
    counts = {
        (row["source_kind"], row["source_id"]): row
        for row in _days_qs(scope)
        .values("source_kind", "source_id")
        .annotate(**{k: Sum(k) for k in [*keys, "opened_resolved"]})
        .order_by()
    }
    names = _source_names(scope, list(counts))
    rows = []
    for kind, source_id in sorted(counts, key=lambda key: (-(counts[key]["opened"] or 0), key)):
        row = counts[(kind, source_id)]
        opened = row["opened"] or 0
        name = names.get((kind, source_id), "")
        rows.append(
            {
                "source": SOURCE_LABELS.get(kind, kind),
                "source_kind": kind,
                "source_id": source_id,
                "name": name,
                "label": " · ".join(filter(None, [SOURCE_LABELS.get(kind, kind), name or source_id])),
                **{k: row[k] or 0 for k in keys},
                "resolution_rate": _percent(row["opened_resolved"] or 0, opened),
            }
        )
    return {
        "chart": "sources",
        "title": "Sources: organic, ads and TikTok.me links",
        "kind": "bar",
        "x": "label",
        "series": ["opened", "conversions"],
        "columns": [
            _column("source", "Source"),
            _column("source_id", "Ad id / ref"),
            _column("name", "Name"),
            _column("opened", "Conversations"),
            _column("replied", "Replied"),
            _column("messages_out", "Replies"),
            _column("resolution_rate", "Resolved", "%"),
            _column("conversions", "Conversions"),
        ],
        "rows": rows,
        "totals": _totals(rows, keys),
    }


def _source_names(scope: ReportScope, keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The latest name each source was seen with (an ad renamed shows its new name), whatever the range."""
    if not keys:
        return {}
    if connection.vendor != "postgresql":
        return dict(
            ((kind, source_id), name)
            for kind, source_id, name in ReportCycle.objects.filter(inbox_id__in=scope.inbox_ids)
            .exclude(source_name="")
            .filter(source_kind__in={kind for kind, _ in keys}, source_id__in={sid for _, sid in keys})
            .order_by("source_kind", "source_id", "opened_at", "pk")
            .values_list("source_kind", "source_id", "source_name")
        )
    # One index probe per source (reportcycle_source_name, named cycles only): reading every named cycle of 90 days
    # and sorting them was most of this chart's time at 100,000 conversations; with unnamed cycles in the index, the
    # organic source's probe walked all of them.
    table = connection.ops.quote_name(ReportCycle._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT k.kind, k.id, n.source_name FROM unnest(%s::text[], %s::text[]) AS k(kind, id)
                CROSS JOIN LATERAL (SELECT source_name FROM {table}
                  WHERE inbox_id = ANY(%s) AND source_kind = k.kind AND source_id = k.id AND source_name <> ''
                  ORDER BY opened_at DESC, id DESC LIMIT 1) n""",  # noqa: S608 - the model's table
            [[kind for kind, _ in keys], [sid for _, sid in keys], list(scope.inbox_ids)],
        )
        return {(kind, source_id): name for kind, source_id, name in cursor.fetchall()}


def _team_percentiles(scope: ReportScope, pairs: list[tuple], metric: str) -> dict:
    """{team id: (count, median min, p90 min)} of the samples of each team's members in its inbox (a member of two
    teams counts in both)."""
    if not pairs:
        return {}
    teams_of: dict[tuple, list[int]] = defaultdict(list)
    for team_id, inbox_id, agent_id in pairs:
        teams_of[(inbox_id, agent_id)].append(team_id)
    groups: dict = defaultdict(list)
    for inbox_id, _day, agent_id, tenths, samples in _histogram_rows(
        scope, metric, agent_ids=sorted({agent for _, _, agent in pairs})
    ):
        run = _run(tenths, samples)
        for team_id in teams_of.get((inbox_id, agent_id), ()):
            groups[team_id] += run
    return _grouped_figures(groups, whole=False)


def teams(scope: ReportScope) -> dict:
    """Per team (of the inboxes in scope): its members' conversations, resolutions, replies, response and
    resolution times, and CSAT — each counted as for one agent, summed over the members in the team's inbox."""
    found = list(report_teams(scope.inbox_ids).order_by("inbox__name", "name"))
    pairs = [
        (team.pk, team.inbox_id, member.pk)
        for team in found
        for member in team.members.all()
        if scope.agent_ids is None or member.pk in scope.agent_ids
    ]
    members_of: dict[tuple, list[int]] = {}
    for team_id, inbox_id, agent_id in pairs:
        members_of.setdefault((inbox_id, agent_id), []).append(team_id)
    keys = ["opened", "resolved", "messages_out"]
    counts = {team.pk: dict.fromkeys(keys, 0) for team in found}
    for row in (
        _days_qs(scope)
        .filter(agent_id__in={agent for _, _, agent in pairs})
        .values("inbox_id", "agent_id")
        .annotate(**{k: Sum(k) for k in keys})
        .order_by()
    ):
        for team_id in members_of.get((row["inbox_id"], row["agent_id"]), []):
            for key in keys:
                counts[team_id][key] += row[key] or 0
    ratings = {team.pk: [0, 0] for team in found}  # responses, sum of ratings
    for inbox_id, agent_id, rating, n in (
        _csat_qs(scope)
        .filter(agent_id__in={agent for _, _, agent in pairs})
        .values("inbox_id", "agent_id", "rating")
        .annotate(n=Sum("responses"))
        .values_list("inbox_id", "agent_id", "rating", "n")
    ):
        for team_id in members_of.get((inbox_id, agent_id), []):
            ratings[team_id][0] += n
            ratings[team_id][1] += rating * n
    first = _team_percentiles(scope, pairs, FIRST_RESPONSE)
    resolution = _team_percentiles(scope, pairs, RESOLUTION)
    several = len({team.inbox_id for team in found}) > 1
    rows = []
    for team in found:
        f_n, f_median, f_p90 = first.get(team.pk, (0, None, None))
        _r_n, r_median, r_p90 = resolution.get(team.pk, (0, None, None))
        responses, total = ratings[team.pk]
        rows.append(
            {
                "team_id": team.pk,
                "team": f"{team.name} ({team.inbox.name})" if several else team.name,
                **counts[team.pk],
                "first_response_count": f_n,
                "first_response_median": f_median,
                "first_response_p90": f_p90,
                "resolution_median": r_median,
                "resolution_p90": r_p90,
                "csat_responses": responses,
                "csat_average": _average(total, responses),
            }
        )
    return {
        "chart": "teams",
        "title": "Teams",
        "kind": "bar",
        "x": "team",
        "series": ["resolved", "messages_out"],
        "columns": [
            _column("team", "Team"),
            _column("opened", "Conversations"),
            _column("resolved", "Resolved"),
            _column("messages_out", "Replies"),
            _column("first_response_median", "First response, median", "min"),
            _column("first_response_p90", "First response, 90th pct", "min"),
            _column("resolution_median", "Resolution, median", "min"),
            _column("resolution_p90", "Resolution, 90th pct", "min"),
            _column("csat_responses", "CSAT responses"),
            _column("csat_average", "CSAT average", "avg"),
        ],
        "rows": rows,
        "totals": {},  # a member of two teams counts in both: the rows do not add up to a whole
    }


def _csat_qs(scope: ReportScope):
    return ReportCsat.objects.filter(
        scope.agent_q(), inbox_id__in=scope.inbox_ids, day__gte=scope.since, day__lte=scope.until
    )


def csat(scope: ReportScope) -> dict:
    """CSAT: responses per rating (1 to 5), their share, and the average rating."""
    found = dict(_csat_qs(scope).values("rating").annotate(n=Sum("responses")).order_by().values_list("rating", "n"))
    responses = sum(found.values())
    rows = [
        {
            "rating": rating,
            "label": f"{rating} ★",
            "responses": found.get(rating, 0),
            "share": _percent(found.get(rating, 0), responses),
        }
        for rating in range(5, 0, -1)
    ]
    return {
        "chart": "csat",
        "title": "Customer satisfaction (CSAT)",
        "kind": "bar",
        "x": "label",
        "series": ["responses"],
        "columns": [
            _column("rating", "Rating"),
            _column("responses", "Responses"),
            _column("share", "Share", "%"),
        ],
        "rows": rows,
        "totals": {
            "responses": responses,
            "average": _average(sum(r * n for r, n in found.items()), responses),
            "satisfied": _percent(found.get(4, 0) + found.get(5, 0), responses),
        },
        "total_units": {"average": "avg", "satisfied": "%"},
    }


def csat_agents(scope: ReportScope) -> dict:
    """CSAT per agent (of the rated resolution): responses, average rating, and how many of each rating."""
    found: dict[int, dict[int, int]] = {}
    for agent_id, rating, n in (
        _csat_qs(scope).values("agent_id", "rating").annotate(n=Sum("responses")).values_list("agent_id", "rating", "n")
    ):
        found.setdefault(agent_id, {})[rating] = n
    names = {
        user.pk: user.get_full_name() or user.get_username()
        for user in get_user_model().objects.filter(pk__in=[pk for pk in found if pk])
    }
    rows = []
    for agent_id in sorted(found, key=lambda pk: (pk == 0, names.get(pk, "").lower(), pk)):
        ratings = found[agent_id]
        responses = sum(ratings.values())
        rows.append(
            {
                "agent_id": agent_id or None,
                "agent": names.get(agent_id, "No agent" if not agent_id else f"#{agent_id}"),
                "responses": responses,
                "average": _average(sum(r * n for r, n in ratings.items()), responses),
                **{f"rating_{r}": ratings.get(r, 0) for r in range(1, 6)},
            }
        )
    keys = ["responses", *(f"rating_{r}" for r in range(1, 6))]
    return {
        "chart": "csat-agents",
        "title": "CSAT per agent",
        "kind": "bar",
        "x": "agent",
        "series": ["responses"],
        "columns": [
            _column("agent", "Agent"),
            _column("responses", "Responses"),
            _column("average", "Average", "avg"),
            *(_column(f"rating_{r}", f"{r} ★") for r in range(1, 6)),
        ],
        "rows": rows,
        "totals": _totals(rows, keys),
    }


# The charts, in the page's order.
CHARTS: dict[str, Callable[[ReportScope], dict]] = {
    "volume": volume,
    "response-times": response_times,
    "heatmap": heatmap,
    "agents": agents,
    "sources": sources,
    "teams": teams,
    "csat": csat,
    "csat-agents": csat_agents,
}


def report_inboxes(user) -> list[Inbox]:
    """The inboxes whose reports `user` may read: the ones they may see (admins: all)."""
    from inbox.selectors import inboxes_visible_to

    return list(inboxes_visible_to(user).order_by("name"))


def report_teams(inbox_ids):
    """The teams of these inboxes (the team filter's choices), with their members prefetched."""
    from inbox.automation.models import Team

    return Team.objects.filter(inbox_id__in=inbox_ids).select_related("inbox").prefetch_related("members")
