"""TikTok's webhooks about posts and the authorization, read and applied for the direct provider's ledger
processor (`tiktok_channel/direct/webhooks.py` hands them here). They arrive at the same signed door as messages.

Event names are settings, as TikTok documents them for its developer portal (§4.5) and not for the Business API:
- TIKTOK_DIRECT_POST_PUBLISHED_EVENTS (`post.publish.publicly_available`, content `post_id`) → the post is public;
- TIKTOK_DIRECT_POST_REMOVED_EVENTS (`post.publish.no_longer_publicaly_available`, `post_id`) → marked removed;
- TIKTOK_DIRECT_AUTHORIZATION_REMOVED_EVENTS (`authorization.removed`, content `reason`) → the connection needs a
  new consent (banner, email, replies held), as when TikTok refuses a token refresh.
The post id may come as a JSON number: kept as a string (`video_id` or `item_id` are accepted in its place)."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings

from tiktok_channel.direct.engagement import services
from tiktok_channel.direct.models import TikTokConnection

POST_ID_KEYS = ("post_id", "video_id", "item_id")
# TikTok's reasons for authorization.removed on its developer platform (a guess for Business API accounts).
AUTH_REMOVED_REASONS = {
    0: "unknown reason",
    1: "the user removed the app's access in TikTok",
    2: "the TikTok account was deleted",
    3: "the account's age changed",
    4: "the TikTok account was banned",
    5: "the developer revoked the authorization",
}


def kind_of(event: str) -> str | None:
    if event in settings.TIKTOK_DIRECT_POST_PUBLISHED_EVENTS:
        return "published"
    if event in settings.TIKTOK_DIRECT_POST_REMOVED_EVENTS:
        return "removed"
    if event in settings.TIKTOK_DIRECT_AUTHORIZATION_REMOVED_EVENTS:
        return "authorization_removed"
    return None


def post_id(content: dict) -> str:
    """The post's id (ValueError when absent or not an id)."""
    for key in POST_ID_KEYS:
        value = content.get(key)
        if isinstance(value, list) and len(value) == 1:  # publicaly_available_post_id is a list in §4.5
            value = value[0]
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip().isdigit():
            raise ValueError(f"content.{key} must be a post id (digits)")
        if len(str(value)) > 64:
            raise ValueError(f"content.{key} is longer than 64 characters")
        return str(value).strip()
    raise ValueError("content.post_id is required")


def check(event: str, content: dict) -> None:
    """Raise ValueError (the door's 400 reason) when an event of ours lacks what applying it needs."""
    kind = kind_of(event)
    if kind in ("published", "removed"):
        post_id(content)
    elif kind == "authorization_removed":
        reason = content.get("reason")
        if reason is not None and (isinstance(reason, bool) or not isinstance(reason, (int, str))):
            raise ValueError("content.reason must be a number")


def apply(connection: TikTokConnection, event: str, content: dict, at: datetime) -> str:
    """Apply one event; returns the ledger's count key."""
    kind = kind_of(event)
    if kind == "published":
        changed = services.video_published(connection, video_id=post_id(content), at=at)
        if changed:
            # The event carries only the id: a sync brings the caption, cover and figures (§6.4's advice to treat
            # an event as a trigger and reconcile by polling).
            from tiktok_channel.direct.engagement import tasks  # tasks imports the services

            services.sync_requested(connection.pk)
            tasks.schedule_sync(connection.pk)
        return "post_published" if changed else "post_published_already"
    if kind == "removed":
        changed = services.video_removed(connection, video_id=post_id(content), at=at)
        return "post_removed" if changed else "post_removed_already"
    reason = content.get("reason")
    text = AUTH_REMOVED_REASONS.get(reason if isinstance(reason, int) else -1, f"reason {reason!r}")
    changed = services.authorization_removed(
        connection, reason=f"TikTok says the authorization was removed ({text}): connect the account again"
    )
    return "authorization_removed" if changed else "authorization_removed_already"
