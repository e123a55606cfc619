"""The REST API: every endpoint, filter, ordering and permission rule."""

import base64
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from inbox.models import AuditLog, Conversation, Message
from tests.inbox.helpers import api, receive

pytestmark = pytest.mark.django_db


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


class TestConversationList:
    def test_agent_sees_only_their_inboxes_newest_activity_first(self, world):
        assert ids(api(world["agent"]).get("/api/v1/conversations/")) == [world["bob"].pk, world["alice"].pk]
        assert ids(api(world["outsider"]).get("/api/v1/conversations/")) == [world["carol"].pk]
        assert ids(api(world["admin"]).get("/api/v1/conversations/")) == [
            world["carol"].pk,
            world["bob"].pk,
            world["alice"].pk,
        ]

    def test_item_fields(self, world, settings):
        settings.REPLY_QUOTA_PER_WINDOW = 10
        Conversation.objects.filter(pk=world["bob"].pk).update(referral={"source": "ad", "ad_name": "Winter sale"})
        item = api(world["agent"]).get("/api/v1/conversations/").json()["results"][0]
        bob = Conversation.objects.get(pk=world["bob"].pk)
        assert item["inbox"] == {"id": world["support"].pk, "name": "Support"}
        assert item["contact"] == {"id": bob.contact_id, "display_name": "", "tiktok_user_id": "bob"}
        assert (item["status"], item["priority"], item["assignee"]) == ("open", "none", None)
        assert item["last_message"]["text"] == "Do you ship to Berlin?"
        assert item["last_message"]["direction"] == "in"
        assert item["unread_count"] == 1
        closes = bob.last_inbound_at + timedelta(hours=48)
        assert item["reply_window_closes_at"] == closes.isoformat().replace("+00:00", "Z")
        assert item["replies_left"] == 10
        assert item["referral"] == {
            "source": "ad",
            "label": "Winter sale",
            "kind_label": "Ad",
            "title": "Came from an ad",
            "opened_how": "from an ad",
        }

    def test_replies_left_counts_replies_since_the_last_user_message_except_failed(self, world, settings):
        settings.REPLY_QUOTA_PER_WINDOW = 10
        bob = world["bob"]
        now = timezone.now()
        for status in ["queued", "accepted", "delivered", "failed"]:
            Message.objects.create(
                conversation=bob,
                direction="out",
                type="text",
                text="r",
                channel="tiktok",
                status=status,
                queued_at=now,
                sent_at=now,
            )
        Message.objects.create(
            conversation=bob,
            direction="out",
            type="text",
            text="old",
            channel="tiktok",
            status="seen",
            queued_at=now - timedelta(days=1),
            sent_at=now - timedelta(days=1),
        )
        item = api(world["agent"]).get(f"/api/v1/conversations/{bob.pk}/").json()
        assert item["replies_left"] == 7

    def test_closed_window_has_no_replies_left(self, world):
        Conversation.objects.filter(pk=world["bob"].pk).update(last_inbound_at=timezone.now() - timedelta(hours=49))
        item = api(world["agent"]).get(f"/api/v1/conversations/{world['bob'].pk}/").json()
        assert item["replies_left"] == 0

    def test_unread_count_drops_after_read(self, world):
        receive(world["support"], "bob", 2, text="hello again?")
        client = api(world["agent"])
        assert client.get(f"/api/v1/conversations/{world['bob'].pk}/").json()["unread_count"] == 2
        assert client.post(f"/api/v1/conversations/{world['bob'].pk}/read/").json()["unread_count"] == 0
        receive(world["support"], "bob", 3, text="and again")
        assert client.get(f"/api/v1/conversations/{world['bob'].pk}/").json()["unread_count"] == 1

    @pytest.mark.parametrize("status", ["open", "pending", "resolved"])
    def test_status_filter(self, world, status):
        Conversation.objects.filter(pk=world["alice"].pk).update(status=status)
        expected = [world["bob"].pk] if status == "open" else []
        expected = sorted(expected + [world["alice"].pk])
        assert sorted(ids(api(world["agent"]).get("/api/v1/conversations/", {"status": status}))) == expected

    def test_assignee_filter(self, world):
        Conversation.objects.filter(pk=world["alice"].pk).update(assignee=world["agent"])
        Conversation.objects.filter(pk=world["bob"].pk).update(assignee=world["colleague"])
        client = api(world["agent"])
        assert ids(client.get("/api/v1/conversations/", {"assignee": "me"})) == [world["alice"].pk]
        assert ids(client.get("/api/v1/conversations/", {"assignee": str(world["colleague"].pk)})) == [world["bob"].pk]
        Conversation.objects.filter(pk=world["bob"].pk).update(assignee=None)
        assert ids(client.get("/api/v1/conversations/", {"assignee": "none"})) == [world["bob"].pk]

    def test_inbox_filter(self, world):
        admin = api(world["admin"])
        assert ids(admin.get("/api/v1/conversations/", {"inbox": world["other"].pk})) == [world["carol"].pk]
        assert ids(api(world["agent"]).get("/api/v1/conversations/", {"inbox": world["other"].pk})) == []

    def test_search_by_contact_or_message_text(self, world):
        client = api(world["agent"])
        assert ids(client.get("/api/v1/conversations/", {"q": "berlin"})) == [world["bob"].pk]
        assert ids(client.get("/api/v1/conversations/", {"q": "alic"})) == [world["alice"].pk]
        assert ids(client.get("/api/v1/conversations/", {"q": "secret"})) == []  # other team's text

    def test_order_by_window_closing_soonest(self, world):
        receive(world["support"], "dave", 1, minutes_ago=60 * 50)  # window already closed
        dave = Conversation.objects.get(contact__channel_user_id="dave")
        response = api(world["agent"]).get("/api/v1/conversations/", {"ordering": "window"})
        assert ids(response) == [world["alice"].pk, world["bob"].pk, dave.pk]

    def test_cursor_pagination_walks_every_conversation_once(self, world):
        for n in range(7):
            receive(world["support"], f"user{n}", 1, minutes_ago=100 + n)
        client = api(world["agent"])
        seen, url = [], "/api/v1/conversations/?page_size=3"
        while url:
            body = client.get(url).json()
            seen += [item["id"] for item in body["results"]]
            url = body["next"]
        assert len(seen) == 9 == len(set(seen))

    def test_bad_filters_are_422_with_the_error_shape(self, world):
        response = api(world["agent"]).get("/api/v1/conversations/", {"status": "nope", "assignee": "x"})
        assert response.status_code == 422
        body = response.json()
        assert body["code"] == "invalid" and set(body["fields"]) == {"status", "assignee"}

    def test_query_count_does_not_grow_with_the_page(self, world, django_assert_num_queries):
        client = api(world["agent"])
        # The agent's inbox ids, the page, the page's labels (on PostgreSQL read along with the page).
        queries = 2 if connection.vendor == "postgresql" else 3
        with django_assert_num_queries(queries):
            client.get("/api/v1/conversations/")
        for n in range(15):
            receive(world["support"], f"more{n}", 1)
        with django_assert_num_queries(queries):
            assert len(client.get("/api/v1/conversations/").json()["results"]) == 17


class TestMessages:
    def test_thread_oldest_first_and_reverse(self, world):
        bob = world["bob"]
        receive(world["support"], "bob", 2, text="second")
        client = api(world["agent"])
        texts = [m["text"] for m in client.get(f"/api/v1/conversations/{bob.pk}/messages/").json()["results"]]
        assert texts == ["Do you ship to Berlin?", "second"]
        reverse = client.get(f"/api/v1/conversations/{bob.pk}/messages/", {"order": "desc"}).json()["results"]
        assert [m["text"] for m in reverse] == ["second", "Do you ship to Berlin?"]

    def test_outbound_fields_reaction_and_quote(self, world):
        bob = world["bob"]
        now = timezone.now()
        out = Message.objects.create(
            conversation=bob,
            direction="out",
            type="text",
            text="Yes!",
            channel="tiktok",
            provider_message_id="out-1",
            status="failed",
            queued_at=now,
            accepted_at=now,
            failed_at=now,
            sent_at=now,
            author=world["agent"],
            attempt=2,
            provider_status={"name": "UNDELIVERABLE_NOT_DELIVERED"},
            error={"name": "EC_NO_SESSION", "description": "window closed", "permanent": True, "code": 7010},
        )
        receive(
            world["support"],
            "bob",
            2,
            type="reaction",
            text="",
            reaction_emoji="❤️",
            reaction_action="ADDED",
            quoted_provider_message_id="out-1",
        )
        items = api(world["agent"]).get(f"/api/v1/conversations/{bob.pk}/messages/").json()["results"]
        first_in, sent, reaction = items
        assert first_in["status"] is None and first_in["direction"] == "in"
        assert sent["status"] == "failed" and sent["attempt"] == 2 and sent["author"]["username"] == "agent"
        assert sent["error"] == {"name": "EC_NO_SESSION", "description": "window closed", "permanent": True}
        assert sent["provider_status_name"] == "UNDELIVERABLE_NOT_DELIVERED"
        assert sent["accepted_at"] is not None and sent["delivered_at"] is None
        assert reaction["reaction"] == {"emoji": "❤️", "action": "ADDED"}
        assert reaction["quoted_message_id"] == out.pk

    def test_query_count_does_not_grow_with_the_page(self, world, django_assert_num_queries):
        bob = world["bob"]
        client = api(world["agent"])
        with django_assert_num_queries(2):
            client.get(f"/api/v1/conversations/{bob.pk}/messages/")
        for n in range(20):
            receive(world["support"], "bob", n + 10, text=f"m{n}")
        with django_assert_num_queries(2):
            assert len(client.get(f"/api/v1/conversations/{bob.pk}/messages/").json()["results"]) == 21


class TestActions:
    def test_assign_me_then_colleague_then_unassign(self, world, live_events, django_capture_on_commit_callbacks):
        client = api(world["agent"])
        url = f"/api/v1/conversations/{world['bob'].pk}/"
        with django_capture_on_commit_callbacks(execute=True):
            body = client.post(url + "assign/", {"assignee": "me"}, format="json").json()
        assert body["assignee"]["username"] == "agent"
        assert live_events[-1][1]["type"] == "conversation.updated"
        assert live_events[-1][1]["assignee_id"] == world["agent"].pk
        body = client.post(url + "assign/", {"assignee": str(world["colleague"].pk)}, format="json").json()
        assert body["assignee"]["username"] == "colleague"
        assert client.post(url + "unassign/").json()["assignee"] is None
        actions = list(
            AuditLog.objects.filter(conversation=world["bob"]).order_by("id").values_list("action", "actor__username")
        )
        assert actions == [
            ("conversation.assigned", "agent"),
            ("conversation.assigned", "agent"),
            ("conversation.unassigned", "agent"),
        ]

    def test_assigning_someone_outside_the_inbox_is_refused(self, world):
        client = api(world["agent"])
        url = f"/api/v1/conversations/{world['bob'].pk}/assign/"
        response = client.post(url, {"assignee": str(world["outsider"].pk)}, format="json")
        assert response.status_code == 422 and response.json()["code"] == "invalid_assignee"
        response = client.post(url, {"assignee": "999999"}, format="json")
        assert response.status_code == 422 and response.json()["code"] == "invalid_assignee"
        response = client.post(url, {}, format="json")
        assert response.status_code == 422 and response.json()["fields"] == {"assignee": ["This field is required."]}
        assert Conversation.objects.get(pk=world["bob"].pk).assignee is None

    def test_an_unknown_agent_and_a_non_member_look_the_same_and_admins_outside_the_inbox_are_refused(self, world):
        """No user enumeration through assign; an admin who is not a member of the inbox cannot be assigned either
        (they would own a conversation the inbox's assignee list does not show)."""
        client = api(world["agent"])
        url = f"/api/v1/conversations/{world['bob'].pk}/assign/"
        unknown = client.post(url, {"assignee": "999999"}, format="json")
        outsider = client.post(url, {"assignee": str(world["outsider"].pk)}, format="json")
        assert unknown.status_code == outsider.status_code == 422
        assert unknown.json() == outsider.json()
        admin = client.post(url, {"assignee": str(world["admin"].pk)}, format="json")
        assert admin.status_code == 422 and admin.json() == outsider.json()
        itself = api(world["admin"]).post(url, {"assignee": "me"}, format="json")
        assert itself.status_code == 422 and itself.json() == outsider.json()
        assert Conversation.objects.get(pk=world["bob"].pk).assignee is None

    def test_resolve_reopen_priority(self, world):
        client = api(world["agent"])
        url = f"/api/v1/conversations/{world['bob'].pk}/"
        assert client.post(url + "resolve/").json()["status"] == "resolved"
        assert client.post(url + "reopen/").json()["status"] == "open"
        assert client.post(url + "priority/", {"priority": "urgent"}, format="json").json()["priority"] == "urgent"
        response = client.post(url + "priority/", {"priority": "whenever"}, format="json")
        assert response.status_code == 422 and "priority" in response.json()["fields"]
        audit = AuditLog.objects.filter(conversation=world["bob"], action="conversation.resolved").get()
        assert (audit.before, audit.after) == ({"status": "open"}, {"status": "resolved"})

    def test_a_no_op_action_changes_nothing(self, world):
        client = api(world["agent"])
        url = f"/api/v1/conversations/{world['bob'].pk}/"
        version = client.get(url).json()["version"]
        assert client.post(url + "reopen/").json()["version"] == version
        assert not AuditLog.objects.filter(conversation=world["bob"]).exists()


OUTSIDER_CALLS = [
    ("get", "/api/v1/conversations/{bob}/"),
    ("get", "/api/v1/conversations/{bob}/messages/"),
    ("post", "/api/v1/conversations/{bob}/assign/"),
    ("post", "/api/v1/conversations/{bob}/unassign/"),
    ("post", "/api/v1/conversations/{bob}/resolve/"),
    ("post", "/api/v1/conversations/{bob}/reopen/"),
    ("post", "/api/v1/conversations/{bob}/priority/"),
    ("post", "/api/v1/conversations/{bob}/read/"),
    ("get", "/api/v1/contacts/{bob_contact}/"),
]


@pytest.mark.parametrize(("method", "url"), OUTSIDER_CALLS)
def test_outsider_gets_404_for_everything_of_another_inbox(world, method, url):
    url = url.format(bob=world["bob"].pk, bob_contact=world["bob"].contact_id)
    before = Conversation.objects.values().get(pk=world["bob"].pk)
    response = (
        getattr(api(world["outsider"]), method)(url, {"assignee": "me", "priority": "high"}, format="json")
        if method == "post"
        else api(world["outsider"]).get(url)
    )
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Not found.", "fields": {}}
    assert Conversation.objects.values().get(pk=world["bob"].pk) == before


@pytest.mark.parametrize(
    ("method", "url"), OUTSIDER_CALLS + [("get", "/api/v1/conversations/"), ("get", "/api/v1/contacts/")]
)
def test_anonymous_is_refused_everywhere(world, method, url):
    url = url.format(bob=world["bob"].pk, bob_contact=world["bob"].contact_id)
    response = getattr(APIClient(), method)(url)
    assert response.status_code in (401, 403)
    assert response.json()["code"] == "not_authenticated"


class TestContacts:
    def test_list_and_detail_with_conversations(self, world):
        client = api(world["agent"])
        names = [c["tiktok_user_id"] for c in client.get("/api/v1/contacts/").json()["results"]]
        assert sorted(names) == ["alice", "bob"]
        assert [c["tiktok_user_id"] for c in client.get("/api/v1/contacts/", {"q": "ali"}).json()["results"]] == [
            "alice"
        ]
        detail = client.get(f"/api/v1/contacts/{world['bob'].contact_id}/").json()
        assert detail["business_account_id"] == "biz-1"
        assert [c["id"] for c in detail["conversations"]] == [world["bob"].pk]


def test_token_authentication(world):
    token = Token.objects.create(user=world["agent"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert ids(client.get("/api/v1/conversations/")) == [world["bob"].pk, world["alice"].pk]


def test_schema_and_docs_are_served(world, client):
    client.force_login(world["agent"])
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/v1/conversations/{id}/assign/" in schema.json()["paths"]
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/contacts/-1/", "/api/v1/nothing-here/", "/webhooks/infobip/tiktok/x/y/z/"])
def test_unknown_api_paths_answer_json_404(world, path):
    response = api(world["agent"]).get(path)
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Not found.", "fields": {}}


@pytest.mark.parametrize("url", ["/api/v1/conversations/", "/api/v1/contacts/"])
def test_nul_characters_in_search_are_refused_not_a_500(world, url):
    response = api(world["agent"]).get(url, {"q": "a\x00b"})
    assert response.status_code == 422 and response.json()["fields"]["q"]


class TestForgedCursor:
    """A cursor is ours to decode: a forged one is a 400 with the error shape, never a 500 (issue 21, item 6)."""

    @pytest.mark.parametrize("payload", ["p=abc", "o=0&p=abc", "r=1&p=2026-13-45", "o=x", None])
    @pytest.mark.parametrize(
        "path", ["/api/v1/conversations/", "/api/v1/conversations/{bob}/messages/", "/api/v1/contacts/"]
    )
    def test_forged_cursor_is_400(self, world, path, payload):
        cursor = base64.b64encode(payload.encode()).decode() if payload else "%%not-base64"
        response = api(world["agent"]).get(path.format(bob=world["bob"].pk), {"cursor": cursor})
        assert response.status_code == 400, response.content
        body = response.json()
        assert body["code"] == "invalid_cursor" and body["fields"] == {"cursor": [body["message"]]}

    def test_a_real_cursor_still_works(self, world):
        client = api(world["agent"])
        for path in ["/api/v1/conversations/?page_size=1", "/api/v1/contacts/?page_size=1"]:
            next_url = client.get(path).json()["next"]
            if next_url:
                assert client.get(next_url).status_code == 200
