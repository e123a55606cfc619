"""Reads of the Posts page and its API: which connections and videos a staff user sees (those of the inboxes they
see: every inbox for superusers), each video's growth, and the daily series of the charts."""

from __future__ import annotations

from datetime import date, timedelta

from django.db.models import F, QuerySet
from django.utils import timezone

from inbox.selectors import inbox_ids_visible_to
from tiktok_channel.direct.engagement.models import AccountSnapshot, Video, VideoSnapshot
from tiktok_channel.direct.engagement.services import FIGURES, utc_day
from tiktok_channel.direct.models import TikTokConnection

SERIES_DAYS = 90
VIDEOS_MAX = 500


def today() -> date:
    return utc_day(timezone.now())


def connections_visible_to(user) -> QuerySet[TikTokConnection]:
    """Connected accounts and those waiting for a reconnect (a disconnected one is gone from the page; its posts
    stay in the database)."""
    return (
        TikTokConnection.objects.filter(app__inbox_id__in=inbox_ids_visible_to(user))
        .exclude(state=TikTokConnection.State.DISCONNECTED)
        .select_related("app", "app__inbox", "engagement")
        .order_by("display_name", "account_id")
    )


def videos_visible_to(user, *, connection_id: int | None = None) -> QuerySet[Video]:
    rows = Video.objects.filter(connection__app__inbox_id__in=inbox_ids_visible_to(user)).exclude(
        connection__state=TikTokConnection.State.DISCONNECTED
    )
    if connection_id is not None:
        rows = rows.filter(connection_id=connection_id)
    return rows.order_by(F("posted_at").desc(nulls_last=True), "-pk")


def growth(videos: list[Video], *, on: date | None = None) -> dict[int, dict]:
    """Per video: its figures now minus those of the latest snapshot on or before yesterday ("day") and on or
    before seven days ago ("week"), with the day compared to (`since`); None when there is no such snapshot."""
    on = on or today()
    targets = {"day": on - timedelta(days=1), "week": on - timedelta(days=7)}
    found: dict[int, dict[str, VideoSnapshot]] = {video.pk: {} for video in videos}
    snapshots = VideoSnapshot.objects.filter(
        video__in=[video.pk for video in videos], day__lte=targets["day"], day__gte=on - timedelta(days=SERIES_DAYS)
    ).order_by("day")
    for snapshot in snapshots:
        for key, target in targets.items():
            if snapshot.day <= target:
                found[snapshot.video_id][key] = snapshot  # ordered by day: the latest wins
    result = {}
    for video in videos:
        result[video.pk] = {
            key: (
                {"since": snap.day, **{name: getattr(video, name) - getattr(snap, name) for name in FIGURES}}
                if (snap := found[video.pk].get(key))
                else None
            )
            for key in targets
        }
    return result


def video_series(video: Video, *, days: int = SERIES_DAYS) -> list[dict]:
    since = today() - timedelta(days=days - 1)
    return list(
        video.snapshots.filter(day__gte=since).order_by("day").values("day", *FIGURES),
    )


def account_series(connection: TikTokConnection, *, days: int = SERIES_DAYS) -> list[dict]:
    since = today() - timedelta(days=days - 1)
    return list(
        AccountSnapshot.objects.filter(connection=connection, day__gte=since)
        .order_by("day")
        .values("day", "followers", "total_likes", "videos_count")
    )


def followers_growth(series: list[dict], followers: int | None, *, on: date | None = None) -> dict:
    """Followers now minus the latest snapshot on or before yesterday / seven days ago."""
    on = on or today()
    out = {}
    for key, target in (("day", on - timedelta(days=1)), ("week", on - timedelta(days=7))):
        earlier = [row for row in series if row["day"] <= target and row["followers"] is not None]
        out[key] = (
            {"since": earlier[-1]["day"], "followers": followers - earlier[-1]["followers"]}
            if earlier and followers is not None
            else None
        )
    return out
