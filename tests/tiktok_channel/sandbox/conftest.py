from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from tiktok_channel.sandbox.accounts import SandboxAccount, StaticAccounts
from tiktok_channel.sandbox.behaviour import Behaviour
from tiktok_channel.sandbox.server import Sandbox, SandboxServer
from tiktok_channel.webhook_auth import WebhookAuth

API_KEY = "sandbox-test-key"
BUSINESS_ID = "biz-sandbox"


HMAC_AUTH = WebhookAuth(
    mode="hmac",
    secret="s3cret",
    hmac_algorithm="HMAC_SHA_512",
    signature_header="X-Sig",
    signature_encoding="base64",
    signature_prefix="sha512=",
)


@dataclass
class RunningSandbox:
    server: SandboxServer
    account: SandboxAccount

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def sandbox(self) -> Sandbox:
        return self.server.sandbox

    def post(self, path: str, body, *, key: str | None = API_KEY, timeout: float = 5.0) -> requests.Response:
        headers = {"Authorization": f"App {key}"} if key else {}
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return requests.post(f"{self.url}{path}", data=data, headers=headers, timeout=timeout)

    def get(self, path: str, *, key: str | None = API_KEY, **params) -> requests.Response:
        headers = {"Authorization": f"App {key}"} if key else {}
        return requests.get(f"{self.url}{path}", params=params, headers=headers, timeout=5)

    def control(self, **switches) -> dict:
        response = requests.post(f"{self.url}/sandbox/control", json={"set": switches}, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def auth() -> WebhookAuth:
    return HMAC_AUTH


@pytest.fixture
def running(receiver, auth) -> Iterator[RunningSandbox]:
    account = SandboxAccount(
        name="Test", api_key=API_KEY, webhook_url=f"{receiver.url}/hook/", auth=auth, sender_ids=(BUSINESS_ID,)
    )
    behaviour = Behaviour(delivery_delay_ms=30, seen_delay_ms=60, webhook_retry_ms=50, webhook_timeout_s=2)
    server = SandboxServer(Sandbox(StaticAccounts([account]), behaviour))
    server.start()
    yield RunningSandbox(server, account)
    server.stop()


def text_message(message_id: str = "", *, to: str = "user-1", text: str = "Hello", **extra) -> dict:
    destination = {"to": to, **({"messageId": message_id} if message_id else {})}
    return {
        "messages": [
            {"sender": BUSINESS_ID, "destinations": [destination], "content": {"type": "TEXT", "text": text}, **extra}
        ]
    }
