"""Infobip's TikTok API, outbound: build the `POST /tiktok/1/messages` body and classify the answer.

Every call has connect and read timeouts; one `requests.Session` per account keeps connections alive.
The result is one of three outcomes the sending task acts on: accepted, retryable, permanent.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import requests
from django.conf import settings
from django.utils import timezone

from inbox.models import Conversation, Message
from tiktok_channel.ingest import DUPLICATE_MESSAGE_ID
from tiktok_channel.models import InfobipAccount

logger = logging.getLogger(__name__)

MESSAGES_PATH = "/tiktok/1/messages"
# Infobip cuts a longer validity to 48 h anyway.
MAX_VALIDITY_SECONDS = 48 * 3600

ACCEPTED, RETRYABLE, PERMANENT = "accepted", "retryable", "permanent"


@dataclass(frozen=True)
class SendResult:
    outcome: str  # ACCEPTED, RETRYABLE or PERMANENT
    provider_message_id: str = ""  # Infobip's messageId (ours, echoed back)
    status: dict = field(default_factory=dict)  # Infobip's per-message status object
    duplicate: bool = False  # Infobip refused our id as already used: an earlier try got through
    error: dict = field(default_factory=dict)  # name, description, permanent, http_status, violations
    retry_after: float | None = None  # seconds, from a 429's Retry-After


def validity_seconds(conversation: Conversation, *, now: datetime) -> int:
    """What is left of the reply window, in whole seconds (0 when closed)."""
    closes_at = conversation.reply_window_closes_at()
    if closes_at is None:
        return 0
    return max(0, min(MAX_VALIDITY_SECONDS, int((closes_at - now).total_seconds())))


def message_content(message: Message) -> dict:
    if message.type == Message.Type.TEXT:
        content = {"type": "TEXT", "text": message.text}
        if message.quoted_provider_message_id:
            content["replyToMessageId"] = message.quoted_provider_message_id
        return content
    if message.type == Message.Type.IMAGE:
        return {"type": "IMAGE", "mediaUrl": message.media_url}
    if message.type == Message.Type.SHARE_POST:
        return {"type": "SHARE_POST", "postId": message.post_id}
    raise ValueError(f"cannot send a {message.type} message")


def message_request(message: Message, *, account: InfobipAccount, business_account_id: str, validity: int) -> dict:
    """The request body for one message to one destination (schema TikTokRequest in the spec)."""
    conversation = message.conversation
    webhooks = {
        "delivery": {"url": f"{account.webhook_url}delivery/", "notify": True},
        "seen": {"url": f"{account.webhook_url}seen/"},
    }
    callback_data = (message.payload or {}).get("callback_data")
    if callback_data:
        webhooks["callbackData"] = callback_data
    return {
        "messages": [
            {
                "sender": business_account_id,
                "destinations": [
                    {
                        "to": conversation.provider_conversation_id or conversation.contact.channel_user_id,
                        "messageId": message.provider_message_id,
                    }
                ],
                "content": message_content(message),
                "options": {"validityPeriod": {"amount": validity, "timeUnit": "SECONDS"}},
                "webhooks": webhooks,
            }
        ]
    }


_sessions: dict[int, requests.Session] = {}
_sessions_lock = threading.Lock()


def session_for(account: InfobipAccount) -> requests.Session:
    """One pooled session per account and process. Credentials go on each request, not the session,
    so a changed API key takes effect at once."""
    with _sessions_lock:
        session = _sessions.get(account.pk)
        if session is None:
            session = _sessions[account.pk] = requests.Session()
        return session


def send_messages(account: InfobipAccount, body: dict) -> SendResult:
    """POST the body; classify the outcome. Never raises for HTTP or network trouble."""
    url = f"{account.base_url.rstrip('/')}{MESSAGES_PATH}"
    try:
        response = session_for(account).post(
            url,
            json=body,
            headers={"Authorization": f"App {account.api_key}", "Accept": "application/json"},
            timeout=(settings.INFOBIP_CONNECT_TIMEOUT, settings.INFOBIP_READ_TIMEOUT),
        )
    except requests.Timeout as exc:
        # The request may have arrived: a retry repeats our messageId, which Infobip refuses as duplicate.
        return SendResult(RETRYABLE, error=_error("TIMEOUT", str(exc) or "Infobip did not answer in time"))
    except requests.RequestException as exc:
        return SendResult(RETRYABLE, error=_error("CONNECTION_ERROR", str(exc) or type(exc).__name__))
    return classify_response(response)


def classify_response(response: requests.Response) -> SendResult:
    status_code = response.status_code
    data = _json(response)
    if 200 <= status_code < 300:
        messages = data.get("messages") if isinstance(data.get("messages"), list) else []
        first = messages[0] if messages and isinstance(messages[0], dict) else {}
        status = first.get("status") if isinstance(first.get("status"), dict) else {}
        if status.get("name") == DUPLICATE_MESSAGE_ID:
            return SendResult(ACCEPTED, provider_message_id=first.get("messageId", ""), status=status, duplicate=True)
        if status.get("groupName") in ("REJECTED", "UNDELIVERABLE", "EXPIRED"):
            error = _error(status.get("name") or status["groupName"], status.get("description") or "", permanent=True)
            return SendResult(PERMANENT, provider_message_id=first.get("messageId", ""), status=status, error=error)
        if not status:
            logger.warning("Infobip answered %s without a message status: %.300s", status_code, response.text)
        return SendResult(ACCEPTED, provider_message_id=first.get("messageId", ""), status=status)

    error = _api_error(data, response)
    if status_code == 429:
        return SendResult(RETRYABLE, error=error, retry_after=retry_after_seconds(response.headers.get("Retry-After")))
    if status_code >= 500 or status_code == 408:
        return SendResult(RETRYABLE, error=error)
    return SendResult(PERMANENT, error={**error, "permanent": True})


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = timezone.make_aware(moment, timezone.utc)
    return max(0.0, (moment - timezone.now()) / timedelta(seconds=1))


def _json(response: requests.Response) -> dict:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _error(name: str, description: str, *, permanent: bool = False, **extra) -> dict:
    return {"name": name, "description": description, "permanent": permanent, **extra}


def _api_error(data: dict, response: requests.Response) -> dict:
    """Infobip's ApiError (errorCode, description, action, violations), or the older requestError shape."""
    legacy = (data.get("requestError") or {}).get("serviceException") or {}
    name = data.get("errorCode") or legacy.get("messageId") or f"HTTP_{response.status_code}"
    description = data.get("description") or legacy.get("text") or response.reason or ""
    extra = {"http_status": response.status_code}
    if data.get("action"):
        extra["action"] = data["action"]
    violations = data.get("violations")
    if isinstance(violations, list) and violations:
        extra["violations"] = violations
    return _error(name, description, **extra)
