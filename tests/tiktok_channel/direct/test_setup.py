"""Setting an app up: `manage.py tiktok_app add/list`, and the admin (secret write-only, URLs to paste, Connect)."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection as db_connection

from inbox.models import Inbox
from tiktok_channel.direct.models import TikTokApp

from .conftest import SECRET

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("tiktok_app", *args, stdout=out)
    return out.getvalue()


def test_add_prints_one_json_object_with_the_urls(settings):
    settings.PUBLIC_BASE_URL = "https://inbox.example.test"
    printed = run(
        "add",
        "--name",
        "Shop",
        "--client-key",
        "key-1",
        "--client-secret",
        "secret-1",
        "--api-base-url",
        "http://127.0.0.1:9001/",
        "--auth-base-url",
        "http://127.0.0.1:9001",
        "--inbox",
        "Shop DMs",
    )
    data = json.loads(printed)
    app = TikTokApp.objects.get()
    assert data["id"] == app.pk
    assert data["webhook_url"] == f"https://inbox.example.test/webhooks/tiktok/{app.webhook_path_token}/"
    assert data["redirect_uri"] == "https://inbox.example.test/tiktok/oauth/callback/"
    assert data["connect_url"] == f"https://inbox.example.test/tiktok/apps/{app.pk}/connect/"
    assert (app.api_base_url, app.auth_base_url) == ("http://127.0.0.1:9001", "http://127.0.0.1:9001")
    assert app.inbox == Inbox.objects.get(name="Shop DMs") and app.client_secret == "secret-1"
    assert "secret-1" not in printed
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT client_secret FROM tiktok_channel_tiktokapp")
        assert "secret-1" not in cursor.fetchone()[0]
    listed = run("list")
    assert "secret-1" not in listed and json.loads(listed)[0]["connections"] == []


def test_add_defaults_to_tiktok_s_hosts_and_the_app_name_as_inbox():
    run("add", "--name", "Shop", "--client-key", "k", "--client-secret", "s")
    app = TikTokApp.objects.get()
    assert (app.api_base_url, app.auth_base_url) == ("https://business-api.tiktok.com", "https://www.tiktok.com")
    assert app.inbox.name == "Shop"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--api-base-url", "not a url"], "--api-base-url is not an http\\(s\\) URL"),
        (["--client-secret", ""], "must not be empty"),
    ],
)
def test_bad_arguments_fail_with_a_reason(args, reason):
    base = {"--name": "Shop", "--client-key": "k", "--client-secret": "s"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    with pytest.raises(CommandError, match=reason):
        run("add", *[item for pair in base.items() for item in pair])
    assert TikTokApp.objects.count() == 0


def test_a_second_app_with_the_same_name_fails():
    run("add", "--name", "Shop", "--client-key", "k", "--client-secret", "s")
    with pytest.raises(CommandError, match="exists already"):
        run("add", "--name", "Shop", "--client-key", "k", "--client-secret", "s")


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_user("root", password="root-pass-123", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


def test_admin_never_shows_the_secret_and_offers_connect(admin_client, app, connection):
    page = admin_client.get(f"/admin/tiktok_channel/tiktokapp/{app.pk}/change/").content.decode()
    assert SECRET not in page
    assert app.webhook_url in page and app.redirect_uri() in page and app.connect_url in page
    page = admin_client.get(f"/admin/tiktok_channel/tiktokconnection/{connection.pk}/change/").content.decode()
    assert "act.1" not in page and "rft.1" not in page and "stored (encrypted)" in page
    assert "Disconnect" in page and "Reconnect" in page


def test_admin_keeps_the_secret_when_the_box_is_left_empty(admin_client, app, inbox):
    response = admin_client.post(
        f"/admin/tiktok_channel/tiktokapp/{app.pk}/change/",
        {
            "name": "Renamed",
            "client_key": "app-key-1",
            "client_secret": "",
            "api_base_url": app.api_base_url,
            "auth_base_url": app.auth_base_url,
            "inbox": inbox.pk,
            "active": "on",
            "connections-TOTAL_FORMS": "0",
            "connections-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    app.refresh_from_db()
    assert (app.name, app.client_secret) == ("Renamed", SECRET)


def test_admin_adds_an_app_and_requires_the_secret(admin_client, inbox):
    form = {
        "name": "New app",
        "client_key": "key-9",
        "client_secret": "",
        "api_base_url": "https://business-api.tiktok.com",
        "auth_base_url": "https://www.tiktok.com",
        "inbox": inbox.pk,
        "active": "on",
        "connections-TOTAL_FORMS": "0",
        "connections-INITIAL_FORMS": "0",
    }
    refused = admin_client.post("/admin/tiktok_channel/tiktokapp/add/", form)
    assert refused.status_code == 200 and "The app secret is required." in refused.content.decode()
    added = admin_client.post("/admin/tiktok_channel/tiktokapp/add/", {**form, "client_secret": "s-9"})
    assert added.status_code == 302
    assert TikTokApp.objects.get(name="New app").client_secret == "s-9"
