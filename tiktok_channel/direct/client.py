"""TikTok API for Business over HTTP: the OAuth calls of a `tt_user` (token, refresh, revoke), the business profile,
and Business Messaging (send, media upload). Every call has connect and read timeouts; every answer is classified.

The Business API answers errors as a numeric `code` != 0, usually with HTTP 200 (../shared/tiktok/README.md §1,
§8); a 4xx/5xx status means the request never reached TikTok's logic. `TikTokError.kind` says what to do:

- TOKEN_INVALID: the access token is expired or invalid: refresh once, then try again;
- REAUTHORIZE: the refresh token is dead or a scope is missing: only a new consent helps;
- THROTTLED / RETRYABLE: try later (THROTTLED with TikTok's wait, which it does not send: a setting);
- DUPLICATE: TikTok already has this request: done;
- PERMANENT: the request itself is refused: do not repeat it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from json import dumps as json_dumps

import requests
from django.conf import settings
from django.core.files.storage import default_storage

from tiktok_channel.direct.models import TikTokApp

logger = logging.getLogger(__name__)

TOKEN_INVALID, REAUTHORIZE, THROTTLED, RETRYABLE, DUPLICATE, PERMANENT = (
    "token_invalid",
    "reauthorize",
    "throttled",
    "retryable",
    "duplicate",
    "permanent",
)

# §8.1 and §3.6 of the shared TikTok notes.
TOKEN_INVALID_CODES = {40102, 40104, 40105}
REAUTHORIZE_CODES = {40001, 40003, 40103, 40107, 40130, 40131}
# The consent itself is spent or wrong (an auth code expired or reused, a bad grant): a new consent is needed.
CONSENT_CODES = {40108, 40110}
THROTTLED_CODES = {40100, 40132, 61000}
RETRYABLE_CODES = {40201, 40202, 40902, 40913, 50000, 50002, 60001}
DUPLICATE_CODES = {40050}
# What an agent reads for the refusals they will meet most (the rest show TikTok's own message).
CODE_REASONS = {
    40064: "TikTok's messaging rules refused it (the reply window or the message cap)",
    40002: "TikTok refused a parameter",
    40007: "the conversation or message does not exist on TikTok",
    40908: "TikTok does not take this file type",
    40907: "the file is too large for TikTok",
}


@dataclass
class TikTokError(Exception):
    """A call TikTok refused or that did not reach it; never carries a token or secret."""

    kind: str
    code: int | None
    message: str
    retry_after: float | None = None

    def __str__(self) -> str:
        return f"{self.code or 'http'}: {self.message}" if self.code else self.message

    def as_error(self) -> dict:
        """The shape the core keeps on a failed message (`Message.error`)."""
        return {
            "name": f"TIKTOK_{self.code}" if self.code else self.kind.upper(),
            "description": CODE_REASONS.get(self.code or 0, self.message),
            "code": self.code,
            "permanent": self.kind in (PERMANENT, REAUTHORIZE),
            "tiktok_message": self.message,
        }


def classify_code(code: int) -> str:
    if code in TOKEN_INVALID_CODES:
        return TOKEN_INVALID
    if code in REAUTHORIZE_CODES or code in CONSENT_CODES:
        return REAUTHORIZE
    if code in THROTTLED_CODES:
        return THROTTLED
    if code in RETRYABLE_CODES or 51000 <= code < 53000:
        return RETRYABLE
    if code in DUPLICATE_CODES:
        return DUPLICATE
    return PERMANENT


_local = threading.local()


def _session() -> requests.Session:
    """One pooled session per thread (a Celery worker's threads share none)."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def timeout() -> tuple[float, float]:
    return (settings.TIKTOK_DIRECT_CONNECT_TIMEOUT, settings.TIKTOK_DIRECT_READ_TIMEOUT)


def call(
    app: TikTokApp,
    method: str,
    path: str,
    *,
    access_token: str | None = None,
    json: dict | None = None,
    params: dict | None = None,
    data: dict | None = None,
    files: dict | None = None,
) -> dict:
    """One Business API call; returns the answer's `data` or raises TikTokError. The token goes in the
    `Access-Token` header (never Bearer, never the query)."""
    headers = {"Access-Token": access_token} if access_token else {}
    try:
        response = _session().request(
            method,
            app.api_url(path),
            headers=headers,
            json=json,
            params=params,
            data=data,
            files=files,
            timeout=timeout(),
        )
    except requests.Timeout:
        raise TikTokError(RETRYABLE, None, "TikTok did not answer in time") from None
    except requests.RequestException as exc:
        raise TikTokError(RETRYABLE, None, f"TikTok could not be reached ({type(exc).__name__})") from None
    return answer_data(response)


def answer_data(response: requests.Response) -> dict:
    """The `data` of a Business API answer, or TikTokError classified."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("code"), int) and body["code"] != 0:
        code = body["code"]
        kind = classify_code(code)
        message = str(body.get("message") or "TikTok refused the request")[:500]
        wait = settings.TIKTOK_DIRECT_THROTTLE_WAIT_SECONDS if kind == THROTTLED else None
        raise TikTokError(kind, code, message, retry_after=wait)
    if status == 429:
        raise TikTokError(
            THROTTLED, None, "TikTok: too many requests (HTTP 429)", settings.TIKTOK_DIRECT_THROTTLE_WAIT_SECONDS
        )
    if status >= 500:
        raise TikTokError(RETRYABLE, None, f"TikTok answered HTTP {status}")
    if status == 401:
        raise TikTokError(TOKEN_INVALID, None, "TikTok answered HTTP 401")
    if status >= 400:
        raise TikTokError(PERMANENT, None, f"TikTok answered HTTP {status}")
    if not isinstance(body, dict) or body.get("code") != 0:
        raise TikTokError(RETRYABLE, None, "TikTok's answer is not its JSON envelope")
    data = body.get("data")
    return data if isinstance(data, dict) else {}


# --- OAuth of a TikTok account holder (tt_user) ---------------------------------------------------------------


def exchange_code(app: TikTokApp, *, code: str) -> dict:
    """The tokens for an authorization code (open_id, scope, access/refresh tokens and their lifetimes)."""
    return call(
        app,
        "POST",
        "/tt_user/oauth2/token/",
        json={
            "client_id": app.client_key,
            "client_secret": app.client_secret,
            "grant_type": "authorization_code",
            "auth_code": code,
            "redirect_uri": app.redirect_uri(),
        },
    )


def refresh(app: TikTokApp, *, refresh_token: str) -> dict:
    """New tokens (the refresh token rotates: the old one is dead once this answers)."""
    return call(
        app,
        "POST",
        "/tt_user/oauth2/refresh_token/",
        json={
            "client_id": app.client_key,
            "client_secret": app.client_secret,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
        },
    )


def revoke(app: TikTokApp, *, access_token: str) -> None:
    call(
        app,
        "POST",
        "/tt_user/oauth2/revoke/",
        json={"client_id": app.client_key, "client_secret": app.client_secret, "access_token": access_token},
    )


def business_profile(app: TikTokApp, *, access_token: str, business_id: str) -> dict:
    """The account's username and display name."""
    return call(
        app,
        "GET",
        "/business/get/",
        access_token=access_token,
        params={"business_id": business_id, "fields": '["username","display_name"]'},
    )


def register_webhook(app: TikTokApp, *, event_type: str = "DIRECT_MESSAGE") -> dict:
    """Point the app's `event_type` webhook at our URL (§3.4: per app, authenticated by app id and secret, no token).
    Returns TikTok's `data` ({app_id, event_type, callback_url})."""
    return call(
        app,
        "POST",
        "/business/webhook/update/",
        json={
            "app_id": app.client_key,
            "secret": app.client_secret,
            "event_type": event_type,
            "callback_url": app.webhook_url,
        },
    )


# --- Business Messaging ---------------------------------------------------------------------------------------


def send_message(app: TikTokApp, *, access_token: str, body: dict) -> str:
    """Send one message; returns TikTok's message id."""
    data = call(app, "POST", "/business/message/send/", access_token=access_token, json=body)
    message = data.get("message") if isinstance(data.get("message"), dict) else {}
    return str(message.get("message_id") or "")


def reply_to_comment(app: TikTokApp, *, access_token: str, body: dict) -> str:
    """Reply publicly to a comment on the business's own video (§6.2); returns the new comment's id."""
    data = call(app, "POST", "/business/comment/reply/create/", access_token=access_token, json=body)
    return str(data.get("comment_id") or "")


def hide_comment(app: TikTokApp, *, access_token: str, business_id: str, video_id: str, comment_id: str, hide: bool):
    """Hide a comment on the business's video from the public, or show it again (§6.2)."""
    body = {"business_id": business_id, "video_id": video_id, "comment_id": comment_id}
    call(
        app,
        "POST",
        "/business/comment/hide/",
        access_token=access_token,
        json={**body, "action": "HIDE" if hide else "UNHIDE"},
    )


def delete_comment(app: TikTokApp, *, access_token: str, business_id: str, comment_id: str) -> None:
    """Delete a comment the business wrote (§6.2: only its own)."""
    call(
        app,
        "POST",
        "/business/comment/delete/",
        access_token=access_token,
        json={"business_id": business_id, "comment_id": comment_id},
    )


def list_comments(
    app: TikTokApp, *, access_token: str, business_id: str, video_id: str, cursor: int = 0, max_count: int = 30
) -> dict:
    """One page of a video's top-level comments with up to 3 replies each, hidden ones included (§6.2):
    `{comments, cursor, has_more}`."""
    return call(
        app,
        "GET",
        "/business/comment/list/",
        access_token=access_token,
        params={
            "business_id": business_id,
            "video_id": video_id,
            "include_replies": "true",
            "status": "ALL",
            "sort_field": "create_time",
            "sort_order": "desc",
            "cursor": cursor,
            "max_count": max_count,
        },
    )


def list_comment_replies(
    app: TikTokApp, *, access_token: str, business_id: str, video_id: str, comment_id: str, cursor: int = 0
) -> dict:
    """One page of the replies to a comment (§6.2): `{comments, cursor, has_more}`."""
    return call(
        app,
        "GET",
        "/business/comment/reply/list/",
        access_token=access_token,
        params={
            "business_id": business_id,
            "video_id": video_id,
            "comment_id": comment_id,
            "sort_field": "create_time",
            "sort_order": "desc",
            "cursor": cursor,
        },
    )


VIDEO_FIELDS = '["item_id","caption","create_time","thumbnail_url","share_url","embed_url","comments"]'


def list_videos(
    app: TikTokApp,
    *,
    access_token: str,
    business_id: str,
    cursor: int | None = None,
    video_ids: list[str] | None = None,
) -> dict:
    """One page (≤ 20) of the account's videos, newest first (§6.1): `{videos, cursor, has_more}`."""
    params: dict = {"business_id": business_id, "fields": VIDEO_FIELDS, "max_count": 20}
    if cursor is not None:
        params["cursor"] = cursor
    if video_ids:
        params["filters"] = json_dumps({"video_ids": video_ids})
    return call(app, "GET", "/business/video/list/", access_token=access_token, params=params)


def upload_image(app: TikTokApp, *, access_token: str, business_id: str, content: bytes, filename: str) -> str:
    """Upload an image for a message; returns its media_id (valid 30 days)."""
    content_type = "image/png" if filename.lower().endswith(".png") else "image/jpeg"
    data = call(
        app,
        "POST",
        "/business/message/media/upload/",
        access_token=access_token,
        data={"business_id": business_id, "media_type": "IMAGE"},
        files={"file": (filename, content, content_type)},
    )
    media_id = data.get("media_id")
    if not media_id:
        raise TikTokError(RETRYABLE, None, "TikTok's upload answer has no media_id")
    return str(media_id)


def image_bytes(url: str) -> tuple[bytes, str]:
    """An outbound image's content and file name: our own upload read from storage, another URL fetched (with the
    size limit). Raises TikTokError (PERMANENT for what cannot be sent, RETRYABLE for a fetch that may work later)."""
    limit = settings.TIKTOK_DIRECT_IMAGE_MAX_BYTES
    own_prefix = f"{settings.PUBLIC_BASE_URL}{settings.MEDIA_URL}"
    filename = url.rsplit("/", 1)[-1] or "image.jpg"
    if url.startswith(own_prefix):
        name = url[len(own_prefix) :]
        if not default_storage.exists(name):
            raise TikTokError(PERMANENT, None, "the uploaded image no longer exists")
        with default_storage.open(name, "rb") as stored:
            content = stored.read(limit + 1)
    else:
        try:
            with _session().get(url, timeout=timeout(), stream=True) as response:
                if response.status_code >= 400:
                    kind = RETRYABLE if response.status_code >= 500 else PERMANENT
                    raise TikTokError(kind, None, f"the image URL answered HTTP {response.status_code}")
                content = response.raw.read(limit + 1, decode_content=True)
        except requests.RequestException as exc:
            raise TikTokError(RETRYABLE, None, f"the image could not be fetched ({type(exc).__name__})") from None
    if len(content) > limit:
        raise TikTokError(PERMANENT, None, f"the image is larger than {limit // (1024 * 1024)} MB")
    return content, filename
