from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.tiktok_channel.sandbox_helpers import Captured, RunningTikTok, verify_signature, wait_until
from tiktok_channel.direct.sandbox.behaviour import Behaviour
from tiktok_channel.direct.sandbox.server import SandboxServer
from tiktok_channel.direct.sandbox.state import Sandbox

CLIENT_KEY = "sbx-client-key"
CLIENT_SECRET = "sbx-client-secret-0123456789"
REDIRECT_URI = "https://inbox.example/tiktok/callback/"
BUSINESS = "biz-open-id-1"
SCOPES = "user.info.basic,message.list.read,message.list.send"
API = "/open_api/v1.3"


def event_of(captured: Captured, secret: str = CLIENT_SECRET) -> tuple[dict, dict]:
    """A webhook's envelope and its decoded `content`, after checking its signature."""
    header = {k.lower(): v for k, v in captured.headers.items()}["tiktok-signature"]
    assert verify_signature(header, captured.body, secret), header
    envelope = captured.json
    assert isinstance(envelope["content"], str)  # a JSON string, parsed a second time
    return envelope, json.loads(envelope["content"])


@dataclass
class Running(RunningTikTok):
    server: SandboxServer

    @property
    def sandbox(self) -> Sandbox:
        return self.server.sandbox

    def api(self, path: str, body: dict | None = None, *, token: str | None = None, **kwargs) -> requests.Response:
        headers = {"Access-Token": token} if token else {}
        if body is None:
            return requests.get(f"{self.url}{API}{path}", headers=headers, timeout=5, **kwargs)
        return requests.post(f"{self.url}{API}{path}", json=body, headers=headers, timeout=5, **kwargs)

    def control(self, **body) -> dict:
        response = requests.post(f"{self.url}/sandbox/control", json=body, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    def authorize_url(self, *, scope: str = SCOPES, state: str = "st-1", **extra) -> str:
        params = {
            "client_key": CLIENT_KEY,
            "response_type": "code",
            "scope": scope,
            "redirect_uri": REDIRECT_URI,
            "state": state,
            **extra,
        }
        return requests.Request("GET", f"{self.url}/v2/auth/authorize/", params=params).prepare().url

    def consent(self, decision: str = "authorize", *, granted: list[str] | None = None, **params) -> dict:
        """Open the consent page and answer it as the form does; returns the redirect's query."""
        page = requests.get(self.authorize_url(**params), timeout=5)
        assert page.status_code == 200, page.text
        form = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
        form = {k: v.replace("&amp;", "&") for k, v in form.items()}
        asked = form["asked"].split(",")
        data = [*form.items(), ("decision", decision), ("account", BUSINESS)]
        data += [("scope", s) for s in (asked if granted is None else granted)]
        answer = requests.post(f"{self.url}/v2/auth/authorize/", data=data, allow_redirects=False, timeout=5)
        assert answer.status_code == 302, answer.text
        location = answer.headers["Location"]
        assert location.startswith(REDIRECT_URI)
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}

    def exchange(self, code: str, **overrides) -> requests.Response:
        body = {
            "client_id": CLIENT_KEY,
            "client_secret": CLIENT_SECRET,
            "grant_type": "authorization_code",
            "auth_code": code,
            "redirect_uri": REDIRECT_URI,
            **overrides,
        }
        return self.api("/tt_user/oauth2/token/", body)

    def connect(self, **consent) -> dict:
        """The whole dance: consent, then the code exchanged; returns the token answer's `data`."""
        code = self.consent(**consent)["code"]
        answer = self.exchange(code).json()
        assert answer["code"] == 0, answer
        return answer["data"]

    def refresh(self, refresh_token: str) -> dict:
        body = {
            "client_id": CLIENT_KEY,
            "client_secret": CLIENT_SECRET,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
        }
        return self.api("/tt_user/oauth2/refresh_token/", body).json()

    def inbound(self, **body) -> dict:
        response = requests.post(f"{self.url}/sandbox/inbound", json={"account": BUSINESS, **body}, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def send_text(self, token: str, conversation_id: str, text: str = "Yes, still in stock.", **extra) -> dict:
        body = {
            "business_id": BUSINESS,
            "recipient_type": "CONVERSATION",
            "recipient": conversation_id,
            "message_type": "TEXT",
            "text": {"body": text},
            **extra,
        }
        return self.api("/business/message/send/", body, token=token).json()

    def events(self, count: int, event: str | None = None, timeout: float = 5.0) -> list[tuple[dict, dict]]:
        """Wait for `count` webhooks (of one `event` if given); each signature-checked."""

        def matching() -> list[Captured]:
            return [c for c in list(self.receiver.requests) if event is None or c.json.get("event") == event]

        wait_until(lambda: len(matching()) >= count, timeout, f"{count} {event or ''} webhooks")
        return [event_of(c) for c in matching()]


@pytest.fixture
def running(receiver) -> Iterator[Running]:
    behaviour = Behaviour(read_delay_ms=50, webhook_retry_ms=50, webhook_timeout_s=2)
    sandbox = Sandbox(behaviour)
    sandbox.add_app(
        {
            "client_key": CLIENT_KEY,
            "client_secret": CLIENT_SECRET,
            "name": "Acme Inbox",
            "redirect_uri": REDIRECT_URI,
            "webhook_url": f"{receiver.url}/hook/",
        }
    )
    sandbox.add_account({"open_id": BUSINESS, "username": "acme_shop", "display_name": "Acme Shop"})
    server = SandboxServer(sandbox)
    server.start()
    yield Running(server, receiver)
    server.stop()


@dataclass
class Connected:
    running: Running
    tokens: dict
    conversation_id: str
    first_message_id: str

    @property
    def access_token(self) -> str:
        return self.tokens["access_token"]


@pytest.fixture
def connected(running) -> Connected:
    """A sandbox whose account has authorized the app, and a user who wrote first."""
    tokens = running.connect()
    first = running.inbound(user="user-1", username="alice", text="Hello from TikTok")
    running.events(1, "im_receive_msg")
    return Connected(running, tokens, first["conversation_id"], first["message_id"])
