"""Infobip's TikTok API, outbound: build the bodies of `POST /tiktok/1/messages`, `POST /tiktok/1/events`
and `POST /saas/tiktok-ads/1/conversions`, and classify the answers.

Every call has connect and read timeouts; one `requests.Session` per account keeps connections alive.
The result is one of three outcomes the tasks act on: accepted, retryable, permanent.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from email.utils import parsedate_to_datetime

import requests
from django.conf import settings
from django.utils import timezone

from inbox import providers
from inbox.models import Conversation, Conversion, Message
from tiktok_channel.infobip_webhooks import DUPLICATE_MESSAGE_ID
from tiktok_channel.models import InfobipAccount

logger = logging.getLogger(__name__)

MESSAGES_PATH = "/tiktok/1/messages"
EVENTS_PATH = "/tiktok/1/events"
CONVERSIONS_PATH = "/saas/tiktok-ads/1/conversions"
LOGS_PATH = "/tiktok/1/logs"
# GET /tiktok/1/logs: messageId takes comma-separated ids, at most 2048 characters; at most 1000 entries a page.
LOGS_MESSAGE_IDS_MAX_CHARS = 2048
LOGS_LIMIT = 1000
# Events are a courtesy: a slow answer is not worth a worker's time (a typing indicator is stale in seconds).
EVENT_TIMEOUT = (3.0, 5.0)
# inbox.providers event kinds → the spec's TikTokOutboundEventContentType.
EVENT_TYPES = {providers.EVENT_TYPING: "TYPING_INDICATOR", providers.EVENT_READ: "MARK_AS_READ"}
# Infobip cuts a longer validity to 48 h anyway.
MAX_VALIDITY_SECONDS = 48 * 3600

# The outcomes and result of a call are the core's (inbox.providers); re-exported for this module's callers.
ACCEPTED, RETRYABLE, PERMANENT = providers.ACCEPTED, providers.RETRYABLE, providers.PERMANENT
SendResult = providers.SendResult


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


def destination(conversation: Conversation) -> str:
    """Who a message or event goes to: the conversation's TikTok id, else the user's id (the same in
    every official example)."""
    return conversation.provider_conversation_id or conversation.contact.channel_user_id


def event_request(conversation: Conversation, *, business_account_id: str, kind: str) -> dict:
    """The request body of one typing indicator or read receipt (schema TikTokEventRequest in the spec)."""
    return {
        "events": [
            {
                "sender": business_account_id,
                "destinations": [{"to": destination(conversation)}],
                "content": {"type": EVENT_TYPES[kind]},
            }
        ]
    }


def conversion_request(conversion: Conversion, *, business_account_id: str) -> dict:
    """The request body of one Direct Messaging Ads conversion (shape from Infobip's guide; not in the spec).

    `price` is the unit price (value / quantity); value, price and currency are left out when no value
    was given (e.g. SubmitForm).
    """
    properties: dict = {"quantity": conversion.quantity}
    if conversion.value is not None:
        properties["price"] = float(round(conversion.value / conversion.quantity, 4))
        properties["value"] = float(conversion.value)
    if conversion.currency:
        properties["currency"] = conversion.currency
    return {
        "sourceId": business_account_id,
        "conversions": [
            {
                "event": conversion.event,
                "event_time": int(conversion.occurred_at.timestamp()),
                "user": {"tiktok_unique_identifier": conversion.conversation.contact.channel_user_id},
                "properties": properties,
            }
        ],
    }


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
                "destinations": [{"to": destination(conversation), "messageId": message.provider_message_id}],
                "content": message_content(message),
                "options": {"validityPeriod": {"amount": validity, "timeUnit": "SECONDS"}},
                "webhooks": webhooks,
            }
        ]
    }


def batch_request(items: list[tuple[Message, int]], *, account: InfobipAccount, business_account_id: str) -> dict:
    """The request body for many messages (each with its validity in seconds), one `messages[]` entry each with
    its own destination and our id (schema TikTokRequest: the spec sets no limit on `messages[]`)."""
    return {
        "messages": [
            message_request(message, account=account, business_account_id=business_account_id, validity=validity)[
                "messages"
            ][0]
            for message, validity in items
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


def _post(
    account: InfobipAccount, path: str, body: dict, *, timeout: tuple[float, float]
) -> requests.Response | SendResult:
    """POST JSON to the account; a network failure comes back as a RETRYABLE result, never raised."""
    try:
        return session_for(account).post(
            f"{account.base_url.rstrip('/')}{path}",
            json=body,
            headers={"Authorization": f"App {account.api_key}", "Accept": "application/json"},
            timeout=timeout,
        )
    except requests.Timeout as exc:
        return SendResult(RETRYABLE, error=_error("TIMEOUT", str(exc) or "Infobip did not answer in time"))
    except requests.RequestException as exc:
        return SendResult(RETRYABLE, error=_error("CONNECTION_ERROR", str(exc) or type(exc).__name__))


def _default_timeout() -> tuple[float, float]:
    return (settings.INFOBIP_CONNECT_TIMEOUT, settings.INFOBIP_READ_TIMEOUT)


def send_messages(account: InfobipAccount, body: dict) -> SendResult:
    """POST the body; classify the outcome. Never raises for HTTP or network trouble.

    After a timeout the request may have arrived: a retry repeats our messageId, which Infobip refuses as
    a duplicate."""
    response = _post(account, MESSAGES_PATH, body, timeout=_default_timeout())
    return response if isinstance(response, SendResult) else classify_response(response)


def send_message_batch(account: InfobipAccount, body: dict, message_ids: list[str]) -> list[SendResult]:
    """POST many messages in one request; one result per id of `message_ids` (ours, in the body's order).

    A failure of the whole request (network, timeout, 4xx/5xx) is every message's result. On a 2xx each message
    gets the fate of its own entry in the answer's `messages[]`, found by its id; a message the answer does not
    mention is retried (its id makes a repeat safe: Infobip refuses it as a duplicate if it did arrive)."""
    response = _post(account, MESSAGES_PATH, body, timeout=_default_timeout())
    if isinstance(response, SendResult):
        return [response] * len(message_ids)
    if not 200 <= response.status_code < 300:
        return [classify_failure(response, _json(response))] * len(message_ids)
    answers = _json(response).get("messages")
    by_id = {
        entry.get("messageId"): entry
        for entry in (answers if isinstance(answers, list) else [])
        if isinstance(entry, dict) and entry.get("messageId")
    }
    results = []
    for message_id in message_ids:
        entry = by_id.get(message_id)
        if entry is None:
            logger.warning("Infobip's answer to a batch did not mention message %s: it will be sent again", message_id)
            results.append(SendResult(RETRYABLE, error=_error("NOT_IN_ANSWER", "Infobip's answer did not mention it")))
        else:
            results.append(classify_message(entry))
    return results


def send_events(account: InfobipAccount, body: dict) -> SendResult:
    """POST typing indicators / read receipts with short timeouts. Never raises for HTTP or network trouble."""
    response = _post(account, EVENTS_PATH, body, timeout=EVENT_TIMEOUT)
    return response if isinstance(response, SendResult) else classify_response(response)


def send_conversions(account: InfobipAccount, body: dict) -> SendResult:
    """POST ads conversions. Never raises for HTTP or network trouble; a 2xx is ACCEPTED with its body."""
    response = _post(account, CONVERSIONS_PATH, body, timeout=_default_timeout())
    if isinstance(response, SendResult):
        return response
    if 200 <= response.status_code < 300:
        return SendResult(ACCEPTED, body=_json(response))
    return classify_failure(response, _json(response))


def classify_response(response: requests.Response) -> SendResult:
    status_code = response.status_code
    data = _json(response)
    if 200 <= status_code < 300:
        messages = data.get("messages") if isinstance(data.get("messages"), list) else []
        first = messages[0] if messages and isinstance(messages[0], dict) else {}
        if not isinstance(first.get("status"), dict) or not first["status"]:
            logger.warning("Infobip answered %s without a message status: %.300s", status_code, response.text)
        return classify_message(first)

    return classify_failure(response, data)


def classify_message(entry: dict) -> SendResult:
    """One entry of a 2xx answer's `messages[]`: accepted; accepted as a duplicate of an earlier try of ours
    (REJECTED_DUPLICATE_MESSAGE_ID); or refused for good (a REJECTED, UNDELIVERABLE or EXPIRED status)."""
    status = entry.get("status") if isinstance(entry.get("status"), dict) else {}
    message_id = entry.get("messageId", "")
    if status.get("name") == DUPLICATE_MESSAGE_ID:
        return SendResult(ACCEPTED, provider_message_id=message_id, status=status, duplicate=True)
    if status.get("groupName") in ("REJECTED", "UNDELIVERABLE", "EXPIRED"):
        error = _error(status.get("name") or status["groupName"], status.get("description") or "", permanent=True)
        return SendResult(PERMANENT, provider_message_id=message_id, status=status, error=error)
    return SendResult(ACCEPTED, provider_message_id=message_id, status=status)


def classify_failure(response: requests.Response, data: dict) -> SendResult:
    """A non-2xx answer: 429 (with Retry-After), 408 and 5xx are worth retrying; anything else is not."""
    status_code = response.status_code
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


def _id_chunks(message_ids: list[str]) -> list[list[str]]:
    """Split ids into groups whose comma-joined length fits the logs endpoint's messageId parameter."""
    chunks: list[list[str]] = []
    length = 0
    for message_id in message_ids:
        if not chunks or length + 1 + len(message_id) > LOGS_MESSAGE_IDS_MAX_CHARS or len(chunks[-1]) >= LOGS_LIMIT:
            chunks.append([])
            length = -1
        chunks[-1].append(message_id)
        length += 1 + len(message_id)
    return chunks


def message_logs(account: InfobipAccount, message_ids: list[str]) -> list[dict]:
    """Infobip's log entries (status, error, doneAt) of these messages sent through the account, last 48 h.

    Best effort, for reconciliation: a network failure or an error answer ends the call with what was read so
    far (logged without the key); the next run asks again. Infobip allows 120 of these requests a minute."""
    entries: list[dict] = []
    for chunk in _id_chunks(message_ids):
        try:
            response = session_for(account).get(
                f"{account.base_url.rstrip('/')}{LOGS_PATH}",
                params={"messageId": ",".join(chunk), "limit": LOGS_LIMIT},
                headers={"Authorization": f"App {account.api_key}", "Accept": "application/json"},
                timeout=_default_timeout(),
            )
        except requests.RequestException as exc:
            logger.warning("message logs of account %s not read: %s", account.pk, type(exc).__name__)
            break
        if response.status_code != 200:
            logger.warning("message logs of account %s not read: HTTP %s", account.pk, response.status_code)
            break
        results = _json(response).get("results")
        entries.extend(entry for entry in results or [] if isinstance(entry, dict))
    return entries
