"""REST API of routing and automation (mounted under /api/v1/ by inbox/api/urls.py)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from inbox import selectors
from inbox.automation import assignment
from inbox.automation.models import AgentAvailability, Team


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
    members = serializers.SerializerMethodField()

    class Meta:
        model = Team
        fields = ["id", "inbox", "name", "members"]

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
        teams = Team.objects.filter(inbox__in=selectors.inboxes_visible_to(request.user)).prefetch_related("members")
        if filters.validated_data.get("inbox"):
            teams = teams.filter(inbox_id=filters.validated_data["inbox"])
        return Response(TeamOut(teams, many=True).data)
