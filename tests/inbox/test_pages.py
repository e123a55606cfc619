"""The agents' pages (login, logout, the inbox shell) and the API additions the inbox script relies on."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from inbox.models import Message
from inbox.services import message_version
from tests.inbox.helpers import api, receive

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def agent_user(db, django_user_model, inbox):
    user = django_user_model.objects.create_user("agent1", password="agent-pass-123", first_name="Ada")
    inbox.members.add(user)
    return user


def login(client, username="agent1", password="agent-pass-123", **extra):
    return client.post(reverse("login"), {"username": username, "password": password, **extra})


# --- login, logout, throttling ------------------------------------------------------------------------


def test_the_front_door_sends_anonymous_visitors_to_the_login_page(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=/")


def test_login_page_renders_a_form(client, db):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="username"' in html and 'name="password"' in html and "csrfmiddlewaretoken" in html


def test_an_agent_logs_in_and_lands_in_the_inbox(client, agent_user):
    response = login(client)
    assert response.status_code == 302
    assert response["Location"] == reverse("inbox:home")
    assert client.get("/").status_code == 200


def test_login_honours_a_safe_next_and_ignores_a_foreign_one(client, agent_user):
    assert login(client, next="/c/5/")["Location"] == "/c/5/"
    client.logout()
    assert login(client, next="https://evil.example/")["Location"] == reverse("inbox:home")


def test_a_wrong_password_shows_an_error(client, agent_user):
    response = login(client, password="nope")
    assert response.status_code == 200
    assert "do not match" in response.content.decode()


def test_repeated_failures_lock_the_account_out_even_with_the_right_password(client, agent_user):
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        assert login(client, password="wrong").status_code == 200
    locked = login(client, password="wrong")
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    # Locked: the right password does not get in either.
    assert login(client).status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_lock_is_per_username_so_other_agents_still_log_in(client, agent_user, django_user_model, inbox):
    other = django_user_model.objects.create_user("agent2", password="other-pass-123")
    inbox.members.add(other)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(client, password="wrong")
    assert login(client, username="agent2", password="other-pass-123").status_code == 302


def test_failures_from_many_addresses_still_lock_the_username(client, agent_user):
    """A new address per guess (a rotating X-Forwarded-For a server trusted, or many hosts) does not reset the count:
    the lock is per username as well as per (username, address)."""

    def attempt(password: str, address: str):
        return client.post(reverse("login"), {"username": "agent1", "password": password}, REMOTE_ADDR=address)

    for n in range(settings.AXES_FAILURE_LIMIT - 1):
        assert attempt("wrong", f"203.0.113.{n + 1}").status_code == 200
    assert attempt("wrong", "203.0.113.100").status_code == 429
    assert attempt("agent-pass-123", "198.51.100.7").status_code == 429  # the right password, a fresh address
    assert "_auth_user_id" not in client.session


def test_a_success_before_the_limit_resets_the_count(client, agent_user):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        login(client, password="wrong")
    assert login(client).status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert login(client, password="wrong").status_code == 200
    assert login(client).status_code == 302


def test_the_admin_login_is_throttled_too(client, db, django_user_model):
    django_user_model.objects.create_superuser("boss", password="boss-pass-123")
    url = reverse("admin:login")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(url, {"username": "boss", "password": "wrong", "next": "/admin/"})
    assert client.post(url, {"username": "boss", "password": "boss-pass-123"}).status_code == 429


def test_logout_is_a_post_and_ends_the_session(client, agent_user):
    client.force_login(agent_user)
    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert client.get("/").status_code == 302


def test_a_logged_in_agent_visiting_the_login_page_goes_to_the_inbox(client, agent_user):
    client.force_login(agent_user)
    response = client.get(reverse("login"))
    assert response.status_code == 302 and response["Location"] == reverse("inbox:home")


# --- the inbox page ---------------------------------------------------------------------------------------


def inbox_config(response) -> dict:
    match = re.search(r'<script id="inbox-config" type="application/json">(.*?)</script>', response.content.decode())
    assert match, "the page hands its configuration over as a JSON script tag"
    return json.loads(match.group(1))


def test_the_inbox_page_hands_the_script_its_configuration(client, agent_user):
    client.force_login(agent_user)
    response = client.get("/")
    assert response.status_code == 200
    config = inbox_config(response)
    assert config["user"] == {"id": agent_user.pk, "username": "agent1", "name": "Ada"}
    assert config["api"] == "/api/v1/" and config["ws_path"] == "/ws/inbox/"
    assert config["conversation_id"] is None
    assert config["reply_window_hours"] == settings.REPLY_WINDOW_HOURS
    assert config["reply_quota"] == settings.REPLY_QUOTA_PER_WINDOW
    assert {"value": "urgent", "label": "Urgent"} in config["priorities"]


def test_a_conversation_url_opens_the_inbox_on_that_conversation(client, agent_user, inbox):
    from tests.inbox.helpers import receive

    conversation = receive(inbox, "user-42", 1)
    client.force_login(agent_user)
    response = client.get(reverse("inbox:conversation", args=[conversation.pk]))
    assert response.status_code == 200
    assert inbox_config(response)["conversation_id"] == conversation.pk
    assert client.get(reverse("inbox:conversation", args=[conversation.pk + 1000])).status_code == 404


def test_user_data_in_the_configuration_cannot_close_the_script_tag(client, db, django_user_model):
    user = django_user_model.objects.create_user("x", password="pw-123456", first_name="</script><img src=x>")
    client.force_login(user)
    html = client.get("/").content.decode()
    assert "</script><img" not in html
    assert inbox_config(client.get("/"))["user"]["name"] == "</script><img src=x>"


@pytest.mark.parametrize("path", ["/", "/c/1/", "/login/"])
def test_pages_carry_no_inline_script_style_or_handler(client, agent_user, path):
    """The Content-Security-Policy allows scripts and styles from our origin only."""
    if path != "/login/":
        client.force_login(agent_user)
    html = client.get(path).content.decode()
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert not re.search(r"\sstyle\s*=", html)
    assert not re.search(r"\son[a-z]+\s*=", html)
    assert "<style" not in html


def test_pages_are_served_with_the_content_security_policy(client, agent_user):
    client.force_login(agent_user)
    policy = client.get("/")["Content-Security-Policy"]
    assert "script-src 'self'" in policy


def test_the_static_files_the_pages_use_exist_and_are_served(client, agent_user):
    client.force_login(agent_user)
    html = client.get("/").content.decode()
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert {Path(a).name for a in assets} >= {"main.js", "app.css", "favicon.svg"}
    assert '<script type="module" src="/static/inbox/js/main.js">' in html
    for asset in assets:
        assert (ROOT / "static" / asset.removeprefix("/static/")).exists(), asset


def test_the_scripts_never_parse_data_as_html():
    scripts = list((ROOT / "static" / "inbox").rglob("*.js"))
    assert len(scripts) >= 10
    for path in scripts:
        script = path.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in script, (path, sink)


def test_the_root_no_longer_redirects_admins_away(client, db, django_user_model):
    admin = django_user_model.objects.create_superuser("root", password="pw")
    client.force_login(admin)
    assert client.get("/").status_code == 200
    assert client.get("/admin/").status_code == 200


# --- API additions the inbox uses ---------------------------------------------------------------------------


def test_a_single_message_can_be_fetched_with_its_version(agent_user, inbox):
    conversation = receive(inbox, "alice", 1, text="Hi")
    message = conversation.messages.get()
    response = api(agent_user).get(f"/api/v1/messages/{message.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == message.pk and body["text"] == "Hi" and body["conversation_id"] == conversation.pk
    assert body["version"] == message_version(1, Message.Status.QUEUED)


def test_a_message_version_follows_the_live_events(agent_user, inbox):
    conversation = receive(inbox, "alice", 1, text="Hi")
    out = Message.objects.create(
        conversation=conversation,
        direction="out",
        type="text",
        text="Hello",
        channel="tiktok",
        provider_message_id="p-1",
        status="delivered",
        attempt=2,
        sent_at=conversation.last_activity_at,
    )
    body = api(agent_user).get(f"/api/v1/messages/{out.pk}/").json()
    assert body["version"] == message_version(2, "delivered")
    listed = api(agent_user).get(f"/api/v1/conversations/{conversation.pk}/messages/").json()["results"]
    assert [m["version"] for m in listed] == [message_version(1, "queued"), message_version(2, "delivered")]


def test_a_message_outside_the_agents_inboxes_is_not_found(agent_user, django_user_model):
    from inbox.models import Inbox

    other = Inbox.objects.create(name="Other")
    message = receive(other, "carol", 1, text="secret").messages.get()
    assert api(agent_user).get(f"/api/v1/messages/{message.pk}/").status_code == 404
    from rest_framework.test import APIClient

    assert APIClient().get(f"/api/v1/messages/{message.pk}/").status_code == 403


@pytest.mark.django_db
def test_a_conversation_page_of_another_inbox_is_404(client, world):
    client.force_login(world["outsider"])
    assert client.get(f"/c/{world['bob'].pk}/").status_code == 404
    assert client.get(f"/c/{world['carol'].pk}/").status_code == 200
    client.force_login(world["admin"])
    assert client.get(f"/c/{world['bob'].pk}/").status_code == 200
