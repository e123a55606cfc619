"""The sandbox's Content Posting API (`/work/shared/tiktok/README.md` §4, §8.2, §9), independent of HTTP.

TikTok for Developers conventions: `Authorization: Bearer <token>` (the sandbox's own tokens serve both platforms),
answers `{"data": {...}, "error": {"code": "ok", "message": "", "log_id": "..."}}`, refusals with a real HTTP
status and a string `error.code`.

  POST /v2/post/publish/creator_info/query/   → creator_nickname, creator_username, privacy_level_options
       (`privacy_level_options`), comment/duet/stitch_disabled, max_video_post_duration_sec. `creator_info_error`
       answers HTTP 200 with that error code (spam_risk_too_many_posts, ...), as TikTok does.
  POST /v2/post/publish/video/init/  {"post_info", "source_info": {"source": "FILE_UPLOAD", "video_size",
       "chunk_size", "total_chunk_count"}} → {"publish_id", "upload_url"} (valid an hour). The chunk rules of §4.3 are
       checked: under the minimum one chunk of the whole size; else chunk_size within min-max, total_chunk_count =
       floor(size / chunk_size) within 1-1000, the last chunk (with the remainder) up to `upload_max_last_chunk_bytes`.
       A privacy level not offered → 403 privacy_level_option_mismatch.
  PUT  /upload/video/?upload_id=&upload_token=   one chunk: Content-Type video/mp4|quicktime|webm, Content-Range
       `bytes a-b/total`, the chunk's exact bytes, in order → 206 (more expected) / 201 (all received), with
       `Content-Range: bytes 0-{last}/{total}`; 416 out of step (a chunk again, or skipped: the header says what it
       holds); 400 wrong size or headers; 403 expired; 404 unknown upload.
  POST /v2/post/publish/content/init/  photos: {"media_type": "PHOTO", "post_mode": "DIRECT_POST", "post_info",
       "source_info": {"source": "PULL_FROM_URL", "photo_images": [...], "photo_cover_index"}} → {"publish_id"}; the
       photos are downloaded (JPEG/WebP) once processing ends: one that cannot be → FAILED photo_pull_failed.
  POST /v2/post/publish/status/fetch/ {"publish_id"} → {"status": PROCESSING_UPLOAD|PROCESSING_DOWNLOAD (until
       every byte, then `post_processing_ms`), PUBLISH_COMPLETE | FAILED, "fail_reason", "uploaded_bytes",
       "publicaly_available_post_id": [id] once `post_moderation_ms` more have passed}.

Faults: `post_rate_limit_next` (HTTP 429 rate_limit_exceeded on the next Content Posting call), `post_fail_next`
(the next post to finish processing FAILS with `post_fail_reason`), `chunk_reject_next` (the next chunk answered
`chunk_reject_status`, 5xx or 400, and not kept), `chunk_delay_ms` (each chunk is held this long before its body
is read: a worker can be killed mid-upload). Counters: chunks_received, chunks_rejected, chunks_out_of_step,
chunks_incomplete, chunk_held, posts_initialized, posts_completed, posts_failed, status_fetched.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests

from tiktok_channel.direct.sandbox import payloads

if TYPE_CHECKING:
    from tiktok_channel.direct.sandbox.state import Sandbox

VIDEO_TYPES = ("video/mp4", "video/quicktime", "video/webm")


class V2Error(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict:
        return v2_envelope({}, code=self.code, message=self.message)


def v2_envelope(data: dict, *, code: str = "ok", message: str = "") -> dict:
    return {"data": data, "error": {"code": code, "message": message, "log_id": payloads.request_id()}}


@dataclass
class Publish:
    publish_id: str
    open_id: str
    kind: str  # video | photo
    post_info: dict
    size: int = 0
    chunk_size: int = 0
    chunk_count: int = 0
    upload_id: str = ""
    upload_token: str = ""
    upload_expires_at: float = 0.0
    data: bytearray = field(default_factory=bytearray)
    chunks: list[dict] = field(default_factory=list)
    photo_urls: list[str] = field(default_factory=list)
    photos_pulled: int = 0
    complete_at: float | None = None
    fail_reason: str = ""
    failure_reported: bool = False
    post_id: str = ""

    def public(self) -> dict:
        return {
            "publish_id": self.publish_id,
            "account": self.open_id,
            "kind": self.kind,
            "post_info": self.post_info,
            "size": self.size,
            "chunk_size": self.chunk_size,
            "chunk_count": self.chunk_count,
            "uploaded": len(self.data),
            "chunks": list(self.chunks),
            "sha256": hashlib.sha256(self.data).hexdigest() if self.kind == "video" else "",
            "photo_urls": list(self.photo_urls),
            "photos_pulled": self.photos_pulled,
            "complete": self.complete_at is not None,
            "fail_reason": self.fail_reason,
            "post_id": self.post_id,
        }


def chunk_span(index: int, size: int, chunk_size: int, count: int) -> tuple[int, int]:
    start = index * chunk_size
    return start, (size - 1 if index == count - 1 else start + chunk_size - 1)


class Posting:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.publishes: dict[str, Publish] = {}
        self.uploads: dict[str, str] = {}  # upload_id -> publish_id

    @property
    def b(self):
        return self.sandbox.behaviour

    def public(self) -> list[dict]:
        return [p.public() for p in self.publishes.values()]

    # --- auth and faults -------------------------------------------------------------------------------------

    def authenticate(self, authorization: str, scope: str = "video.publish") -> str:
        """The open_id behind `Authorization: Bearer <token>` (raises V2Error)."""
        sandbox = self.sandbox
        value = authorization[len("Bearer ") :].strip() if authorization.startswith("Bearer ") else ""
        with sandbox.lock:
            if self.b.take("post_rate_limit_next"):
                sandbox.count("posting_rate_limited")
                raise V2Error(429, "rate_limit_exceeded", "Too many requests (fault switch)")
            if not value:
                raise V2Error(401, "access_token_invalid", "send Authorization: Bearer <access token>")
            token = sandbox.tokens.get(value)
            if token is None or token.kind != "access" or token.state(sandbox.now()) != "active":
                raise V2Error(401, "access_token_invalid", "The access token is invalid or not found in the request.")
            if scope not in token.grant.scope:
                raise V2Error(401, "scope_not_authorized", f"the user did not authorize the scope {scope}")
            return token.grant.open_id

    # --- creator_info and init -------------------------------------------------------------------------------

    def creator_info(self, open_id: str) -> tuple[dict, str]:
        account = self.sandbox.accounts[open_id]
        data = {
            "creator_avatar_url": f"https://p16.tiktokcdn.example/{open_id}.jpeg",
            "creator_username": account.username,
            "creator_nickname": account.display_name,
            "privacy_level_options": list(self.b.privacy_level_options),
            "comment_disabled": self.b.creator_comment_disabled,
            "duet_disabled": self.b.creator_duet_disabled,
            "stitch_disabled": self.b.creator_stitch_disabled,
            "max_video_post_duration_sec": self.b.max_video_post_duration_sec,
        }
        return data, self.b.creator_info_error

    def _post_info(self, body: dict, *, title_max: int) -> dict:
        info = body.get("post_info")
        if not isinstance(info, dict):
            raise V2Error(400, "invalid_param", "post_info is required")
        if info.get("privacy_level") not in self.b.privacy_level_options:
            raise V2Error(403, "privacy_level_option_mismatch", "privacy_level is not among the creator's options")
        title = info.get("title", "")
        if not isinstance(title, str) or len(title.encode("utf-16-le")) // 2 > title_max:
            raise V2Error(400, "invalid_param", f"title must be a string of at most {title_max} UTF-16 units")
        if not isinstance(info.get("brand_content_toggle"), bool):
            raise V2Error(400, "invalid_param", "post_info.brand_content_toggle is required")
        return info

    def video_init(self, open_id: str, body: dict, base_url: str) -> dict:
        info = self._post_info(body, title_max=2200)
        source = body.get("source_info")
        if not isinstance(source, dict) or source.get("source") != "FILE_UPLOAD":
            raise V2Error(400, "invalid_param", "source_info.source must be FILE_UPLOAD (the sandbox pulls no video)")
        size, chunk, count = (source.get(k) for k in ("video_size", "chunk_size", "total_chunk_count"))
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (size, chunk, count)):
            raise V2Error(400, "invalid_param", "video_size, chunk_size and total_chunk_count are positive integers")
        self._check_chunks(size, chunk, count)
        with self.sandbox.lock:
            publish = Publish(
                publish_id=f"v_pub_file~v2-1.{payloads.numeric_id()}",
                open_id=open_id,
                kind="video",
                post_info=info,
                size=size,
                chunk_size=chunk,
                chunk_count=count,
                upload_id=payloads.numeric_id(),
                upload_token=secrets.token_urlsafe(12),
                upload_expires_at=self.sandbox.now() + 3600,
            )
            self.publishes[publish.publish_id] = publish
            self.uploads[publish.upload_id] = publish.publish_id
        self.sandbox.count("posts_initialized")
        url = f"{base_url}/upload/video/?upload_id={publish.upload_id}&upload_token={publish.upload_token}"
        return {"publish_id": publish.publish_id, "upload_url": url}

    def _check_chunks(self, size: int, chunk: int, count: int) -> None:
        b = self.b
        low, high, last_max = b.upload_min_chunk_bytes, b.upload_max_chunk_bytes, b.upload_max_last_chunk_bytes
        if size < low:
            if chunk != size or count != 1:
                raise V2Error(400, "invalid_param", "a video under the minimum chunk goes as one chunk of its size")
            return
        if not low <= chunk <= high:
            raise V2Error(400, "invalid_param", f"chunk_size must be {low}-{high} bytes")
        if count != size // chunk or not 1 <= count <= 1000:
            raise V2Error(400, "invalid_param", "total_chunk_count must be floor(video_size / chunk_size), 1-1000")
        if size - (count - 1) * chunk > last_max:
            raise V2Error(400, "invalid_param", f"the last chunk would exceed {last_max} bytes")

    def photo_init(self, open_id: str, body: dict) -> dict:
        if body.get("media_type") != "PHOTO" or body.get("post_mode") not in ("DIRECT_POST", "MEDIA_UPLOAD"):
            raise V2Error(400, "invalid_param", "media_type PHOTO and post_mode DIRECT_POST or MEDIA_UPLOAD")
        info = self._post_info(body, title_max=90)
        if len(str(info.get("description", ""))) > 4000:
            raise V2Error(400, "invalid_param", "description is at most 4000 characters")
        source = body.get("source_info")
        images = source.get("photo_images") if isinstance(source, dict) else None
        if (
            source.get("source") != "PULL_FROM_URL"
            or not isinstance(images, list)
            or not 1 <= len(images) <= 35
            or not all(isinstance(u, str) and u.startswith(("http://", "https://")) for u in images)
        ):
            raise V2Error(400, "invalid_param", "source_info: PULL_FROM_URL with 1-35 photo_images URLs")
        with self.sandbox.lock:
            publish = Publish(
                publish_id=f"p_pub_url~v2.{payloads.numeric_id()}",
                open_id=open_id,
                kind="photo",
                post_info=info,
                photo_urls=list(images),
            )
            self._complete(publish)
            self.publishes[publish.publish_id] = publish
        self.sandbox.count("posts_initialized")
        return {"publish_id": publish.publish_id}

    def _complete(self, publish: Publish) -> None:
        """Every byte is here (or the photos are to be pulled): processing starts; a failure switch is taken now."""
        publish.complete_at = self.sandbox.now()
        if self.b.take("post_fail_next"):
            publish.fail_reason = self.b.post_fail_reason

    # --- chunks ----------------------------------------------------------------------------------------------

    def upload_for(self, upload_id: str, upload_token: str) -> Publish | None:
        with self.sandbox.lock:
            publish = self.publishes.get(self.uploads.get(upload_id, ""))
            if publish is None or not secrets.compare_digest(publish.upload_token, upload_token):
                return None
            return publish

    def chunk_delay(self) -> float:
        return self.b.chunk_delay_ms / 1000

    def accept_chunk(self, publish: Publish, headers: dict[str, str], body: bytes) -> tuple[int, str, dict]:
        """(HTTP status, text, response headers) for one chunk."""
        sandbox = self.sandbox
        with sandbox.lock:
            uploaded = len(publish.data)
            progress = {"Content-Range": f"bytes 0-{uploaded - 1}/{publish.size}"} if uploaded else {}
            if self.b.take("chunk_reject_next"):
                sandbox.count("chunks_rejected")
                return self.b.chunk_reject_status, "chunk rejected (fault switch)", progress
            if sandbox.now() > publish.upload_expires_at:
                return 403, "upload_url expired", {}
            if publish.complete_at is not None:
                sandbox.count("chunks_out_of_step")
                return 416, "every chunk was received already", progress
            content_type = headers.get("content-type", "")
            if content_type not in VIDEO_TYPES:
                return 400, "Content-Type must be video/mp4, video/quicktime or video/webm", progress
            try:
                span, total = headers.get("content-range", "").removeprefix("bytes ").split("/")
                start, end = (int(x) for x in span.split("-"))
                total = int(total)
            except ValueError:
                return 400, "Content-Range must be bytes <first>-<last>/<total>", progress
            if total != publish.size:
                return 400, f"total {total} is not video_size {publish.size}", progress
            if start != uploaded:
                sandbox.count("chunks_out_of_step")
                return 416, f"expected the chunk starting at byte {uploaded}", progress
            index = start // publish.chunk_size
            expected = chunk_span(index, publish.size, publish.chunk_size, publish.chunk_count)
            if index >= publish.chunk_count or (start, end) != expected or len(body) != end - start + 1:
                return 400, f"chunk {index + 1} must be bytes {expected[0]}-{expected[1]} exactly", progress
            publish.data.extend(body)
            publish.chunks.append({"index": index, "start": start, "end": end, "at": time.time()})
            sandbox.count("chunks_received")
            done = {"Content-Range": f"bytes 0-{end}/{publish.size}"}
            if end + 1 == publish.size:
                self._complete(publish)
                sandbox.count("posts_uploaded")
                return 201, "", done
            return 206, "", done

    # --- status ----------------------------------------------------------------------------------------------

    def status(self, open_id: str, body: dict) -> dict:
        publish_id = body.get("publish_id")
        with self.sandbox.lock:
            publish = self.publishes.get(publish_id) if isinstance(publish_id, str) else None
            if publish is None:
                raise V2Error(400, "invalid_publish_id", "no such publish_id")
            if publish.open_id != open_id:
                raise V2Error(400, "token_not_authorized_for_specified_publish_id", "not this user's post")
            self.sandbox.count("status_fetched")
            now = self.sandbox.now()
            processing = "PROCESSING_UPLOAD" if publish.kind == "video" else "PROCESSING_DOWNLOAD"
            data: dict[str, Any] = {"status": processing, "fail_reason": "", "uploaded_bytes": len(publish.data)}
            if publish.complete_at is None or now < publish.complete_at + self.b.post_processing_ms / 1000:
                return data
            pull = publish.kind == "photo" and not publish.fail_reason and publish.photos_pulled == 0
        if pull:
            self._pull_photos(publish)  # outside the lock: a network fetch
        with self.sandbox.lock:
            if publish.fail_reason:
                if not publish.failure_reported:
                    publish.failure_reported = True
                    self.sandbox.count("posts_failed")
                data.update(status="FAILED", fail_reason=publish.fail_reason)
                return data
            data["status"] = "PUBLISH_COMPLETE"
            if now >= publish.complete_at + (self.b.post_processing_ms + self.b.post_moderation_ms) / 1000:
                if not publish.post_id:
                    publish.post_id = payloads.numeric_id()
                    self.sandbox.count("posts_completed")
                data["publicaly_available_post_id"] = [int(publish.post_id)]
            return data

    def _pull_photos(self, publish: Publish) -> None:
        pulled = 0
        for url in publish.photo_urls:
            try:
                response = requests.get(url, timeout=5)
                head = response.content[:12]
                ok = response.status_code == 200 and (head[:3] == b"\xff\xd8\xff" or head[8:12] == b"WEBP")
            except requests.RequestException:
                ok = False
            if not ok:
                with self.sandbox.lock:
                    publish.fail_reason = "photo_pull_failed"
                return
            pulled += 1
        with self.sandbox.lock:
            publish.photos_pulled = pulled
