"""REST API of routing and automation (mounted under /api/v1/ by inbox/api/urls.py)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from inbox import selectors
from inbox.automation import assignment, hours, rules
from inbox.automation.models import (
    AgentAvailability,
    AutomationRule,
    AutomationRun,
    CsatSurvey,
    InboxRouting,
    Team,
)
from inbox.errors import ApplicationError


class AvailabilityOut(serializers.Serializer):
    status = serializers.ChoiceField(choices=AgentAvailability.Status.choices, help_text="What the agent chose")
    effective_status = serializers.ChoiceField(
        choices=AgentAvailability.Status.choices, help_text="Offline when no tab of the agent is connected"
    )
    capacity = serializers.IntegerField()


class AvailabilityIn(serializers.Serializer):
    status = serializers.ChoiceField(choices=AgentAvailability.Status.choices)


class MemberAvailabilityOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=AgentAvailability.Status.choices, help_text="Effective availability")
    open_conversations = serializers.IntegerField()
    capacity = serializers.IntegerField()


class TeamOut(serializers.ModelSerializer):
    inbox = serializers.IntegerField(source="inbox_id")
    inbox_name = serializers.CharField(source="inbox.name", read_only=True)
    members = serializers.SerializerMethodField()

    class Meta:
        model = Team
        fields = ["id", "inbox", "inbox_name", "name", "members"]

    def get_members(self, team) -> list[int]:
        return sorted(user.pk for user in team.members.all())


class TeamFilter(serializers.Serializer):
    inbox = serializers.IntegerField(required=False, min_value=1, max_value=2**62)


def _availability_out(row: AgentAvailability) -> dict:
    return {"status": row.status, "effective_status": row.effective_status, "capacity": row.capacity}


class MyAvailabilityView(GenericAPIView):
    serializer_class = AvailabilityOut

    @extend_schema(responses=AvailabilityOut)
    def get(self, request: Request) -> Response:
        """The caller's availability: what they chose, and what others see."""
        row, _ = AgentAvailability.objects.get_or_create(user=request.user)
        return Response(AvailabilityOut(_availability_out(row)).data)

    @extend_schema(request=AvailabilityIn, responses=AvailabilityOut)
    def post(self, request: Request) -> Response:
        """Set the caller's availability (online, busy, offline). Only online agents get conversations
        auto-assigned; going online assigns the waiting ones."""
        data = AvailabilityIn(data=request.data)
        data.is_valid(raise_exception=True)
        row = assignment.availability_set(user=request.user, status=data.validated_data["status"])
        row.refresh_from_db()
        return Response(AvailabilityOut(_availability_out(row)).data)


class InboxAvailabilityView(GenericAPIView):
    serializer_class = MemberAvailabilityOut

    @extend_schema(responses=MemberAvailabilityOut(many=True))
    def get(self, request: Request, pk: int) -> Response:
        """The inbox's active members with their effective availability and open conversations, by name."""
        inbox = get_object_or_404(selectors.inboxes_visible_to(request.user), pk=pk)
        return Response(MemberAvailabilityOut(assignment.members_availability(inbox), many=True).data)


class TeamListView(GenericAPIView):
    serializer_class = TeamOut

    @extend_schema(parameters=[TeamFilter], responses=TeamOut(many=True))
    def get(self, request: Request) -> Response:
        """The teams of the caller's inboxes (or of one `inbox`). Admins manage teams in /admin/."""
        filters = TeamFilter(data=request.query_params)
        filters.is_valid(raise_exception=True)
        teams = selectors.teams_visible_to(request.user).select_related("inbox").prefetch_related("members")
        if filters.validated_data.get("inbox"):
            teams = teams.filter(inbox_id=filters.validated_data["inbox"])
        return Response(TeamOut(teams, many=True).data)


# --- Automation rules -------------------------------------------------------------------------------------------


class ConditionSchema(serializers.Serializer):
    attribute = serializers.ChoiceField(choices=list(rules.CONDITIONS))
    operator = serializers.CharField(help_text="contains, matches, equals, not_equals, has, has_not")
    value = serializers.CharField()
    key = serializers.CharField(required=False, help_text="contact_attribute: the attribute's name")


class ActionSchema(serializers.Serializer):
    type = serializers.ChoiceField(choices=list(rules.ACTIONS))
    agent_id = serializers.IntegerField(required=False)
    team_id = serializers.IntegerField(required=False)
    label = serializers.CharField(required=False)
    priority = serializers.CharField(required=False)
    canned_response_id = serializers.IntegerField(required=False)
    text = serializers.CharField(required=False)
    minutes = serializers.IntegerField(required=False)
    url = serializers.CharField(required=False)


class RuleOut(serializers.ModelSerializer):
    inbox = serializers.IntegerField(source="inbox_id")
    conditions = ConditionSchema(many=True)
    actions = ActionSchema(many=True)

    class Meta:
        model = AutomationRule
        fields = [
            "id",
            "inbox",
            "name",
            "event",
            "no_reply_minutes",
            "conditions",
            "actions",
            "active",
            "position",
            "created_at",
            "updated_at",
        ]


class RuleCreatedOut(RuleOut):
    webhook_secret = serializers.CharField(help_text="Signs this rule's webhooks; shown only now.")

    class Meta(RuleOut.Meta):
        fields = [*RuleOut.Meta.fields, "webhook_secret"]


class RuleIn(serializers.Serializer):
    inbox = serializers.IntegerField(min_value=1, max_value=2**62)
    name = serializers.CharField(max_length=120)
    event = serializers.ChoiceField(choices=AutomationRule.Event.choices)
    no_reply_minutes = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=2880)
    conditions = serializers.ListField(child=serializers.DictField(), required=False, default=list)
    actions = serializers.ListField(child=serializers.DictField())
    active = serializers.BooleanField(required=False, default=True)
    position = serializers.IntegerField(required=False, default=0, min_value=0, max_value=10000)


class RuleChangeIn(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False)
    event = serializers.ChoiceField(choices=AutomationRule.Event.choices, required=False)
    no_reply_minutes = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=2880)
    conditions = serializers.ListField(child=serializers.DictField(), required=False)
    actions = serializers.ListField(child=serializers.DictField(), required=False)
    active = serializers.BooleanField(required=False)
    position = serializers.IntegerField(required=False, min_value=0, max_value=10000)


class RunOut(serializers.ModelSerializer):
    rule = serializers.IntegerField(source="rule_id")
    rule_name = serializers.CharField(source="rule.name")
    conversation = serializers.IntegerField(source="conversation_id")
    results = serializers.ListField(child=serializers.DictField())

    class Meta:
        model = AutomationRun
        fields = ["id", "rule", "rule_name", "conversation", "event", "event_key", "results", "outcome", "created_at"]


class RunFilter(serializers.Serializer):
    rule = serializers.IntegerField(required=False, min_value=1, max_value=2**62)
    conversation = serializers.IntegerField(required=False, min_value=1, max_value=2**62)


def _admin_only(request: Request) -> None:
    if not request.user.is_superuser:
        raise ApplicationError("forbidden", "only admins manage automation rules", status=403)


def _rules_visible(request: Request):
    return AutomationRule.objects.filter(inbox__in=selectors.inboxes_visible_to(request.user))


class RuleListView(GenericAPIView):
    serializer_class = RuleOut

    @extend_schema(parameters=[TeamFilter], responses=RuleOut(many=True))
    def get(self, request: Request) -> Response:
        """The automation rules of the caller's inboxes (or of one `inbox`), in run order."""
        filters = TeamFilter(data=request.query_params)
        filters.is_valid(raise_exception=True)
        found = _rules_visible(request).order_by("inbox_id", "position", "pk")
        if filters.validated_data.get("inbox"):
            found = found.filter(inbox_id=filters.validated_data["inbox"])
        return Response(RuleOut(found, many=True).data)

    @extend_schema(request=RuleIn, responses={201: RuleCreatedOut})
    def post(self, request: Request) -> Response:
        """Create a rule (admins). The answer carries the webhook signing secret, shown this once."""
        _admin_only(request)
        data = RuleIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        inbox_id = fields.pop("inbox")
        if not selectors.inboxes_visible_to(request.user).filter(pk=inbox_id).exists():
            raise ApplicationError("invalid_inbox", "no such inbox", status=422, fields={"inbox": ["no such inbox"]})
        fields.setdefault("no_reply_minutes", None)
        rule = rules.rule_create(inbox_id=inbox_id, actor=request.user, **fields)
        return Response(RuleCreatedOut(rule).data, status=201)


class RuleDetailView(GenericAPIView):
    serializer_class = RuleOut

    @extend_schema(responses=RuleOut)
    def get(self, request: Request, pk: int) -> Response:
        return Response(RuleOut(get_object_or_404(_rules_visible(request), pk=pk)).data)

    @extend_schema(request=RuleChangeIn, responses=RuleOut)
    def patch(self, request: Request, pk: int) -> Response:
        """Change a rule (admins); the whole rule is validated again."""
        _admin_only(request)
        rule = get_object_or_404(_rules_visible(request), pk=pk)
        data = RuleChangeIn(data=request.data)
        data.is_valid(raise_exception=True)
        rule = rules.rule_update(rule_id=rule.pk, actor=request.user, **data.validated_data)
        return Response(RuleOut(rule).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        """Delete a rule and its run records (admins)."""
        _admin_only(request)
        get_object_or_404(_rules_visible(request), pk=pk).delete()
        return Response(status=204)


class RunListView(GenericAPIView):
    serializer_class = RunOut

    @extend_schema(parameters=[RunFilter], responses=RunOut(many=True))
    def get(self, request: Request) -> Response:
        """The latest 100 automation runs in the caller's inboxes, of one `rule` or `conversation`."""
        filters = RunFilter(data=request.query_params)
        filters.is_valid(raise_exception=True)
        runs = AutomationRun.objects.filter(rule__in=_rules_visible(request)).select_related("rule")
        if filters.validated_data.get("rule"):
            runs = runs.filter(rule_id=filters.validated_data["rule"])
        if filters.validated_data.get("conversation"):
            runs = runs.filter(conversation_id=filters.validated_data["conversation"])
        return Response(RunOut(runs.order_by("-created_at", "-pk")[:100], many=True).data)


# --- CSAT -------------------------------------------------------------------------------------------------------


class CsatOut(serializers.ModelSerializer):
    class Meta:
        model = CsatSurvey
        fields = ["id", "outcome", "detail", "rating", "comment", "rated_at", "expires_at", "created_at"]


class ConversationCsatView(GenericAPIView):
    serializer_class = CsatOut

    @extend_schema(responses=CsatOut(many=True))
    def get(self, request: Request, pk: int) -> Response:
        """The conversation's satisfaction surveys, newest first: sent or not (and why), and the rating."""
        conversation = get_object_or_404(selectors.conversations_visible_to(request.user), pk=pk)
        return Response(CsatOut(CsatSurvey.objects.filter(conversation=conversation)[:20], many=True).data)


# --- Inbox routing settings ---------------------------------------------------------------------------------------


class RoutingOut(serializers.ModelSerializer):
    inbox = serializers.IntegerField(source="inbox_id")
    weekly_hours = serializers.DictField(child=serializers.ListField(child=serializers.ListField()))
    holidays = serializers.ListField(child=serializers.CharField())
    open_now = serializers.SerializerMethodField()

    class Meta:
        model = InboxRouting
        fields = [
            "inbox",
            "auto_assign",
            "business_hours_enabled",
            "time_zone",
            "weekly_hours",
            "holidays",
            "out_of_hours_reply",
            "csat_enabled",
            "csat_message",
            "first_response_minutes",
            "open_now",
        ]

    def get_open_now(self, routing) -> bool:
        return hours.is_open(routing, timezone.now())


class RoutingIn(serializers.Serializer):
    auto_assign = serializers.BooleanField(required=False)
    business_hours_enabled = serializers.BooleanField(required=False)
    time_zone = serializers.CharField(required=False, max_length=64)
    weekly_hours = serializers.DictField(required=False, child=serializers.ListField())
    holidays = serializers.ListField(required=False, child=serializers.CharField(max_length=10), max_length=366)
    out_of_hours_reply = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    csat_enabled = serializers.BooleanField(required=False)
    csat_message = serializers.CharField(required=False, max_length=2000)
    first_response_minutes = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=10080)


class InboxRoutingView(GenericAPIView):
    serializer_class = RoutingOut

    @extend_schema(responses=RoutingOut)
    def get(self, request: Request, pk: int) -> Response:
        """The inbox's routing: auto-assignment, business hours and out-of-hours reply, CSAT, first-response SLA."""
        inbox = get_object_or_404(selectors.inboxes_visible_to(request.user), pk=pk)
        routing, _ = InboxRouting.objects.get_or_create(inbox=inbox)
        return Response(RoutingOut(routing).data)

    @extend_schema(request=RoutingIn, responses=RoutingOut)
    def patch(self, request: Request, pk: int) -> Response:
        """Change the inbox's routing (admins); the schedule is validated as a whole (422 with the field)."""
        _admin_only(request)
        inbox = get_object_or_404(selectors.inboxes_visible_to(request.user), pk=pk)
        data = RoutingIn(data=request.data)
        data.is_valid(raise_exception=True)
        routing = assignment.routing_update(inbox_id=inbox.pk, changes=data.validated_data)
        return Response(RoutingOut(routing).data)
