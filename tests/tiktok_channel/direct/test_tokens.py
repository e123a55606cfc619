"""Token lifecycle: beat refresh ahead of expiry with rotation, two refreshers at once, a refused refresh →
re-authorization needed (banner, email, composer locked, replies held), reconnect → held replies sent, disconnect."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.core import mail
from django.core.cache import cache
from django.db import connection as db_connection
from django.db import connections
from django.utils import timezone

from inbox import domain_events as de
from inbox import outbox
from inbox.models import Message
from inbox.services import reply_queue
from inbox.tasks import send_message, sweep_queued_messages
from tiktok_channel.direct import tokens
from tiktok_channel.direct.models import TikTokConnection
from tiktok_channel.direct.tasks import refresh_expiring_tokens

from .conftest import PROFILE_URL, REFRESH_URL, REVOKE_URL, SEND_URL, TOKEN_URL, envelope, token_answer

pytestmark = pytest.mark.django_db


def expire_soon(connection: TikTokConnection, seconds: int = 60) -> None:
    TikTokConnection.objects.filter(pk=connection.pk).update(
        access_token_expires_at=timezone.now() + timedelta(seconds=seconds)
    )


@responses.activate
def test_beat_refreshes_a_token_about_to_expire_and_keeps_the_rotated_refresh_token(connection, settings):
    settings.TIKTOK_DIRECT_REFRESH_AHEAD_SECONDS = 900
    expire_soon(connection, 300)
    responses.post(REFRESH_URL, json=token_answer(access="act.2", refresh="rft.2", expires_in=7200))

    assert refresh_expiring_tokens.apply().result == {"refreshed": 1}

    connection.refresh_from_db()
    assert (connection.access_token, connection.refresh_token, connection.state) == ("act.2", "rft.2", "connected")
    assert timedelta(minutes=119) < connection.access_token_expires_at - timezone.now() <= timedelta(hours=2)
    assert json.loads(responses.calls[0].request.body)["refresh_token"] == "rft.1"
    # Fresh now: the next beat leaves it alone.
    assert refresh_expiring_tokens.apply().result == {}
    assert len(responses.calls) == 1


def test_the_refresh_task_is_on_the_beat_schedule(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["tiktok-direct-refresh-tokens"]
    assert entry["task"] == refresh_expiring_tokens.name


@responses.activate
def test_a_network_failure_keeps_the_connection_and_tries_again_later(connection):
    expire_soon(connection)
    responses.post(REFRESH_URL, status=503)
    assert refresh_expiring_tokens.apply().result == {"transient": 1}
    connection.refresh_from_db()
    assert connection.state == "connected" and connection.refresh_token == "rft.1"
    assert "will retry" in connection.last_error


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_user(
        "root", email="root@example.test", password="root-pass-123", is_staff=True, is_superuser=True
    )


@responses.activate
def test_a_refused_refresh_needs_reauthorization_and_holds_replies_until_reconnected(
    client,
    connection,
    conversation,
    agent,
    admin_user,
    no_broker,
    app,
    django_capture_on_commit_callbacks,
    domain_events,
):
    reply = reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="Still there?")
    # TikTok: the access token is invalid; the refresh token has been revoked.
    responses.post(SEND_URL, json=envelope(code=40105, message="invalid access token"))
    responses.post(REFRESH_URL, json=envelope(code=40107, message="invalid refresh token"))

    with django_capture_on_commit_callbacks(execute=True):
        assert send_message.apply(args=[reply.pk]).result == "held"

    reply.refresh_from_db()
    assert reply.status == "queued" and reply.error == {}
    connection.refresh_from_db()
    assert connection.state == "reauthorization_needed" and "40107" in connection.last_error
    # Agents looking at the account's conversations are told to refetch them (their composer locks).
    changed = [e for e in domain_events if isinstance(e, de.ConversationConnectionChanged)]
    assert [e.conversation_id for e in changed] == [conversation.pk]
    # One email to the admins.
    (email,) = mail.outbox
    assert email.to == ["root@example.test"] and "reconnected" in email.subject
    assert app.connect_url in email.body and "act.1" not in email.body and "rft.1" not in email.body
    # The sweeper leaves a held reply alone (no send loop while the account waits).
    Message.objects.filter(pk=reply.pk).update(queued_at=timezone.now() - timedelta(minutes=10))
    assert sweep_queued_messages.apply().result == 0

    # Agents: the composer is locked with the reason, a new reply is refused 409.
    client.force_login(agent)
    detail = client.get(f"/api/v1/conversations/{conversation.pk}/").json()
    assert detail["reply_lock"]["code"] == "channel_reauthorization_needed"
    url = f"/api/v1/conversations/{conversation.pk}/messages/"
    refused = client.post(url, {"type": "text", "text": "x"}, content_type="application/json")
    assert refused.status_code == 409 and refused.json()["code"] == "channel_reauthorization_needed"
    # Agents (not staff) see no admin banner; staff do, in the inbox and in admin.
    assert b"connection-alerts" not in client.get("/").content
    client.force_login(admin_user)
    for page in ("/", "/admin/"):
        html = client.get(page).content.decode()
        assert "must be reconnected" in html and app.connect_url in html

    # Reconnect: the held reply goes out.
    responses.post(TOKEN_URL, json=token_answer(access="act.9", refresh="rft.9"))
    responses.get(PROFILE_URL, json=envelope({"display_name": "Shop"}))
    start = client.get(urlsplit(app.connect_url).path)
    state = parse_qs(urlsplit(start["Location"]).query)["state"][0]
    no_broker.clear()
    with django_capture_on_commit_callbacks(execute=True):
        client.get("/tiktok/oauth/callback/", {"code": "code-9", "state": state})
    connection.refresh_from_db()
    assert (connection.state, connection.access_token) == ("connected", "act.9")
    assert no_broker == [reply.pk]  # released to the outbox
    changed = [e for e in domain_events if isinstance(e, de.ConversationConnectionChanged)]
    assert len(changed) == 2 and changed[1].version > changed[0].version  # and the composers unlock
    responses.replace(responses.POST, SEND_URL, json=envelope({"message": {"message_id": "7400"}}))
    assert send_message.apply(args=[reply.pk]).result == "accepted"
    assert responses.calls[-1].request.headers["Access-Token"] == "act.9"
    client.force_login(agent)
    assert client.get(f"/api/v1/conversations/{conversation.pk}/").json()["reply_lock"] is None
    assert b"must be reconnected" not in client.get("/").content
    assert len(mail.outbox) == 1


@responses.activate
def test_an_expired_refresh_token_by_our_clock_needs_reauthorization_without_calling(connection):
    TikTokConnection.objects.filter(pk=connection.pk).update(
        access_token_expires_at=timezone.now(), refresh_token_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert tokens.refresh_connection(connection.pk) == tokens.REAUTHORIZATION_NEEDED
    assert len(responses.calls) == 0
    connection.refresh_from_db()
    assert connection.state == "reauthorization_needed"


@responses.activate
def test_a_released_reply_keeps_its_held_lease_cleared(connection, conversation, agent, no_broker):
    reply = reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="hi")
    cache.set(outbox.scheduled_key(reply.provider_message_id), "held", timeout=300)
    no_broker.clear()
    assert outbox.release_held(provider="tiktok_direct", endpoint_ids=[connection.account_id]) == 1
    assert no_broker == [reply.pk]
    assert cache.get(outbox.scheduled_key(reply.provider_message_id)) is None


@responses.activate
def test_disconnect_revokes_the_token_and_forgets_it(connection, client, admin_user):
    responses.post(REVOKE_URL, json=envelope({}))
    client.force_login(admin_user)
    url = f"/admin/tiktok_channel/tiktokconnection/{connection.pk}/disconnect/"
    assert b"Yes, disconnect" in client.get(url).content
    response = client.post(url)
    assert response.status_code == 302
    assert json.loads(responses.calls[0].request.body) == {
        "client_id": "app-key-1",
        "client_secret": "app-secret-0123456789",
        "access_token": "act.1",
    }
    connection.refresh_from_db()
    assert (connection.state, connection.access_token, connection.refresh_token) == ("disconnected", "", "")


@pytest.mark.django_db(transaction=True)
@responses.activate
def test_two_refreshers_at_once_do_not_lose_the_rotated_refresh_token(app, connection):
    """Two workers refresh the same due connection at once. TikTok rotates the refresh token: the second must not
    send the dead one. The first holds the row lock while TikTok answers; TikTok answers only once the second is
    seen waiting for that lock (PostgreSQL; SQLite, which serializes writers anyway, has no such view to ask)."""
    expire_soon(connection)
    issued = {"rft.1": ("act.2", "rft.2")}
    calls: list[str] = []

    def second_is_waiting() -> bool:
        if db_connection.vendor != "postgresql":
            return True
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            return cursor.fetchone()[0] >= 1

    def refresh_endpoint(request):
        sent = json.loads(request.body)["refresh_token"]
        calls.append(sent)
        if len(calls) == 1:
            deadline = time.monotonic() + 10
            while not second_is_waiting() and time.monotonic() < deadline:
                time.sleep(0.02)  # polls a condition with a deadline
        if sent not in issued:
            return (200, {}, json.dumps(envelope(code=40107, message="invalid refresh token")))
        access, refresh = issued.pop(sent)
        return (200, {}, json.dumps(token_answer(access=access, refresh=refresh)))

    responses.add_callback(responses.POST, REFRESH_URL, callback=refresh_endpoint)
    outcomes: list[str] = []

    def worker():
        try:
            outcomes.append(tokens.refresh_connection(connection.pk))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["not_due", "refreshed"]
    assert calls == ["rft.1"]
    connection.refresh_from_db()
    assert (connection.state, connection.access_token, connection.refresh_token) == ("connected", "act.2", "rft.2")
