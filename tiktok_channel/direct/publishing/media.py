"""What a file is, and whether TikTok would take it (§4.3), decided before anything is uploaded; the chunk plan.

The type comes from the file's first bytes, never from its name or the browser's word. A video's duration is read
cheaply from an MP4 / MOV file: a walk over the top-level boxes (seeks, no decoding) to `moov` → `mvhd`, whose
timescale and duration give the seconds. WebM's duration would need an EBML parser: it is not read here, and TikTok's
own check (`duration_check_failed`) reports it after the upload. Codec, frame rate and picture size are TikTok's
checks too (its fail reasons are shown).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

from django.conf import settings


class MediaRefused(Exception):
    """The file cannot be posted; the message says why, for the person who chose it."""


@dataclass(frozen=True)
class MediaInfo:
    content_type: str
    extension: str
    duration_seconds: float | None = None


def sniff_video(head: bytes) -> tuple[str, str] | None:
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return ("video/quicktime", "mov") if head[8:12] == b"qt  " else ("video/mp4", "mp4")
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "video/webm", "webm"
    return None


def sniff_photo(head: bytes) -> tuple[str, str] | None:
    if head[:3] == b"\xff\xd8\xff":
        return "image/jpeg", "jpg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp", "webp"
    return None


def _boxes(stream: BinaryIO, start: int, end: int):
    """(type, payload start, payload end) of the ISO-BMFF boxes between start and end."""
    position = start
    while position + 8 <= end:
        stream.seek(position)
        header = stream.read(8)
        if len(header) < 8:
            return
        size, kind = struct.unpack(">I4s", header)
        payload = position + 8
        if size == 1:
            large = stream.read(8)
            if len(large) < 8:
                return
            size = struct.unpack(">Q", large)[0]
            payload += 8
        elif size == 0:
            size = end - position
        if size < payload - position or position + size > end:
            return
        yield kind, payload, position + size
        position += size


def mp4_duration(stream: BinaryIO, size: int) -> float | None:
    """Seconds from the movie header (`moov`/`mvhd`), or None when the file has none."""
    for kind, start, end in _boxes(stream, 0, size):
        if kind != b"moov":
            continue
        for inner, inner_start, _ in _boxes(stream, start, end):
            if inner != b"mvhd":
                continue
            stream.seek(inner_start)
            version = stream.read(1)
            if version == b"\x01":
                stream.seek(inner_start + 4 + 16)
                timescale, duration = struct.unpack(">IQ", stream.read(12))
            else:
                stream.seek(inner_start + 4 + 8)
                timescale, duration = struct.unpack(">II", stream.read(8))
            return duration / timescale if timescale else None
    return None


def mb(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB" if n >= 1024 * 1024 else f"{n} bytes"


def inspect_video(stream: BinaryIO, size: int, *, max_seconds: int | None = None) -> MediaInfo:
    """The video's type and duration, or MediaRefused with the reason. `max_seconds`: the creator's own limit
    (creator_info's `max_video_post_duration_sec`) when it is lower than TikTok's API limit."""
    if size <= 0:
        raise MediaRefused("the file is empty")
    limit = settings.TIKTOK_POST_VIDEO_MAX_BYTES
    if size > limit:
        raise MediaRefused(f"the video is {mb(size)}; TikTok takes at most {mb(limit)}")
    stream.seek(0)
    found = sniff_video(stream.read(16))
    if found is None:
        raise MediaRefused("this is not an MP4, MOV or WebM video (TikTok takes only these)")
    content_type, extension = found
    duration = None
    if extension in ("mp4", "mov"):
        duration = mp4_duration(stream, size)
        if duration is None:
            raise MediaRefused("the video has no movie header (moov/mvhd): it is not a playable MP4 or MOV file")
        allowed = settings.TIKTOK_POST_VIDEO_MAX_SECONDS
        if max_seconds:
            allowed = min(allowed, max_seconds)
        if duration > allowed:
            raise MediaRefused(f"the video lasts {duration:.0f} s; this account may post at most {allowed} s")
    stream.seek(0)
    return MediaInfo(content_type, extension, duration)


def inspect_photo(stream: BinaryIO, size: int) -> MediaInfo:
    if size <= 0:
        raise MediaRefused("the photo is empty")
    limit = settings.TIKTOK_POST_PHOTO_MAX_BYTES
    if size > limit:
        raise MediaRefused(f"a photo is {mb(size)}; TikTok takes at most {mb(limit)} per photo")
    stream.seek(0)
    head = stream.read(16)
    stream.seek(0)
    found = sniff_photo(head)
    if found is None:
        if head[:8] == b"\x89PNG\r\n\x1a\n":
            raise MediaRefused("TikTok takes photos as JPEG or WebP only, not PNG")
        raise MediaRefused("this is not a JPEG or WebP photo (TikTok takes only these)")
    return MediaInfo(*found)


def chunk_plan(size: int, wanted: int | None = None) -> tuple[int, int]:
    """(chunk_size, total_chunk_count) for a video of `size` bytes, by §4.3: under the minimum chunk, one chunk of
    the whole file; else chunks of `wanted` (TIKTOK_UPLOAD_CHUNK_BYTES) held within 5-64 MB and 1000 chunks,
    `floor(size / chunk_size)` of them, the last absorbing the remainder (so it stays under 2 × 64 MB = 128 MB)."""
    low, high = settings.TIKTOK_UPLOAD_MIN_CHUNK_BYTES, settings.TIKTOK_UPLOAD_MAX_CHUNK_BYTES
    if size < low:
        return size, 1
    chunk = max(low, min(high, wanted or settings.TIKTOK_UPLOAD_CHUNK_BYTES))
    chunk = min(max(chunk, -(-size // 1000)), size)
    return chunk, size // chunk


def chunk_range(index: int, size: int, chunk_size: int, count: int) -> tuple[int, int]:
    """The first and last byte (inclusive) of chunk `index` (0-based)."""
    start = index * chunk_size
    end = size - 1 if index == count - 1 else start + chunk_size - 1
    return start, end
