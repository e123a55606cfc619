"""The Accounts API calls of the engagement sync (../shared/tiktok/README.md §6.1) and the safe reading of their
answers: a figure TikTok sends as a number, a numeric string, or not at all never breaks a sync."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings

from tiktok_channel.direct import client
from tiktok_channel.direct.models import TikTokConnection

# `item_id` must be among the fields whenever several are asked for (§6.1).
VIDEO_FIELDS = [
    "item_id",
    "media_type",
    "create_time",
    "thumbnail_url",
    "share_url",
    "caption",
    "video_views",
    "likes",
    "comments",
    "shares",
]
ACCOUNT_FIELDS = ["username", "display_name", "followers_count", "following_count", "total_likes", "videos_count"]
CAPTION_MAX_CHARS = 5000
URL_MAX_CHARS = 2048


def count(value) -> int | None:
    """A non-negative figure, or None when TikTok sent none we can read (the previous figure then stays)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if value >= 0 and value == value and value != float("inf") else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _text(value, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _url(value) -> str:
    if isinstance(value, str) and value.startswith(("https://", "http://")) and len(value) <= URL_MAX_CHARS:
        return value
    return ""


def posted_at(value) -> datetime | None:
    """TikTok's `create_time` (Unix seconds; milliseconds detected by magnitude)."""
    seconds = count(value)
    if not seconds:
        return None
    if seconds > 10**11:
        seconds //= 1000
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


@dataclass(frozen=True)
class VideoFigures:
    video_id: str
    media_type: str
    caption: str
    cover_url: str
    share_url: str
    posted_at: datetime | None
    views: int | None
    likes: int | None
    comments: int | None
    shares: int | None


def video_of(item) -> VideoFigures | None:
    """One entry of `data.videos[]`; None when it has no usable `item_id` (skipped, counted by the caller)."""
    if not isinstance(item, dict):
        return None
    video_id = item.get("item_id")
    if isinstance(video_id, bool) or not isinstance(video_id, (str, int)) or not str(video_id).strip():
        return None
    video_id = str(video_id).strip()
    if len(video_id) > 64:
        return None
    media_type = item.get("media_type") if item.get("media_type") in ("VIDEO", "PHOTO") else "VIDEO"
    return VideoFigures(
        video_id=video_id,
        media_type=media_type,
        caption=_text(item.get("caption"), CAPTION_MAX_CHARS),
        cover_url=_url(item.get("thumbnail_url")),
        share_url=_url(item.get("share_url")),
        posted_at=posted_at(item.get("create_time")),
        views=count(item.get("video_views")),
        likes=count(item.get("likes")),
        comments=count(item.get("comments")),
        shares=count(item.get("shares")),
    )


@dataclass(frozen=True)
class VideoPage:
    videos: list[VideoFigures]
    skipped: int
    has_more: bool
    cursor: int | None


def video_page(connection: TikTokConnection, *, access_token: str, cursor: int | None) -> VideoPage:
    """One page (up to TIKTOK_ENGAGEMENT_PAGE_SIZE, TikTok's maximum 20) of the account's posts, newest first.
    A page may be short while `has_more` is true (§6.1): the caller follows the cursor, not the count."""
    params = {
        "business_id": connection.account_id,
        "fields": json.dumps(VIDEO_FIELDS, separators=(",", ":")),
        "max_count": str(settings.TIKTOK_ENGAGEMENT_PAGE_SIZE),
    }
    if cursor is not None:
        params["cursor"] = str(cursor)
    data = client.call(
        connection.app,
        "GET",
        settings.TIKTOK_ENGAGEMENT_VIDEO_LIST_PATH,
        access_token=access_token,
        params=params,
    )
    items = data.get("videos") if isinstance(data.get("videos"), list) else []
    videos = [video for video in (video_of(item) for item in items) if video is not None]
    return VideoPage(
        videos=videos,
        skipped=len(items) - len(videos),
        has_more=data.get("has_more") is True,
        cursor=count(data.get("cursor")),
    )


@dataclass(frozen=True)
class AccountFigures:
    followers: int | None
    following: int | None
    total_likes: int | None
    videos_count: int | None


def account_figures(connection: TikTokConnection, *, access_token: str) -> AccountFigures:
    data = client.call(
        connection.app,
        "GET",
        "/business/get/",
        access_token=access_token,
        params={"business_id": connection.account_id, "fields": json.dumps(ACCOUNT_FIELDS, separators=(",", ":"))},
    )
    return AccountFigures(
        followers=count(data.get("followers_count")),
        following=count(data.get("following_count")),
        total_likes=count(data.get("total_likes")),
        videos_count=count(data.get("videos_count")),
    )
