"""TikTok's Content Posting API over HTTP (§4): creator_info, video and photo init, the chunk PUT, status fetch.

These are TikTok for Developers calls (`open.tiktokapis.com`, `Authorization: Bearer`, the `{"data", "error"}`
envelope with a string `error.code` and a real HTTP status, §1 and §8.2), unlike the Business API calls of
`direct/client.py`. Every call has connect and read timeouts; every refusal is a `PostingError` whose `kind` says
what to do (the same kinds as `direct/client.py`) and whose `reason` is for the person who posted.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from django.conf import settings

from tiktok_channel.direct.client import PERMANENT, REAUTHORIZE, RETRYABLE, THROTTLED, TOKEN_INVALID, _session, timeout
from tiktok_channel.direct.models import TikTokApp

# What the person who posted reads, for TikTok's codes (§4.1, §4.5, §4.6); others show TikTok's message.
REASONS = {
    "spam_risk_too_many_posts": "TikTok: this account has posted too much today; try again tomorrow",
    "spam_risk_user_banned_from_posting": "TikTok has banned this account from posting",
    "reached_active_user_cap": "TikTok: this app has reached its daily number of posting users; try again later",
    "unaudited_client_can_only_post_to_private_accounts": (
        "TikTok: until TikTok audits this app it may only post privately (choose 'Only me')"
    ),
    "privacy_level_option_mismatch": "TikTok no longer offers this privacy option for the account: choose again",
    "url_ownership_unverified": "TikTok: the photos' web address is not verified for this app in TikTok's portal",
    "rate_limit_exceeded": "TikTok: too many requests; trying again shortly",
    "access_token_invalid": "TikTok refused the account's access token",
    "scope_not_authorized": "the account did not allow posting (video.publish): reconnect it and allow posting",
    "file_format_check_failed": "TikTok could not read the file's format",
    "duration_check_failed": "TikTok refused the video's length",
    "frame_rate_check_failed": "TikTok refused the video's frame rate (23-60 fps)",
    "picture_size_check_failed": "TikTok refused the picture size (360-4096 px per side; photos up to 1080p)",
    "internal": "TikTok had an internal error",
    "video_pull_failed": "TikTok could not download the video",
    "photo_pull_failed": "TikTok could not download the photos",
    "publish_cancelled": "the post was cancelled",
    "auth_removed": "the account removed this app's access",
    "spam_risk_text": "TikTok refused the caption (spam risk)",
    "spam_risk": "TikTok refused the post (spam risk)",
}

THROTTLED_CODES = {"rate_limit_exceeded"}
REAUTHORIZE_CODES = {"scope_not_authorized", "scope_permission_missed"}


@dataclass
class PostingError(Exception):
    kind: str
    error_code: str
    message: str
    retry_after: float | None = None

    def __str__(self) -> str:
        return f"{self.error_code}: {self.message}" if self.error_code else self.message

    @property
    def reason(self) -> str:
        return REASONS.get(self.error_code) or self.message


def reason_for(code: str) -> str:
    return REASONS.get(code) or f"TikTok: {code}"


def base_url(app: TikTokApp) -> str:
    """The Content Posting host: the setting, else TikTok's for an app on TikTok's hosts, else the app's own base URL
    (the local sandbox answers both platforms on one port)."""
    if settings.TIKTOK_CONTENT_API_BASE_URL:
        return settings.TIKTOK_CONTENT_API_BASE_URL.rstrip("/")
    host = urlsplit(app.api_base_url).hostname or ""
    if host == "tiktok.com" or host.endswith(".tiktok.com"):
        return "https://open.tiktokapis.com"
    return app.api_base_url.rstrip("/")


def call(app: TikTokApp, path: str, *, access_token: str, body: dict) -> dict:
    """One POST; returns `data` or raises PostingError."""
    try:
        response = _session().post(
            f"{base_url(app)}{path}",
            json=body,
            headers={"Authorization": f"Bearer {access_token}", "Content-Type": "application/json; charset=UTF-8"},
            timeout=timeout(),
        )
    except requests.Timeout:
        raise PostingError(RETRYABLE, "", "TikTok did not answer in time") from None
    except requests.RequestException as exc:
        raise PostingError(RETRYABLE, "", f"TikTok could not be reached ({type(exc).__name__})") from None
    return answer_data(response)


def answer_data(response: requests.Response) -> dict:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else {}
    code = str(error.get("code") or "")
    message = str(error.get("message") or "")[:500]
    if status < 400 and code == "ok":
        data = body.get("data")
        return data if isinstance(data, dict) else {}
    wait = settings.TIKTOK_DIRECT_THROTTLE_WAIT_SECONDS
    if status == 429 or code in THROTTLED_CODES:
        raise PostingError(THROTTLED, code or "rate_limit_exceeded", message or "too many requests", wait)
    if code in REAUTHORIZE_CODES:
        raise PostingError(REAUTHORIZE, code, message)
    if status == 401 or code == "access_token_invalid":
        raise PostingError(TOKEN_INVALID, code or "access_token_invalid", message or "HTTP 401")
    if status >= 500 or code == "internal_error":
        raise PostingError(RETRYABLE, code, message or f"TikTok answered HTTP {status}")
    if not code:
        kind = RETRYABLE if status < 400 else PERMANENT
        raise PostingError(kind, "", f"TikTok's answer (HTTP {status}) is not its JSON envelope")
    # 200 with an error code (creator_info's spam risks), 400 and 403: the request itself is refused.
    raise PostingError(PERMANENT, code, message or code)


def creator_info(app: TikTokApp, *, access_token: str) -> dict:
    return call(app, "/v2/post/publish/creator_info/query/", access_token=access_token, body={})


def video_init(app: TikTokApp, *, access_token: str, post_info: dict, source_info: dict) -> dict:
    """→ {"publish_id", "upload_url"}"""
    body = {"post_info": post_info, "source_info": source_info}
    return call(app, "/v2/post/publish/video/init/", access_token=access_token, body=body)


def photo_init(app: TikTokApp, *, access_token: str, body: dict) -> dict:
    return call(app, "/v2/post/publish/content/init/", access_token=access_token, body=body)


def status_fetch(app: TikTokApp, *, access_token: str, publish_id: str) -> dict:
    return call(app, "/v2/post/publish/status/fetch/", access_token=access_token, body={"publish_id": publish_id})


# What a chunk PUT's answer means (§4.3).
CHUNK_ACCEPTED, UPLOAD_COMPLETE, OUT_OF_STEP, URL_DEAD, CHUNK_RETRY, CHUNK_REFUSED = (
    "accepted",
    "complete",
    "out_of_step",
    "url_dead",
    "retry",
    "refused",
)


@dataclass(frozen=True)
class ChunkAnswer:
    outcome: str
    uploaded: int | None  # bytes TikTok says it has (its Content-Range: bytes 0-{last}/{total}), when it says
    detail: str = ""


def uploaded_bytes(header: str | None) -> int | None:
    """`bytes 0-{last}/{total}` → last + 1."""
    if not header or not header.startswith("bytes "):
        return None
    span = header[len("bytes ") :].split("/", 1)[0]
    if "-" not in span:
        return None
    try:
        return int(span.split("-", 1)[1]) + 1
    except ValueError:
        return None


def put_chunk(upload_url: str, data: bytes, *, start: int, end: int, total: int, content_type: str) -> ChunkAnswer:
    """PUT one chunk; classify TikTok's answer: 206 accepted (more expected) · 201 all received · 416 out of step ·
    403/404 the upload URL is dead (re-init) · 5xx / no answer retry · 400 refused."""
    headers = {
        "Content-Type": content_type,
        "Content-Length": str(len(data)),
        "Content-Range": f"bytes {start}-{end}/{total}",
    }
    try:
        response = _session().put(
            upload_url,
            data=data,
            headers=headers,
            # urllib3 applies the connect timeout while the body is sent: a chunk TikTok reads slowly needs the
            # upload's own timeout there too.
            timeout=(settings.TIKTOK_UPLOAD_READ_TIMEOUT, settings.TIKTOK_UPLOAD_READ_TIMEOUT),
        )
    except requests.RequestException as exc:
        return ChunkAnswer(CHUNK_RETRY, None, f"the upload did not get an answer ({type(exc).__name__})")
    status = response.status_code
    uploaded = uploaded_bytes(response.headers.get("Content-Range"))
    detail = f"HTTP {status}: {response.text[:200]}".strip()
    if status == 206:
        return ChunkAnswer(CHUNK_ACCEPTED, uploaded if uploaded is not None else end + 1)
    if status == 201:
        return ChunkAnswer(UPLOAD_COMPLETE, total)
    if status == 416:
        return ChunkAnswer(OUT_OF_STEP, uploaded, detail)
    if status in (403, 404):
        return ChunkAnswer(URL_DEAD, None, detail)
    if status >= 500 or status == 429:
        return ChunkAnswer(CHUNK_RETRY, None, detail)
    return ChunkAnswer(CHUNK_REFUSED, None, detail)
