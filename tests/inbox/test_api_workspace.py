"""API the agent workspace uses: inbox members (the assign picker), referral facts labelled by the server."""

import pytest

from inbox.models import Conversation
from tests.inbox.helpers import api

pytestmark = pytest.mark.django_db


def test_members_of_an_inbox_for_the_assign_picker(world, django_user_model):
    gone = django_user_model.objects.create_user("gone", password="pw", is_active=False)
    world["support"].members.add(gone)
    members = api(world["agent"]).get(f"/api/v1/inboxes/{world['support'].pk}/members/").json()
    assert [m["username"] for m in members] == ["agent", "colleague"]
    assert api(world["agent"]).get(f"/api/v1/inboxes/{world['other'].pk}/members/").status_code == 404


def test_assign_to_a_colleague_but_not_to_an_outsider(world):
    bob = world["bob"]
    client = api(world["agent"])
    response = client.post(f"/api/v1/conversations/{bob.pk}/assign/", {"assignee": str(world["colleague"].pk)})
    assert response.status_code == 200 and response.json()["assignee"]["username"] == "colleague"
    refused = client.post(f"/api/v1/conversations/{bob.pk}/assign/", {"assignee": str(world["outsider"].pk)})
    assert refused.status_code == 422


def test_referral_facts_are_labelled_by_the_server(world):
    Conversation.objects.filter(pk=world["bob"].pk).update(
        referral={"source": "ad", "ad_id": "123", "ad_name": "Winter", "unknown_key": "x", "nested": {"a": 1}}
    )
    body = api(world["agent"]).get(f"/api/v1/conversations/{world['bob'].pk}/").json()
    assert body["referral_facts"] == [
        {"label": "Source", "value": "ad", "mono": False},
        {"label": "Ad id", "value": "123", "mono": True},
        {"label": "Ad", "value": "Winter", "mono": False},
    ]


def test_unread_counts_per_view(world):
    client = api(world["agent"])
    assert client.get("/api/v1/conversations/unread-counts/").json() == {"mine": 0, "unassigned": 2, "all": 2}
    client.post(f"/api/v1/conversations/{world['bob'].pk}/assign/", {"assignee": "me"})
    assert client.get("/api/v1/conversations/unread-counts/").json() == {"mine": 1, "unassigned": 1, "all": 2}
    client.post(f"/api/v1/conversations/{world['bob'].pk}/read/")
    assert client.get("/api/v1/conversations/unread-counts/").json() == {"mine": 0, "unassigned": 1, "all": 1}
    assert client.get("/api/v1/conversations/unread-counts/?status=resolved").json()["all"] == 0
    assert api(world["outsider"]).get("/api/v1/conversations/unread-counts/").json()["all"] == 1
