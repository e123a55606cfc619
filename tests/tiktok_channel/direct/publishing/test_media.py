"""What a file is and whether TikTok would take it, decided from its bytes; the chunk plan of §4.3."""

from __future__ import annotations

import io

import pytest

from tests.tiktok_channel.direct.publishing.conftest import JPEG, MB, PNG, mp4_bytes
from tiktok_channel.direct.publishing import media


def test_an_mp4_is_recognised_with_its_duration_from_the_movie_header():
    data = mp4_bytes(64 * 1024, seconds=42.5)
    info = media.inspect_video(io.BytesIO(data), len(data))
    assert (info.content_type, info.extension) == ("video/mp4", "mp4")
    assert info.duration_seconds == pytest.approx(42.5)


def test_a_quicktime_brand_is_a_mov():
    data = mp4_bytes(8 * 1024, brand=b"qt  ")
    assert media.inspect_video(io.BytesIO(data), len(data)).content_type == "video/quicktime"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"hello, this is text and not a video at all", "not an MP4, MOV or WebM"),
        (b"", "empty"),
        (b"\x00\x00\x00\x14ftypisom\x00\x00\x02\x00isom" + bytes(100), "no movie header"),
    ],
)
def test_what_is_not_a_video_is_refused_with_the_reason(data, reason):
    with pytest.raises(media.MediaRefused, match=reason):
        media.inspect_video(io.BytesIO(data), len(data))


def test_a_video_longer_than_the_api_or_the_creator_allows_is_refused(settings):
    data = mp4_bytes(4096, seconds=601)
    with pytest.raises(media.MediaRefused, match="lasts 601 s; this account may post at most 600 s"):
        media.inspect_video(io.BytesIO(data), len(data))
    short = mp4_bytes(4096, seconds=61)
    with pytest.raises(media.MediaRefused, match="at most 60 s"):
        media.inspect_video(io.BytesIO(short), len(short), max_seconds=60)


def test_a_video_over_the_size_limit_is_refused_before_it_is_read(settings):
    settings.TIKTOK_POST_VIDEO_MAX_BYTES = 1000
    data = mp4_bytes(2000)
    with pytest.raises(media.MediaRefused, match="TikTok takes at most"):
        media.inspect_video(io.BytesIO(data), len(data))


def test_photos_are_jpeg_or_webp_and_png_is_refused_by_name():
    assert media.inspect_photo(io.BytesIO(JPEG), len(JPEG)).content_type == "image/jpeg"
    webp = b"RIFF\x00\x00\x00\x00WEBPVP8 " + bytes(20)
    assert media.inspect_photo(io.BytesIO(webp), len(webp)).extension == "webp"
    with pytest.raises(media.MediaRefused, match="not PNG"):
        media.inspect_photo(io.BytesIO(PNG), len(PNG))


def test_chunk_plan_follows_tiktoks_rules(settings):
    settings.TIKTOK_UPLOAD_CHUNK_BYTES = 10_000_000
    # §4.3's example: 50,000,123 bytes in chunks of 10,000,000 → 5 chunks, the last with the remainder.
    assert media.chunk_plan(50_000_123) == (10_000_000, 5)
    assert media.chunk_range(4, 50_000_123, 10_000_000, 5) == (40_000_000, 50_000_122)
    # Under 5 MB: one chunk of the whole file.
    assert media.chunk_plan(3 * MB) == (3 * MB, 1)
    # A chunk size below the minimum is raised to it; above 64 MB lowered to it.
    assert media.chunk_plan(12 * MB, wanted=1 * MB) == (5 * MB, 2)
    assert media.chunk_plan(1000 * MB, wanted=500 * MB) == (64_000_000, 16)
    # Every plan: count = floor(size / chunk), within 1-1000, the last chunk at most 128 MB.
    for size in (5 * MB, 12 * MB + 7, 999 * MB, 4 * 1024 * MB):
        chunk, count = media.chunk_plan(size)
        assert 5 * MB <= chunk <= 64_000_000 and count == size // chunk and 1 <= count <= 1000
        first, last = media.chunk_range(count - 1, size, chunk, count)
        assert last == size - 1 and last - first + 1 <= 128_000_000
