"""Connect: the staff-only start, TikTok's consent page URL, and every ending of the callback (connected; denied,
wrong, expired, reused or foreign state, refused code, missing scope: a clear admin message and nothing stored)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
import time_machine
from django.contrib.messages import get_messages
from django.db import connection as db_connection
from django.utils import timezone

from tiktok_channel.direct.models import TikTokConnection

from .conftest import AUTH, BUSINESS_ID, PROFILE_URL, TOKEN_URL, envelope, token_answer

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("boss", password="boss-pass-123", is_staff=True, is_superuser=True)


def start(client, app) -> dict:
    """Open the app's connect URL; returns the query of TikTok's consent page it redirects to."""
    response = client.get(f"/tiktok/apps/{app.pk}/connect/")
    assert response.status_code == 302
    url = urlsplit(response["Location"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{AUTH}/v2/auth/authorize/"
    return {key: values[0] for key, values in parse_qs(url.query).items()}


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_connect_is_for_staff_only(client, app, agent):
    assert client.get(f"/tiktok/apps/{app.pk}/connect/")["Location"].startswith("/admin/login/")
    client.force_login(agent)  # an agent, not staff
    assert client.get(f"/tiktok/apps/{app.pk}/connect/")["Location"].startswith("/admin/login/")


def test_connect_redirects_to_tiktok_with_the_scopes_and_a_signed_state(client, app, staff, settings):
    client.force_login(staff)
    query = start(client, app)
    assert query["client_key"] == "app-key-1"
    assert query["response_type"] == "code"
    assert query["redirect_uri"] == f"{settings.PUBLIC_BASE_URL}/tiktok/oauth/callback/"
    assert set(query["scope"].split(",")) >= {"message.list.read", "message.list.send", "message.list.manage"}
    assert len(query["state"]) > 40 and ":" in query["state"]  # signed


@responses.activate
def test_the_callback_stores_the_connection_with_tokens_encrypted(client, app, staff):
    responses.post(TOKEN_URL, json=token_answer(access="act.new", refresh="rft.new"))
    responses.get(PROFILE_URL, json=envelope({"username": "shop_tt", "display_name": "The Shop"}))
    client.force_login(staff)
    state = start(client, app)["state"]

    response = client.get("/tiktok/oauth/callback/", {"code": "code-1", "state": state}, follow=False)

    connection = TikTokConnection.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/tiktok_channel/tiktokconnection/{connection.pk}/change/"
    assert any("The Shop is connected" in text for text in texts(response))
    assert (connection.account_id, connection.display_name, connection.username) == (BUSINESS_ID, "The Shop", "shop_tt")
    assert (connection.access_token, connection.refresh_token, connection.state) == ("act.new", "rft.new", "connected")
    assert connection.connected_by == staff
    now = timezone.now()
    assert timedelta(hours=23) < connection.access_token_expires_at - now <= timedelta(hours=24)
    assert timedelta(days=364) < connection.refresh_token_expires_at - now <= timedelta(days=365)
    exchange = json.loads(responses.calls[0].request.body)
    assert exchange == {
        "client_id": "app-key-1",
        "client_secret": "app-secret-0123456789",
        "grant_type": "authorization_code",
        "auth_code": "code-1",
        "redirect_uri": app.redirect_uri(),
    }
    assert responses.calls[1].request.headers["Access-Token"] == "act.new"
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT access_token, refresh_token FROM tiktok_channel_tiktokconnection")
        raw = cursor.fetchone()
    assert "act.new" not in raw[0] and "rft.new" not in raw[1]


@responses.activate
def test_the_callback_accepts_auth_code_too_and_lifetimes_from_the_answer(client, app, staff):
    responses.post(TOKEN_URL, json=token_answer(expires_in=7200, refresh_token_expires_in=180 * 86400))
    responses.get(PROFILE_URL, json=envelope({"display_name": "Shop"}))
    client.force_login(staff)
    state = start(client, app)["state"]
    client.get("/tiktok/oauth/callback/", {"auth_code": "code-2", "state": state})
    connection = TikTokConnection.objects.get()
    assert connection.access_token_expires_at - timezone.now() <= timedelta(hours=2)
    assert connection.refresh_token_expires_at - timezone.now() <= timedelta(days=180)


@responses.activate
def test_denied_consent_stores_nothing(client, app, staff):
    client.force_login(staff)
    state = start(client, app)["state"]
    response = client.get(
        "/tiktok/oauth/callback/",
        {"error": "access_denied", "error_description": "The user denied the request", "state": state},
    )
    assert response["Location"] == f"/admin/tiktok_channel/tiktokapp/{app.pk}/change/"
    assert any("did not grant access (The user denied the request)" in text for text in texts(response))
    assert TikTokConnection.objects.count() == 0 and len(responses.calls) == 0


@responses.activate
def test_a_forged_state_stores_nothing(client, app, staff):
    client.force_login(staff)
    start(client, app)
    response = client.get("/tiktok/oauth/callback/", {"code": "c", "state": "forged:state"})
    assert any("valid state" in text for text in texts(response))
    assert TikTokConnection.objects.count() == 0 and len(responses.calls) == 0


@responses.activate
def test_a_state_is_single_use(client, app, staff):
    responses.post(TOKEN_URL, json=token_answer())
    responses.get(PROFILE_URL, json=envelope({"display_name": "Shop"}))
    client.force_login(staff)
    state = start(client, app)["state"]
    client.get("/tiktok/oauth/callback/", {"code": "c", "state": state})
    TikTokConnection.objects.all().delete()

    response = client.get("/tiktok/oauth/callback/", {"code": "c", "state": state})
    assert any("already used" in text for text in texts(response))
    assert TikTokConnection.objects.count() == 0 and len(responses.calls) == 2


@responses.activate
def test_a_state_from_another_session_is_refused(client, app, staff, django_user_model):
    client.force_login(staff)
    state = start(client, app)["state"]
    other = django_user_model.objects.create_user("other", password="x-pass-123", is_staff=True)
    client.force_login(other)  # a new session
    response = client.get("/tiktok/oauth/callback/", {"code": "c", "state": state})
    assert any("another browser session" in text for text in texts(response))
    assert TikTokConnection.objects.count() == 0 and len(responses.calls) == 0


@responses.activate
def test_an_expired_state_is_refused(client, app, staff, settings):
    settings.TIKTOK_DIRECT_OAUTH_STATE_MAX_AGE_SECONDS = 600
    client.force_login(staff)
    state = start(client, app)["state"]
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=11)):
        response = client.get("/tiktok/oauth/callback/", {"code": "c", "state": state})
    assert any("expired" in text for text in texts(response))
    assert TikTokConnection.objects.count() == 0 and len(responses.calls) == 0


@responses.activate
def test_a_refused_code_stores_nothing(client, app, staff):
    responses.post(TOKEN_URL, json=envelope(code=40110, message="auth code error"))
    client.force_login(staff)
    state = start(client, app)["state"]
    response = client.get("/tiktok/oauth/callback/", {"code": "reused", "state": state})
    assert any("refused the authorization code" in text and "Nothing was connected" in text for text in texts(response))
    assert TikTokConnection.objects.count() == 0


@responses.activate
def test_a_missing_messaging_scope_stores_nothing_and_revokes(client, app, staff):
    from .conftest import REVOKE_URL

    responses.post(TOKEN_URL, json=token_answer(scope="user.info.basic,message.list.read"))
    responses.post(REVOKE_URL, json=envelope({}))
    client.force_login(staff)
    state = start(client, app)["state"]
    response = client.get("/tiktok/oauth/callback/", {"code": "c", "state": state})
    assert any("did not grant message.list.manage, message.list.send" in text for text in texts(response))
    assert TikTokConnection.objects.count() == 0
    assert json.loads(responses.calls[1].request.body)["access_token"] == "act.1"


@responses.activate
def test_the_account_is_connected_even_when_its_name_cannot_be_read(client, app, staff):
    responses.post(TOKEN_URL, json=token_answer())
    responses.get(PROFILE_URL, json=envelope(code=40001, message="no permission"))
    client.force_login(staff)
    state = start(client, app)["state"]
    client.get("/tiktok/oauth/callback/", {"code": "c", "state": state})
    connection = TikTokConnection.objects.get()
    assert (connection.state, connection.display_name, str(connection)) == ("connected", "", BUSINESS_ID)
