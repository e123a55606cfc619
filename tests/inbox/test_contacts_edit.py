"""Agents edit contacts: name, email, phone, notes, custom attributes; audited and pushed live."""

import pytest

from inbox import live
from inbox.models import AuditLog, Contact
from tests.inbox.helpers import api

pytestmark = pytest.mark.django_db


def contact_url(world):
    return f"/api/v1/contacts/{world['bob'].contact_id}/"


def test_an_agent_edits_a_contact(world, live_events, django_capture_on_commit_callbacks):
    changes = {
        "display_name": "Bob Baker",
        "email": "bob@example.com",
        "phone": "+49 30 1234",
        "notes": "Prefers mornings",
        "attributes": {"plan": "gold", "city": "Berlin"},
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = api(world["agent"]).patch(contact_url(world), changes, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert {key: body[key] for key in changes} == changes
    assert [c["id"] for c in body["conversations"]] == [world["bob"].pk]
    contact = Contact.objects.get(pk=world["bob"].contact_id)
    assert (contact.display_name, contact.attributes) == ("Bob Baker", {"plan": "gold", "city": "Berlin"})
    audit = AuditLog.objects.get(action="contact.updated")
    assert audit.before["display_name"] == "" and audit.after["email"] == "bob@example.com"
    assert audit.conversation_id == world["bob"].pk
    assert (f"inbox.{world['support'].pk}", live.contact_updated(contact_id=contact.pk)) in live_events
    # Only what is sent changes.
    api(world["agent"]).patch(contact_url(world), {"phone": ""}, format="json")
    contact.refresh_from_db()
    assert (contact.phone, contact.email) == ("", "bob@example.com")


@pytest.mark.parametrize(
    "changes",
    [{"email": "not-an-email"}, {"attributes": {"": "x"}}, {"attributes": {"a": "x" * 501}}, {"phone": "1" * 41}],
)
def test_invalid_contact_edits_are_422(world, changes):
    assert api(world["agent"]).patch(contact_url(world), changes, format="json").status_code == 422


def test_outsiders_cannot_edit(world):
    assert api(world["outsider"]).patch(contact_url(world), {"notes": "x"}, format="json").status_code == 404


def test_contact_updated_event_shape():
    assert live.contact_updated(contact_id=5) == {"type": "contact.updated", "contact_id": 5, "version": 1}


def test_the_attachments_gallery_lists_a_conversations_images(world):
    from tests.inbox.helpers import receive

    receive(world["support"], "bob", 2, type="image", text="", media_url="https://cdn.example.com/a.jpg")
    client = api(world["agent"])
    images = client.get(f"/api/v1/conversations/{world['bob'].pk}/messages/?type=image&order=desc").json()["results"]
    assert [m["media_url"] for m in images] == ["https://cdn.example.com/a.jpg"]
    assert client.get(f"/api/v1/conversations/{world['bob'].pk}/messages/?type=bogus").status_code == 422
