"""The provider and the TikTok sandbox agree on the wire: the provider's own calls (token, profile, send, upload,
media download, revoke) against the sandbox as a real HTTP server, and the sandbox's signed webhooks (captured by a
receiver, then handed to our webhook view unchanged: body and signature) applied by the provider. Both sides were
written from ../shared/tiktok/README.md; this is where they meet without a stack (the e2e test runs the rest)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import requests
from django.contrib.messages import get_messages
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.utils import timezone

from inbox.models import Message
from inbox.services import reply_queue
from inbox.tasks import send_message
from tests.tiktok_channel.sandbox_helpers import Captured, Receiver, wait_until
from tiktok_channel.direct import tokens
from tiktok_channel.direct.models import TikTokApp, TikTokConnection
from tiktok_channel.direct.sandbox.behaviour import Behaviour
from tiktok_channel.direct.sandbox.server import SandboxServer
from tiktok_channel.direct.sandbox.state import Sandbox

pytestmark = pytest.mark.django_db(transaction=True)

KEY, SECRET, OPEN_ID = "wire-app", "wire-secret-0123456789", "-000wire-shop"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@pytest.fixture
def wire(receiver, inbox, settings) -> Iterator[tuple[SandboxServer, TikTokApp, Receiver]]:
    settings.PUBLIC_BASE_URL = "http://inbox.wire.test"
    server = SandboxServer(Sandbox(Behaviour(read_delay_ms=0, webhook_retries=0, webhook_timeout_s=2)))
    server.start()
    app = TikTokApp.objects.create(
        name="Wire",
        client_key=KEY,
        client_secret=SECRET,
        api_base_url=server.url,
        auth_base_url=server.url,
        inbox=inbox,
    )
    server.sandbox.add_app(
        {"client_key": KEY, "client_secret": SECRET, "redirect_uri": app.redirect_uri(), "webhook_url": receiver.url}
    )
    server.sandbox.add_account({"open_id": OPEN_ID, "username": "wire_shop", "display_name": "Wire Shop"})
    yield server, app, receiver
    server.stop()


def relay(client, app: TikTokApp, captured: Captured):
    """Hand one webhook the sandbox sent to our webhook view, as it came: raw body and TikTok-Signature."""
    signature = {k.lower(): v for k, v in captured.headers.items()}["tiktok-signature"]
    url = f"/webhooks/tiktok/{app.webhook_path_token}/"
    return client.post(url, data=captured.body, content_type="application/json", HTTP_TIKTOK_SIGNATURE=signature)


def next_webhooks(receiver: Receiver, seen: int, count: int = 1) -> list[Captured]:
    wait_until(lambda: len(receiver.requests) >= seen + count, 5, f"{count} more webhooks")
    return list(receiver.requests)[seen : seen + count]


def connect(server: SandboxServer, app: TikTokApp) -> TikTokConnection:
    sandbox = server.sandbox
    scopes = ["user.info.basic", "message.list.read", "message.list.send", "message.list.manage"]
    code = sandbox.issue_code(app=sandbox.apps[KEY], open_id=OPEN_ID, scope=scopes, redirect_uri=app.redirect_uri())
    return tokens.connect(app=app, code=code, user=None)


def test_provider_and_sandbox_agree_on_every_call_and_event(wire, client, agent, admin_client):
    server, app, receiver = wire
    sandbox = server.sandbox

    # OAuth: the code exchanged, the profile read (its display name shown), expiries from the answer's lifetimes.
    sandbox.behaviour.update({"access_token_ttl_s": 5000, "refresh_token_ttl_s": 90_000})
    before = timezone.now()
    connection = connect(server, app)
    assert (connection.display_name, connection.username) == ("Wire Shop", "wire_shop")
    access_left = connection.access_token_expires_at - before
    refresh_left = connection.refresh_token_expires_at - before
    assert timedelta(seconds=4990) < access_left <= timedelta(seconds=5010), access_left
    assert timedelta(seconds=89_990) < refresh_left <= timedelta(seconds=90_010), refresh_left

    # A user writes text, an image, a share post and a sticker: each webhook verifies and applies.
    seen = 0
    first = sandbox.inbound({"account": OPEN_ID, "user": "u-1", "username": "ann", "text": "Hello"})
    sandbox.inbound({"account": OPEN_ID, "user": "u-1", "image": True})
    sandbox.inbound({"account": OPEN_ID, "user": "u-1", "share_post": True})
    sandbox.inbound({"account": OPEN_ID, "user": "u-1", "other": "sticker"})
    for captured in next_webhooks(receiver, seen, 4):
        assert relay(client, app, captured).status_code == 200
    seen += 4
    inbound = list(Message.objects.filter(direction="in").order_by("id"))
    assert [m.type for m in inbound] == ["text", "image", "share_post", "unsupported"]
    assert inbound[0].text == "Hello" and inbound[0].provider_message_id == first["message_id"]
    conversation = inbound[0].conversation
    assert conversation.provider_conversation_id == first["conversation_id"]

    # The received image: our media view asks TikTok for a download URL and fetches it with `x-user`.
    image = admin_client.get(inbound[1].media_url.removeprefix("http://inbox.wire.test"))
    assert image.status_code == 200, image.content
    assert image["Content-Type"].startswith("image/")

    # A text reply quoting the user's message: sent with the quote, then echoed (im_send_msg, not stored twice)
    # and read (im_mark_read_msg → seen).
    text = reply_queue(
        conversation_id=conversation.pk,
        author=agent,
        type="text",
        text="Hi Ann!",
        quoted_message_id=inbound[0].pk,
    )
    assert send_message.apply(args=[text.pk]).result == "accepted"
    text.refresh_from_db()
    (on_tiktok,) = [m for m in sandbox.state()["sent"] if m["message_type"] == "TEXT"]
    assert on_tiktok["content"] == {"body": "Hi Ann!"}
    assert on_tiktok["referenced_message_id"] == first["message_id"]
    assert text.provider_status["messageId"] == on_tiktok["message_id"]  # TikTok's id; ours stays ours

    # An image reply: uploaded (multipart), then sent by media id.
    name = default_storage.save("wire/reply.png", ContentFile(PNG))
    photo = reply_queue(
        conversation_id=conversation.pk,
        author=agent,
        type="image",
        media_url=f"http://inbox.wire.test/media/{name}",
    )
    assert send_message.apply(args=[photo.pk]).result == "accepted", photo.error
    assert sandbox.state()["counters"]["media_uploaded"] == 1
    assert [m["message_type"] for m in sandbox.state()["sent"]].count("IMAGE") == 1

    events = next_webhooks(receiver, seen, 4)  # two echoes, two reads
    seen += 4
    for captured in events:
        assert relay(client, app, captured).status_code == 200
    assert Message.objects.filter(direction="out").count() == 2  # the echoes matched our own sends
    text.refresh_from_db()
    photo.refresh_from_db()
    assert (text.status, photo.status) == ("seen", "seen")

    # The business writes from the TikTok app: stored once, as sent outside the inbox.
    from_app = sandbox.business_message({"account": OPEN_ID, "user": "u-1", "text": "Sent from my phone"})
    (echo,) = next_webhooks(receiver, seen)
    seen += 1
    assert relay(client, app, echo).status_code == 200
    outside = Message.objects.get(provider_message_id=from_app["message_id"])
    assert outside.direction == "out" and outside.text == "Sent from my phone"

    # Disconnect revokes the grant at TikTok.
    assert tokens.disconnect(connection.pk) == ""
    assert sandbox.state()["counters"]["tokens_revoked"] == 1
    refused = requests.post(
        f"{server.url}/open_api/v1.3/business/message/send/",
        json={"business_id": OPEN_ID},
        headers={"Access-Token": connection.access_token},
        timeout=5,
    ).json()
    assert refused["code"] == 40105


def test_register_webhook_points_the_apps_callback_at_our_url(wire, capsys):
    server, app, _ = wire
    server.sandbox.apps[KEY].webhooks.clear()

    call_command("tiktok_app", "register-webhook", "--id", str(app.pk))

    assert server.sandbox.apps[KEY].webhooks == {"DIRECT_MESSAGE": app.webhook_url}
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"id": app.pk, "app_id": KEY, "event_type": "DIRECT_MESSAGE", "callback_url": app.webhook_url}

    app.client_secret = "a-wrong-secret"
    app.save()
    with pytest.raises(CommandError, match="40001"):
        call_command("tiktok_app", "register-webhook", "--id", str(app.pk))
    with pytest.raises(CommandError, match="no TikTok app with id 0"):
        call_command("tiktok_app", "register-webhook", "--id", "0")


def consent_round_trip(client, server: SandboxServer, app: TikTokApp, decision: str, scopes: list[str] | None = None):
    """Our Connect → the sandbox's consent form answered `decision` → our callback with what the sandbox sent."""
    start = client.get(f"/tiktok/apps/{app.pk}/connect/")
    assert start.status_code == 302 and start["Location"].startswith(f"{server.url}/v2/auth/authorize/")
    page = requests.get(start["Location"], timeout=5)
    assert page.status_code == 200, page.text
    form = {
        k: v.replace("&amp;", "&") for k, v in re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page.text)
    }
    asked = form["asked"].split(",")
    data = [*form.items(), ("decision", decision), ("account", OPEN_ID)]
    data += [("scope", scope) for scope in (asked if scopes is None else scopes)]
    answer = requests.post(f"{server.url}/v2/auth/authorize/", data=data, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["Location"])
    assert f"http://inbox.wire.test{back.path}" == app.redirect_uri()
    return client.get(f"{back.path}?{back.query}", follow=True)


def said(response) -> str:
    return " ".join(str(m) for m in get_messages(response.wsgi_request))


@pytest.mark.parametrize("code_param", ["code", "auth_code"])
def test_the_consent_round_trip_through_the_sandbox(wire, admin_client, code_param):
    server, app, _ = wire
    server.sandbox.behaviour.update({"callback_code_param": code_param})

    denied = consent_round_trip(admin_client, server, app, "deny")
    assert "TikTok did not grant access" in said(denied) and not TikTokConnection.objects.exists()

    partial = consent_round_trip(admin_client, server, app, "authorize", ["user.info.basic", "message.list.read"])
    assert "did not grant message.list.manage, message.list.send" in said(partial)
    assert not TikTokConnection.objects.exists()

    connected = consent_round_trip(admin_client, server, app, "authorize")
    assert "TikTok account Wire Shop is connected" in said(connected)
    assert TikTokConnection.objects.get().state == "connected"
    # The partial grant was revoked at TikTok rather than left behind.
    assert server.sandbox.state()["counters"]["tokens_revoked"] == 1
