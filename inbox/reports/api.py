"""`/api/v1/reports/…`: the charts as JSON, and each as CSV (`?format=csv` or `Accept: text/csv`).

Scoped like the rest of the API: a user reads the reports of the inboxes they may see (admins: all); an inbox
outside them is refused as invalid (422), never shown.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import renderers, serializers
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from inbox.errors import ApplicationError
from inbox.reports import selectors

MAX_DAYS = 366
DEFAULT_DAYS = 30


class CSVRenderer(renderers.BaseRenderer):
    """A chart's table as CSV: the column labels, then one line per row, numbers as the page shows them."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        if isinstance(data, dict) and "columns" in data:
            columns = data["columns"]
            writer.writerow([column["label"] for column in columns])
            for row in data["rows"]:
                writer.writerow([cell_text(row.get(column["key"]), column["unit"]) for column in columns])
        elif isinstance(data, dict):  # an error: {"code", "message", "fields"}
            writer.writerow(["code", "message"])
            writer.writerow([data.get("code", ""), data.get("message", "")])
        return out.getvalue().encode(self.charset)


def cell_text(value, unit: str) -> str:
    """The one text of a table cell (the page formats the same way: static/inbox/js/reports.js `cellText`)."""
    if value is None:
        return ""
    if unit in ("min", "%"):
        return f"{value:.1f}"
    if unit == "avg":
        return f"{value:.2f}"
    return str(value)


class ReportFilters(serializers.Serializer):
    since = serializers.DateField(required=False, help_text="First day (the inbox's local days); default 29 days ago")
    until = serializers.DateField(required=False, help_text="Last day, included; default today")
    inbox = serializers.IntegerField(required=False, min_value=1, max_value=2**62, help_text="One inbox; default all")
    agent = serializers.IntegerField(required=False, min_value=1, max_value=2**62, help_text="One agent's figures")
    team = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=2**62,
        help_text="One team's figures: its members' (as the agent filter counts them), in the team's inbox",
    )

    def validate(self, data: dict) -> dict:
        until = data.get("until") or timezone.localdate()
        since = data.get("since") or until - timedelta(days=DEFAULT_DAYS - 1)
        if since > until:
            raise serializers.ValidationError({"since": ["must not be after until"]})
        if (until - since).days + 1 > MAX_DAYS:
            raise serializers.ValidationError({"since": [f"a range of at most {MAX_DAYS} days"]})
        return {**data, "since": since, "until": until}


def report_scope(request: Request) -> selectors.ReportScope:
    params = ReportFilters(data={k: v for k, v in request.query_params.items() if k in ReportFilters().fields})
    params.is_valid(raise_exception=True)
    filters = params.validated_data
    inbox_ids = [inbox.pk for inbox in selectors.report_inboxes(request.user)]
    if "inbox" in filters:
        if filters["inbox"] not in inbox_ids:
            raise ApplicationError("invalid_inbox", "no such inbox", status=422, fields={"inbox": ["no such inbox"]})
        inbox_ids = [filters["inbox"]]
    agent_ids = (filters["agent"],) if "agent" in filters else None
    if "team" in filters:
        team = selectors.report_teams(inbox_ids).filter(pk=filters["team"]).first()
        if team is None:  # another inbox's team, or none: refused like an inbox the caller may not see
            raise ApplicationError("invalid_team", "no such team", status=422, fields={"team": ["no such team"]})
        inbox_ids = [team.inbox_id]
        members = {member.pk for member in team.members.all()}
        agent_ids = tuple(sorted(members if agent_ids is None else members & set(agent_ids)))
    return selectors.ReportScope(
        inbox_ids=tuple(inbox_ids), since=filters["since"], until=filters["until"], agent_ids=agent_ids
    )


class ColumnOut(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    unit = serializers.CharField(
        help_text='"min" (minutes, one decimal), "%" (one decimal), "avg" (an average rating, two decimals) or empty'
    )


class ChartOut(serializers.Serializer):
    chart = serializers.CharField()
    title = serializers.CharField()
    kind = serializers.ChoiceField(choices=["line", "bar", "heatmap"])
    x = serializers.CharField(help_text="The row key on the chart's axis")
    series = serializers.ListField(child=serializers.CharField(), help_text="The row keys drawn")
    columns = ColumnOut(many=True)
    rows = serializers.ListField(child=serializers.DictField(), help_text="One object per table row, by column key")
    totals = serializers.DictField()
    total_units = serializers.DictField(
        child=serializers.CharField(), required=False, help_text="The unit of a total that is no column's"
    )
    since = serializers.DateField()
    until = serializers.DateField()


class ChartView(GenericAPIView):
    """One chart: JSON, or its table as CSV."""

    chart = ""
    serializer_class = ChartOut
    renderer_classes = [renderers.JSONRenderer, CSVRenderer]

    def get(self, request: Request) -> Response:
        scope = report_scope(request)
        with selectors.report_reads():
            data = {**selectors.CHARTS[self.chart](scope), "since": scope.since, "until": scope.until}
        response = Response(ChartOut(data).data)
        if getattr(request.accepted_renderer, "format", "") == "csv":
            name = f"{self.chart}-{scope.since.isoformat()}-{scope.until.isoformat()}.csv"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


def _chart_view(chart: str, summary: str) -> type[ChartView]:
    schema = extend_schema(
        summary=summary,
        parameters=[ReportFilters],
        responses={
            (200, "application/json"): ChartOut,
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The chart's table as CSV"),
        },
    )
    view = type(f"Report{chart.title().replace('-', '')}View", (ChartView,), {"chart": chart, "__doc__": summary})
    view.get = schema(view.get)
    return view


VolumeView = _chart_view("volume", "Conversations opened and resolved, messages in and out, per day")
ResponseTimesView = _chart_view("response-times", "First response and resolution times per day (median, p90)")
HeatmapView = _chart_view("heatmap", "Conversations opened per day of week and hour, in the inbox's time zone")
AgentsView = _chart_view("agents", "Per agent: conversations, resolutions, replies, response and resolution times")
SourcesView = _chart_view("sources", "Per source (organic, each ad, each TikTok.me ref): conversations, conversions")
TeamsView = _chart_view("teams", "Per team: its members' conversations, replies, response times and CSAT")
CsatView = _chart_view("csat", "CSAT: responses per rating (1 to 5), their share and the average rating")
CsatAgentsView = _chart_view("csat-agents", "CSAT per agent of the rated resolution: responses, average, each rating")
CHART_VIEWS = {
    "volume": VolumeView,
    "response-times": ResponseTimesView,
    "heatmap": HeatmapView,
    "agents": AgentsView,
    "sources": SourcesView,
    "teams": TeamsView,
    "csat": CsatView,
    "csat-agents": CsatAgentsView,
}


class NamedOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ChartLinkOut(serializers.Serializer):
    key = serializers.CharField()
    url = serializers.CharField()


class ReportTeamOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    inbox = serializers.IntegerField()
    members = serializers.ListField(child=serializers.IntegerField(), help_text="Its agents' ids")


class ReportIndexOut(serializers.Serializer):
    inboxes = NamedOut(many=True)
    agents = NamedOut(many=True, help_text="The members of those inboxes (the agent filter's choices)")
    teams = ReportTeamOut(many=True, help_text="The teams of those inboxes (the team filter's choices)")
    charts = ChartLinkOut(many=True)
    since = serializers.DateField()
    until = serializers.DateField()


class ReportIndexView(GenericAPIView):
    serializer_class = ReportIndexOut

    @extend_schema(summary="What the caller's reports cover: inboxes, agents, charts, the default range")
    def get(self, request: Request) -> Response:
        inboxes = selectors.report_inboxes(request.user)
        agents = (
            get_user_model()
            .objects.filter(inboxes__in=inboxes, is_active=True)
            .distinct()
            .order_by("first_name", "username")
        )
        until = timezone.localdate()
        teams = selectors.report_teams([inbox.pk for inbox in inboxes]).order_by("inbox__name", "name")
        return Response(
            ReportIndexOut(
                {
                    "inboxes": [{"id": inbox.pk, "name": inbox.name} for inbox in inboxes],
                    "agents": [{"id": user.pk, "name": user.get_full_name() or user.get_username()} for user in agents],
                    "teams": [
                        {
                            "id": team.pk,
                            "name": team.name if len(inboxes) < 2 else f"{team.name} ({team.inbox.name})",
                            "inbox": team.inbox_id,
                            "members": sorted(member.pk for member in team.members.all()),
                        }
                        for team in teams
                    ],
                    "charts": [{"key": key, "url": reverse(f"report-{key}")} for key in selectors.CHARTS],
                    "since": until - timedelta(days=DEFAULT_DAYS - 1),
                    "until": until,
                }
            ).data
        )
