"""The team a conversation was handed to (routing): on the list and detail payload, as a list filter, live."""

import pytest
from django.db import connection

from inbox import live
from inbox.automation.models import Team
from inbox.models import AuditLog
from inbox.services import conversation_set_team
from tests.inbox.helpers import api, receive

pytestmark = pytest.mark.django_db


@pytest.fixture
def teams(world):
    return {
        "billing": Team.objects.create(inbox=world["support"], name="Billing"),
        "sales": Team.objects.create(inbox=world["support"], name="Sales"),
        "theirs": Team.objects.create(inbox=world["other"], name="Their team"),
    }


def test_the_team_is_on_the_list_and_the_detail_and_filters_the_list(world, teams):
    conversation_set_team(conversation_id=world["bob"].pk, team=teams["billing"], actor=None)
    client = api(world["agent"])

    listed = {c["id"]: c["team"] for c in client.get("/api/v1/conversations/").json()["results"]}
    assert listed == {world["bob"].pk: {"id": teams["billing"].pk, "name": "Billing"}, world["alice"].pk: None}
    detail = client.get(f"/api/v1/conversations/{world['bob'].pk}/").json()
    assert detail["team"] == {"id": teams["billing"].pk, "name": "Billing"}

    filtered = client.get("/api/v1/conversations/", {"team": teams["billing"].pk}).json()["results"]
    assert [c["id"] for c in filtered] == [world["bob"].pk]
    assert client.get("/api/v1/conversations/", {"team": teams["sales"].pk}).json()["results"] == []
    both = {"team": teams["billing"].pk, "inbox": world["support"].pk}
    assert [c["id"] for c in client.get("/api/v1/conversations/", both).json()["results"]] == [world["bob"].pk]


@pytest.mark.parametrize("which", ["theirs", "unknown", "other_inbox_filter"])
def test_a_team_the_agent_may_not_see_is_a_422_with_the_reason(world, teams, which):
    params = {
        "theirs": {"team": teams["theirs"].pk},
        "unknown": {"team": 999_999},
        "other_inbox_filter": {"team": teams["billing"].pk, "inbox": world["other"].pk},
    }[which]
    response = api(world["agent"]).get("/api/v1/conversations/", params)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_team" and response.json()["fields"] == {"team": ["no such team"]}


def test_a_malformed_team_is_a_422_never_a_500(world):
    response = api(world["agent"]).get("/api/v1/conversations/", {"team": "billing"})
    assert response.status_code == 422 and set(response.json()["fields"]) == {"team"}


def test_teams_cost_no_query_per_row(world, teams, django_assert_num_queries):
    for n in range(6):
        team = teams["billing"] if n % 2 else teams["sales"]
        conversation_set_team(conversation_id=receive(world["support"], f"more{n}", 1).pk, team=team, actor=None)
    client = api(world["agent"])
    # The agent's inbox ids, the page (with the teams), the page's labels (on PostgreSQL read along with the page).
    with django_assert_num_queries(2 if connection.vendor == "postgresql" else 3):
        results = client.get("/api/v1/conversations/").json()["results"]
    assert len(results) == 8 and sum(1 for c in results if c["team"]) == 6


def test_setting_the_team_is_audited_versioned_and_pushed_live(
    world, teams, live_events, django_capture_on_commit_callbacks
):
    bob = world["bob"]
    with django_capture_on_commit_callbacks(execute=True):
        changed = conversation_set_team(conversation_id=bob.pk, team=teams["billing"], actor=None)
    assert changed.version == bob.version + 1
    team = {"id": teams["billing"].pk, "name": "Billing"}
    pushed = live.conversation_team(conversation_id=bob.pk, team=team, version=changed.version)
    assert (f"inbox.{bob.inbox_id}", pushed) in live_events
    audit = AuditLog.objects.get(action="conversation.team")
    assert (audit.before, audit.after) == ({"team": None}, {"team": "Billing"})

    with django_capture_on_commit_callbacks(execute=True):  # the same team again: nothing changes
        same = conversation_set_team(conversation_id=bob.pk, team=teams["billing"], actor=None)
    assert same.version == changed.version and AuditLog.objects.filter(action="conversation.team").count() == 1


def test_a_team_of_another_inbox_is_refused(world, teams):
    from inbox.errors import ApplicationError

    with pytest.raises(ApplicationError) as refused:
        conversation_set_team(conversation_id=world["bob"].pk, team=teams["theirs"], actor=None)
    assert refused.value.code == "invalid_team"
    assert api(world["agent"]).get(f"/api/v1/conversations/{world['bob'].pk}/").json()["team"] is None


def test_the_teams_api_lists_the_callers_inboxes_teams_with_the_inbox_name(world, teams):
    listed = api(world["agent"]).get("/api/v1/teams/").json()
    assert sorted((t["name"], t["inbox_name"]) for t in listed) == [("Billing", "Support"), ("Sales", "Support")]
    assert [t["name"] for t in api(world["outsider"]).get("/api/v1/teams/").json()] == ["Their team"]
