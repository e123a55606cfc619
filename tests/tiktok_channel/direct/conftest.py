"""TikTok's own API stood in for by `responses` (its wire shapes from ../shared/tiktok/README.md §2.1, §3)."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from inbox.models import Contact, Conversation
from inbox.tasks import send_message
from tiktok_channel.direct import backend
from tiktok_channel.direct.models import DIRECT_PROVIDER, TikTokApp, TikTokConnection
from tiktok_channel.direct.webhooks import sign

API = "https://business-api.tiktok.example"
AUTH = "https://www.tiktok.example"
V = f"{API}/open_api/v1.3"
TOKEN_URL = f"{V}/tt_user/oauth2/token/"
REFRESH_URL = f"{V}/tt_user/oauth2/refresh_token/"
REVOKE_URL = f"{V}/tt_user/oauth2/revoke/"
PROFILE_URL = f"{V}/business/get/"
SEND_URL = f"{V}/business/message/send/"
UPLOAD_URL = f"{V}/business/message/media/upload/"
SECRET = "app-secret-0123456789"
BUSINESS_ID = "-000biz-open-id"
ALL_SCOPES = "user.info.basic,message.list.read,message.list.send,message.list.manage"


def envelope(data: dict | None = None, code: int = 0, message: str = "OK") -> dict:
    return {"code": code, "message": message, "request_id": "req-1", "data": data or {}}


def token_answer(access: str = "act.1", refresh: str = "rft.1", **extra) -> dict:
    return envelope(
        {
            "open_id": BUSINESS_ID,
            "scope": ALL_SCOPES,
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": 86400,
            "refresh_token_expires_in": 31536000,
            "token_type": "Bearer",
            **extra,
        }
    )


@pytest.fixture(autouse=True)
def _fresh_state_cache():
    """Account ids repeat across tests (rolled back): no cached connection state may leak into the next one."""
    from django.core.cache import cache

    keys = [backend.state_cache_key(account) for account in (BUSINESS_ID, "someone-else")]
    cache.delete_many(keys)
    yield
    cache.delete_many(keys)


@pytest.fixture
def app(db, inbox) -> TikTokApp:
    return TikTokApp.objects.create(
        name="Shop app", client_key="app-key-1", client_secret=SECRET, api_base_url=API, auth_base_url=AUTH, inbox=inbox
    )


@pytest.fixture
def connection(app) -> TikTokConnection:
    now = timezone.now()
    return TikTokConnection.objects.create(
        app=app,
        account_id=BUSINESS_ID,
        display_name="Shop",
        access_token="act.1",
        refresh_token="rft.1",
        access_token_expires_at=now + timedelta(hours=20),
        refresh_token_expires_at=now + timedelta(days=300),
        scopes=ALL_SCOPES,
    )


@pytest.fixture
def conversation(connection, inbox) -> Conversation:
    contact = Contact.objects.create(channel="tiktok", endpoint_id=BUSINESS_ID, channel_user_id="user-1")
    return Conversation.objects.create(
        provider=DIRECT_PROVIDER,
        inbox=inbox,
        contact=contact,
        provider_conversation_id="tt-conv-1",
        last_activity_at=timezone.now(),
        last_inbound_at=timezone.now() - timedelta(hours=1),
    )


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    """Sends are run by the test (the task's own code, eagerly), not by a broker; enqueued ids are recorded."""
    enqueued: list[int] = []
    monkeypatch.setattr("inbox.outbox.schedule_send", lambda message_id, attempt_id=None: enqueued.append(message_id))
    monkeypatch.setattr(send_message, "delay", enqueued.append)
    return enqueued


def webhook_body(event: str, content: dict, *, business_id: str = BUSINESS_ID) -> bytes:
    return json.dumps(
        {
            "client_key": "app-key-1",
            "event": event,
            "create_time": int(time.time()),
            "user_openid": business_id,
            "content": json.dumps(content),
        }
    ).encode()


def post_webhook(
    client, app: TikTokApp, body: bytes, *, secret: str = SECRET, timestamp: int | None = None, header=None
):
    """POST `body` signed with `secret` at `timestamp` (now by default); `header` replaces the signature, False
    leaves it out."""
    signature = sign(secret, body, int(time.time()) if timestamp is None else timestamp)
    headers = {} if header is False else {"HTTP_TIKTOK_SIGNATURE": header or signature}
    url = f"/webhooks/tiktok/{app.webhook_path_token}/"
    return client.post(url, data=body, content_type="application/json", **headers)


def received(message_id: str = "tt-msg-1", *, type: str = "text", user: str = "user-1", **fields) -> dict:
    content = {
        "conversation_id": "tt-conv-1",
        "message_id": message_id,
        "timestamp": int(time.time() * 1000) - 1000,
        "type": type,
        "from": "alice",
        "from_user": {"id": user, "role": "personal_account"},
        "to_user": {"id": BUSINESS_ID, "role": "business_account"},
        "message_tag": {"source": "APP"},
    }
    if type == "text":
        content["text"] = {"body": "Hello from TikTok"}
    content.update(fields)
    return content
