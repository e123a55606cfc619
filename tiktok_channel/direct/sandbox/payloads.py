"""TikTok-shaped payloads (`/work/shared/tiktok/README.md` §2.1, §3, §8, §10): one home for the sandbox and tests.

The Business API envelope and its numeric error codes, the webhook envelope with its JSON-string `content`, the
three message events, and the `TikTok-Signature` header. Every builder returns plain dicts ready for `json.dumps`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

# §8.1 / §3.6: the codes the sandbox answers with, and the message it gives.
OK = 0
PERMISSION_ERROR = 40001  # no permission, a scope missing
PARAM_ERROR = 40002
NOT_EXIST = 40007  # the conversation, message or media does not exist
BLOCKED_BY_MESSAGING_RULES = 40064  # the 48-hour window or the message cap
TOO_FREQUENT = 40100
ACCESS_TOKEN_EXPIRED = 40102
REFRESH_TOKEN_EXPIRED = 40103
ACCESS_TOKEN_EMPTY = 40104
ACCESS_TOKEN_INVALID = 40105
REFRESH_TOKEN_INVALID = 40107
GRANT_TYPE_INVALID = 40108
AUTH_CODE_ERROR = 40110
ROUTE_NOT_FOUND = 40400
FILE_TOO_LARGE = 40907
FILE_TYPE_UNSUPPORTED = 40908
SYSTEM_ERROR = 50000

MESSAGES = {
    OK: "OK",
    PERMISSION_ERROR: "Permission error",
    PARAM_ERROR: "Param error",
    NOT_EXIST: "Not exist",
    BLOCKED_BY_MESSAGING_RULES: "Blocked by messaging rules",
    TOO_FREQUENT: "Request too frequent",
    ACCESS_TOKEN_EXPIRED: "Access token is expired",
    REFRESH_TOKEN_EXPIRED: "Refresh token is expired",
    ACCESS_TOKEN_EMPTY: "Access token is empty",
    ACCESS_TOKEN_INVALID: "Access token is invalid",
    REFRESH_TOKEN_INVALID: "Refresh token is invalid",
    GRANT_TYPE_INVALID: "Invalid grant type",
    AUTH_CODE_ERROR: "Auth code error",
    ROUTE_NOT_FOUND: "Route not found",
    FILE_TOO_LARGE: "File too large",
    FILE_TYPE_UNSUPPORTED: "File type not supported",
    SYSTEM_ERROR: "System error",
}

# §2.1: the messaging scopes Chatwoot asks for, and the organic ones seen in another client.
MESSAGING_SCOPES = (
    "user.info.basic",
    "user.info.username",
    "user.info.stats",
    "user.info.profile",
    "user.account.type",
    "user.insights",
    "message.list.read",
    "message.list.send",
    "message.list.manage",
)
ORGANIC_SCOPES = (
    "video.list",
    "video.insights",
    "comment.list",
    "comment.list.manage",
    "video.publish",
    "video.upload",
)
KNOWN_SCOPES = MESSAGING_SCOPES + ORGANIC_SCOPES

WEBHOOK_EVENT_TYPES = ("DIRECT_MESSAGE", "COMMENT", "VIDEO")  # §3.4


def request_id() -> str:
    return secrets.token_hex(16)


def numeric_id() -> str:
    """A 19-digit id like TikTok's message ids (64-bit, sent as strings)."""
    return str(7_000_000_000_000_000_000 + secrets.randbelow(10**18))


def envelope(data: dict | None = None, *, code: int = OK, message: str = "") -> dict:
    """The Business API envelope: `{"code", "message", "request_id", "data"}` (errors too, usually on HTTP 200)."""
    text = MESSAGES.get(code, "Error") if not message else f"{MESSAGES.get(code, 'Error')}: {message}"
    return {"code": code, "message": text, "request_id": request_id(), "data": data if data is not None else {}}


def token_data(
    *, open_id: str, scope: str, access_token: str, refresh_token: str, expires_in: int, refresh_expires_in: int
) -> dict:
    """`data` of the token and refresh answers (§2.1)."""
    return {
        "open_id": open_id,
        "scope": scope,
        "access_token": access_token,
        "refresh_token": refresh_token,
        "expires_in": expires_in,
        "refresh_token_expires_in": refresh_expires_in,
        "token_type": "Bearer",
    }


# --- webhook events (§3.5) -----------------------------------------------------------------------------------


def webhook_envelope(*, client_key: str, event: str, business_id: str, content: dict, create_time_ms: bool) -> dict:
    """The webhook body: `content` is a JSON *string*; `create_time` in seconds (or ms, §11.5)."""
    now = time.time()
    return {
        "client_key": client_key,
        "event": event,
        "create_time": int(now * 1000) if create_time_ms else int(now),
        "user_openid": business_id,
        "content": json.dumps(content, ensure_ascii=False),
    }


def message_content(
    *,
    conversation_id: str,
    message_id: str,
    timestamp_ms: int,
    kind: str,
    body: dict | None,
    from_name: str,
    from_id: str,
    from_role: str,
    to_name: str,
    to_id: str,
    to_role: str,
    source: str,
    referenced_message_id: str = "",
) -> dict:
    """Decoded `content` of `im_receive_msg` / `im_send_msg`: lowercase `type`, its body under the same key."""
    content: dict[str, Any] = {
        "conversation_id": conversation_id,
        "message_id": message_id,
        "timestamp": timestamp_ms,
        "type": kind,
        "from": from_name,
        "from_user": {"id": from_id, "role": from_role},
        "to": to_name,
        "to_user": {"id": to_id, "role": to_role},
        "message_tag": {"source": source},
    }
    if body is not None:
        content[kind] = body
    if referenced_message_id:
        content["referenced_message_info"] = {"referenced_message_id": referenced_message_id}
    return content


def read_content(*, conversation_id: str, user_id: str, last_read_timestamp_ms: int) -> dict:
    """Decoded `content` of `im_mark_read_msg`."""
    return {
        "conversation_id": conversation_id,
        "read": {"last_read_timestamp": last_read_timestamp_ms},
        "from_user": {"id": user_id},
    }


# --- the signature (§10) -------------------------------------------------------------------------------------


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    """`TikTok-Signature: t=<unix s>,s=<hex HMAC-SHA256(secret, t + "." + body)>`."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},s={digest}"


# --- media ---------------------------------------------------------------------------------------------------

# A 1x1 transparent PNG: what a simulated user's image downloads as.
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def sniff_image(data: bytes) -> str:
    """The image type by its first bytes: "image/jpeg", "image/png", "image/webp", or ""."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return ""
