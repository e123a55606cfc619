"""Labels (per inbox, on conversations, as a list filter) and canned responses (shared and personal)."""

import pytest

from inbox import live
from inbox.models import AuditLog, CannedResponse, Label
from inbox.services import canned_render
from tests.inbox.helpers import api

pytestmark = pytest.mark.django_db


@pytest.fixture
def labels(world):
    client = api(world["agent"])
    made = [
        client.post("/api/v1/labels/", {"inbox": world["support"].pk, "name": name, "color": color}, format="json")
        for name, color in [("VIP", "#FE2C55"), ("Refund", "#25f4ee")]
    ]
    assert [response.status_code for response in made] == [201, 201]
    return {response.json()["name"]: response.json() for response in made}


def conversation_url(conversation):
    return f"/api/v1/conversations/{conversation.pk}/"


def test_labels_belong_to_an_inbox_and_names_are_unique_in_any_case(world, labels):
    assert labels["VIP"]["color"] == "#fe2c55"
    client = api(world["agent"])
    again = client.post("/api/v1/labels/", {"inbox": world["support"].pk, "name": "vip"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "label_exists"
    assert client.post("/api/v1/labels/", {"inbox": world["other"].pk, "name": "X"}, format="json").status_code == 422
    assert [label["name"] for label in client.get("/api/v1/labels/").json()] == ["Refund", "VIP"]
    assert api(world["outsider"]).get("/api/v1/labels/").json() == []
    bad = client.post("/api/v1/labels/", {"inbox": world["support"].pk, "name": "Y", "color": "red"}, format="json")
    assert bad.status_code == 422


def test_labels_are_set_by_name_on_a_conversation_and_filter_the_list(
    world, labels, live_events, django_capture_on_commit_callbacks
):
    client = api(world["agent"])
    bob = world["bob"]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.patch(conversation_url(bob), {"labels": ["vip", "Refund"]}, format="json")
    assert response.status_code == 200 and response.json()["labels"] == ["Refund", "VIP"]
    version = response.json()["version"]
    assert (
        f"inbox.{bob.inbox_id}",
        live.conversation_labels(conversation_id=bob.pk, labels=["Refund", "VIP"], version=version),
    ) in live_events
    listed = client.get("/api/v1/conversations/?label=vip").json()["results"]
    assert [c["id"] for c in listed] == [bob.pk] and listed[0]["labels"] == ["Refund", "VIP"]
    assert client.get("/api/v1/conversations/?label=nothing").json()["results"] == []
    audit = AuditLog.objects.get(action="conversation.labels")
    assert (audit.before, audit.after) == ({"labels": []}, {"labels": ["Refund", "VIP"]})

    removed = client.patch(conversation_url(bob), {"labels": ["VIP"]}, format="json").json()
    assert removed["labels"] == ["VIP"] and removed["version"] == version + 1
    unknown = client.patch(conversation_url(bob), {"labels": ["Nope"]}, format="json")
    assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_label"


def test_deleting_a_label_takes_it_off_conversations(world, labels):
    client = api(world["agent"])
    client.patch(conversation_url(world["bob"]), {"labels": ["VIP"]}, format="json")
    assert client.delete(f"/api/v1/labels/{labels['VIP']['id']}/").status_code == 204
    assert client.get(conversation_url(world["bob"])).json()["labels"] == []
    assert api(world["outsider"]).delete(f"/api/v1/labels/{labels['Refund']['id']}/").status_code == 404
    assert Label.objects.count() == 1


def test_label_events_shape():
    assert live.labels_changed(inbox_id=4) == {"type": "labels.changed", "inbox_id": 4, "version": 1}
    assert live.conversation_labels(conversation_id=1, labels=["A"], version=3) == {
        "type": "conversation.labels",
        "conversation_id": 1,
        "labels": ["A"],
        "version": 3,
    }


def test_canned_responses_shared_and_personal_rendered_for_a_conversation(world, django_user_model):
    support = world["support"].pk
    agent, colleague = api(world["agent"]), api(world["colleague"])
    shared = agent.post(
        "/api/v1/canned-responses/",
        {"inbox": support, "short_code": "thanks", "text": "Thanks {{contact.name}}! — {{ agent.name }}"},
        format="json",
    )
    mine = agent.post(
        "/api/v1/canned-responses/",
        {"inbox": support, "short_code": "sig", "text": "Cheers, {{agent.name}}", "personal": True},
        format="json",
    )
    assert (shared.status_code, mine.status_code) == (201, 201)
    taken = colleague.post(
        "/api/v1/canned-responses/", {"inbox": support, "short_code": "thanks", "text": "x"}, format="json"
    )
    assert taken.status_code == 409
    # The colleague may have a personal /sig of their own.
    assert (
        colleague.post(
            "/api/v1/canned-responses/",
            {"inbox": support, "short_code": "sig", "text": "Bye", "personal": True},
            format="json",
        ).status_code
        == 201
    )

    listed = agent.get(f"/api/v1/canned-responses/?conversation={world['bob'].pk}").json()
    assert [(c["short_code"], c["personal"], c["rendered"]) for c in listed] == [
        ("sig", True, "Cheers, agent"),
        ("thanks", False, "Thanks bob! — agent"),
    ]
    assert [c["short_code"] for c in colleague.get("/api/v1/canned-responses/").json()] == ["sig", "thanks"]
    assert colleague.get("/api/v1/canned-responses/").json()[0]["text"] == "Bye"
    assert api(world["outsider"]).get("/api/v1/canned-responses/").json() == []
    # Someone else's personal response cannot be changed or deleted.
    assert colleague.delete(f"/api/v1/canned-responses/{mine.json()['id']}/").status_code == 404
    assert (
        agent.patch(
            f"/api/v1/canned-responses/{mine.json()['id']}/", {"short_code": "sig2", "text": "Hi"}, format="json"
        ).json()["short_code"]
        == "sig2"
    )
    assert CannedResponse.objects.count() == 3


@pytest.mark.parametrize("code", ["Has Space", "", "x" * 41, "ünï"])
def test_invalid_short_codes_are_422(world, code):
    response = api(world["agent"]).post(
        "/api/v1/canned-responses/", {"inbox": world["support"].pk, "short_code": code, "text": "x"}, format="json"
    )
    assert response.status_code == 422


def test_canned_render_leaves_unknown_variables():
    assert (
        canned_render("Hi {{contact.name}} {{order.id}}", contact_name="Mia", agent_name="A") == "Hi Mia {{order.id}}"
    )
