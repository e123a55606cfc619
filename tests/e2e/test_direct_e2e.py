"""Issue 17's done-when, end to end: the direct TikTok provider against the TikTok sandbox (a real HTTP server in this
process), the stack's real web server, Celery worker and webhook processor, and Chromium.

A staff user connects a business account on the sandbox's consent page → a TikTok user writes → an agent replies
in the browser → sent, then read (seen tick) → the sandbox expires the access token → the next reply refreshes, then
is sent → the sandbox revokes the refresh token (and expires the access token, so the next call needs a refresh)
→ the reply is held, the staff banner shows, the admins got an email → the staff user reconnects through the
consent page → the held reply is sent. And: forged and replayed webhooks are refused with nothing stored.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from playwright.sync_api import Page, expect

from inbox.models import Conversation, Message, WebhookEvent
from tests.e2e.test_browser import browser, contexts, logged_in_page, shot, wait_until_open  # noqa: F401 - fixtures
from tiktok_channel.direct import tokens
from tiktok_channel.direct.models import TikTokApp, TikTokConnection
from tiktok_channel.direct.sandbox.behaviour import Behaviour
from tiktok_channel.direct.sandbox.server import SandboxServer
from tiktok_channel.direct.sandbox.state import Sandbox
from tiktok_channel.direct.webhooks import sign

pytestmark = [pytest.mark.e2e]

BUSINESS = "-000e2e-direct-shop"
CLIENT_KEY = "e2e-direct-app"


@dataclass
class TikTok:
    server: SandboxServer
    app: TikTokApp
    secret: str

    @property
    def url(self) -> str:
        return self.server.url

    def control(self, **body) -> dict:
        response = requests.post(f"{self.url}/sandbox/control", json=body, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def state(self) -> dict:
        return requests.get(f"{self.url}/sandbox/state", timeout=10).json()

    def counter(self, name: str) -> int:
        return self.state()["counters"].get(name, 0)

    def inbound(self, user: str, text: str, **extra) -> dict:
        body = {"account": BUSINESS, "user": user, "text": text, **extra}
        response = requests.post(f"{self.url}/sandbox/inbound", json=body, timeout=15)
        assert response.status_code == 200, response.text
        return response.json()

    def connect_without_browser(self) -> TikTokConnection:
        """The account authorizes the app (the consent page has its own test): a code, exchanged by our server's
        own code path."""
        sandbox = self.server.sandbox
        code = sandbox.issue_code(
            app=sandbox.apps[CLIENT_KEY],
            open_id=BUSINESS,
            scope=["user.info.basic", "message.list.read", "message.list.send", "message.list.manage"],
            redirect_uri=self.app.redirect_uri(),
        )
        return tokens.connect(app=self.app, code=code, user=None)

    def sent_texts(self) -> list[str]:
        return [m["content"]["body"] for m in self.state()["sent"] if m.get("message_type") == "TEXT"]


@pytest.fixture
def tiktok(stack) -> Iterator[TikTok]:
    """The TikTok sandbox on a free port, its app registered with our stack's webhook and redirect URLs, and the
    same app in our database (`manage.py tiktok_app add` has its own test)."""
    behaviour = Behaviour(read_delay_ms=700, webhook_retry_ms=200, webhook_timeout_s=10)
    server = SandboxServer(Sandbox(behaviour))
    server.start()
    secret = secrets.token_hex(16)
    app = TikTokApp.objects.create(
        name="E2E Direct",
        client_key=CLIENT_KEY,
        client_secret=secret,
        api_base_url=server.url,
        auth_base_url=server.url,
        inbox=stack.inbox,
    )
    server.sandbox.add_app(
        {
            "client_key": CLIENT_KEY,
            "client_secret": secret,
            "name": "E2E Direct",
            "redirect_uri": app.redirect_uri(),
            "webhook_url": app.webhook_url,
        }
    )
    server.sandbox.add_account({"open_id": BUSINESS, "username": "e2e_shop", "display_name": "E2E Shop"})
    yield TikTok(server, app, secret)
    server.stop()


def consent(page: Page, tiktok: TikTok) -> None:
    """On the sandbox's consent page: the app asks, the user authorizes; back on our admin, connected."""
    expect(page.locator("h1")).to_contain_text("E2E Direct would like to access your TikTok account")
    assert page.url.startswith(f"{tiktok.url}/v2/auth/authorize/")
    expect(page.locator('input[name="scope"][value="message.list.send"]')).to_be_checked()
    page.get_by_role("button", name="Authorize").click()
    expect(page.locator("ul.messagelist")).to_contain_text("TikTok account E2E Shop is connected")


@pytest.mark.flaky(reruns=2, reruns_delay=1)  # a browser on a loaded 2-core machine, as every browser test here
def test_connect_receive_reply_read_refresh_revoke_reconnect(stack, tiktok, contexts, django_user_model):  # noqa: F811
    staff = django_user_model.objects.create_user(
        "boss", password="boss-pass-123", email="boss@example.test", is_staff=True, is_superuser=True
    )
    stack.inbox.members.add(staff)

    # A staff user connects the account: our Connect → TikTok's consent page → back on our callback.
    admin = logged_in_page(stack, contexts, staff, "/")
    admin.goto(tiktok.app.connect_url)
    consent(admin, tiktok)
    connection = TikTokConnection.objects.get(account_id=BUSINESS)
    assert connection.state == TikTokConnection.State.CONNECTED
    assert (connection.display_name, connection.username) == ("E2E Shop", "e2e_shop")
    first_token = connection.access_token
    assert first_token.startswith("act.") and connection.refresh_token.startswith("rft.")
    assert tiktok.counter("tokens_issued") == 1
    shot(admin, "direct-connected.png")

    # A TikTok user writes: a signed webhook to our server, stored, applied by the processor.
    sent = tiktok.inbound("tt-user-dora", "Hi! Is the red jacket in stock?", username="dora")
    assert [d["status"] for d in sent["deliveries"]] == [200]
    stack.wait_processed()
    conversation = Conversation.objects.get(contact__endpoint_id=BUSINESS, contact__channel_user_id="tt-user-dora")
    assert conversation.provider == "tiktok_direct"
    assert conversation.provider_conversation_id == sent["conversation_id"]

    # The agent replies in the browser: sent through TikTok, then read by the user (seen tick).
    agent = logged_in_page(stack, contexts, stack.agent, f"/c/{conversation.pk}/")
    expect(agent.locator(".msg-in .msg-text").first).to_have_text("Hi! Is the red jacket in stock?")

    def reply(text: str):
        agent.fill("#composer-text", text)
        agent.press("#composer-text", "Enter")
        out = agent.locator(".msg-out", has_text=text)
        expect(out.locator(".msg-text")).to_have_text(text)
        return out

    first = reply("Yes, in every size.")
    expect(first.locator(".ticks")).to_have_attribute("data-status", "seen")
    assert tiktok.sent_texts() == ["Yes, in every size."]
    message = Message.objects.get(conversation=conversation, text="Yes, in every size.")
    assert message.provider_message_id and message.status == "seen"

    # TikTok expires the access token: the send is refused (40102), the worker refreshes once and sends.
    tiktok.control(expire_access_token=BUSINESS)
    second = reply("Shall I reserve one for you?")
    expect(second.locator(".ticks")).to_have_attribute("data-status", "seen")
    assert tiktok.sent_texts()[-1] == "Shall I reserve one for you?"
    assert tiktok.counter("tokens_refreshed") == 1
    connection.refresh_from_db()
    assert connection.state == TikTokConnection.State.CONNECTED and connection.access_token != first_token

    # TikTok revokes the refresh token (and the access token expires): the next reply cannot be sent. It waits,
    # staff see the banner, admins get an email; nothing failed.
    tiktok.control(revoke_refresh_token=BUSINESS)
    tiktok.control(expire_access_token=BUSINESS)
    held_text = "It is reserved until Friday."
    held = reply(held_text)
    stack.wait_for(
        lambda: TikTokConnection.objects.get(pk=connection.pk).state == "reauthorization_needed",
        15,
        "the connection to need re-authorization",
    )
    held_message = Message.objects.get(conversation=conversation, text=held_text)
    assert held_message.status == "queued", held_message.error
    expect(held.locator(".ticks")).to_have_attribute("data-status", "queued")
    expect(agent.locator("#composer-lock")).to_contain_text("must be reconnected by an admin")
    assert held_text not in tiktok.sent_texts()
    assert tiktok.counter("refresh_rejected") >= 1
    mail = stack.wait_for(lambda: [m for m in stack.mails() if "boss@example.test" in m], 15, "the admins' email")
    assert "TikTok account E2E Shop needs to be reconnected" in mail[0]
    assert tiktok.app.connect_url in mail[0]
    assert connection.access_token not in mail[0]

    wait_until_open(admin, stack, "/")
    banner = admin.locator("#connection-alerts")
    expect(banner).to_contain_text("E2E Shop")
    expect(banner).to_contain_text("must be reconnected")
    expect(admin.locator(f'.conv-row[data-id="{conversation.pk}"]')).to_be_visible()
    shot(admin, "direct-reauthorization-banner.png")

    # Reconnect from the banner: the consent page again, and the held reply goes out.
    banner.get_by_role("link", name="Reconnect").click()
    consent(admin, tiktok)
    connection.refresh_from_db()
    assert connection.state == TikTokConnection.State.CONNECTED
    expect(held.locator(".ticks")).to_have_attribute("data-status", "seen")
    expect(agent.locator("#composer-lock")).to_be_hidden()
    assert tiktok.sent_texts() == ["Yes, in every size.", "Shall I reserve one for you?", held_text]
    held_message.refresh_from_db()
    assert held_message.status == "seen" and held_message.attempt >= 1
    wait_until_open(admin, stack, "/")
    expect(admin.locator("#connection-alerts")).to_have_count(0)


def test_forged_and_replayed_webhooks_are_refused_and_nothing_is_stored(stack, tiktok):
    tiktok.connect_without_browser()
    body = json.dumps(
        {
            "client_key": CLIENT_KEY,
            "event": "im_receive_msg",
            "create_time": int(time.time()),
            "user_openid": BUSINESS,
            "content": json.dumps(
                {
                    "conversation_id": "tt-conv-forged",
                    "message_id": "tt-msg-forged",
                    "timestamp": int(time.time() * 1000),
                    "type": "text",
                    "text": {"body": "forged"},
                    "from_user": {"id": "tt-mallory", "role": "personal_account"},
                    "to_user": {"id": BUSINESS, "role": "business_account"},
                }
            ),
        }
    ).encode()
    url = tiktok.app.webhook_url

    def post(signature: str | None) -> requests.Response:
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["TikTok-Signature"] = signature
        return requests.post(url, data=body, headers=headers, timeout=10)

    now = int(time.time())
    forged = post(sign("not-the-app-secret", body, now))
    assert forged.status_code == 401 and "signature" in forged.text, forged.text
    unsigned = post(None)
    assert unsigned.status_code == 401 and "TikTok-Signature" in unsigned.text, unsigned.text
    replayed = post(sign(tiktok.secret, body, now - 3600))  # a real signature, an hour old
    assert replayed.status_code == 401 and "replay" in replayed.text, replayed.text

    # The sandbox itself replays: a correctly signed delivery with an old timestamp is refused too.
    tiktok.control(set={"signature_skew_s": 3600, "webhook_retries": 0})
    delivery = tiktok.inbound("tt-user-eve", "Hello again")["deliveries"]
    assert [d["status"] for d in delivery] == [401], delivery

    assert not WebhookEvent.objects.exists()
    assert not Message.objects.exists()

    # The same request signed now is taken: the door refused the others for their signature, nothing else.
    taken = post(sign(tiktok.secret, body, int(time.time())))
    assert taken.status_code == 200, taken.text
    stack.wait_processed()
    assert Message.objects.filter(provider_message_id="tt-msg-forged").count() == 1
