"""Helpers to post Infobip-shaped, correctly signed webhook requests in tests."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from tiktok_channel.models import InfobipAccount
from tiktok_channel.webhook_auth import sign

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "infobip"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def with_message_id(payload: dict, message_id: str) -> dict:
    payload = copy.deepcopy(payload)
    for item in payload["results"]:
        item["messageId"] = message_id
    return payload


def encode(payload: dict | bytes) -> bytes:
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


def signed_headers(account: InfobipAccount, body: bytes) -> dict[str, str]:
    return sign(account.webhook_auth_settings(), body)


def webhook_path(account: InfobipAccount, kind: str | None = None) -> str:
    return f"/webhooks/infobip/tiktok/{account.webhook_token}/" + (f"{kind}/" if kind else "")


def post(
    client,
    account: InfobipAccount,
    payload: dict | bytes,
    *,
    kind: str | None = None,
    headers: dict | None = None,
    content_type: str = "application/json",
    signed: bool = True,
):
    body = encode(payload)
    all_headers = signed_headers(account, body) if signed else {}
    all_headers.update(headers or {})
    return client.generic("POST", webhook_path(account, kind), body, content_type=content_type, headers=all_headers)
