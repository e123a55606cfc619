"""The TikTok sandbox's posts and account figures (../shared/tiktok/README.md §6.1, §4.5, §9): each business
account's videos, whose views, likes, comments and shares grow with the sandbox's clock (`advance_clock_s` moves
it a day ahead), followers that grow too, the video list with cursor paging, and the webhooks of a post published
or removed and of an authorization removed.

  GET  /open_api/v1.3/business/video/list/?business_id=&fields=["item_id",...]&max_count=1..20&cursor=<ms>
       (scope video.list) → data {"videos": [{"item_id", "create_time" (s), "thumbnail_url", "share_url",
       "caption", "media_type", "video_views", "likes", "comments", "shares", …the fields asked}], "cursor": <ms of
       the last one>, "has_more"}. Newest first; the next page holds what was posted before `cursor`. `item_id`
       must be asked for with other fields (40002). `short_pages` makes pages short while `has_more` stays true,
       as TikTok may. `accounts_api_qpm` (0: off) answers 40100 past that many calls per account and minute (§9).
  GET  …/business/get/ now carries `followers_count`, `following_count`, `total_likes`, `videos_count`.
  POST /sandbox/video          {"account", "caption"?, "video_id"?, "views"?, …} → the new post; sends
                               `post.publish.publicly_available` {"publish_id", "publish_type", "post_id"}
  POST /sandbox/video/remove   {"account", "video_id"} → `post.publish.no_longer_publicaly_available`
  POST /sandbox/revoke_authorization  {"account"} → the account's grants end (tokens 40105 / 40107) and
                               `authorization.removed` {"reason": 1} goes to every app it had authorized
  POST /sandbox/followers      {"account", "followers"} sets the follower count now.
Post and authorization webhooks go to the app's VIDEO callback, else its DIRECT_MESSAGE one (one URL per app).
`seed_videos` (switch) gives every account added that many posts, one hour apart, the newest an hour old."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass

from tiktok_channel.direct.sandbox import payloads

PAGE_MAX = 20
POST_EVENT_TYPES = ("VIDEO", "DIRECT_MESSAGE")
PUBLISHED, REMOVED, AUTH_REMOVED = (
    "post.publish.publicly_available",
    "post.publish.no_longer_publicaly_available",
    "authorization.removed",
)
VIDEO_FIELDS = (
    "item_id",
    "media_type",
    "create_time",
    "thumbnail_url",
    "share_url",
    "embed_url",
    "caption",
    "video_duration",
    "video_views",
    "likes",
    "comments",
    "shares",
    "favorites",
    "reach",
)
CAPTIONS = (
    "New drop: the blue one is back 💙",
    "How we pack your order, start to finish",
    "3 ways to wear it",
    "Behind the scenes at the studio",
    "Customer question of the week",
    "Restock day!",
)


def _api_error(code: int, reason: str) -> Exception:
    from tiktok_channel.direct.sandbox.state import ApiError  # state imports this module

    return ApiError(code, reason)


@dataclass
class SandboxVideo:
    video_id: str
    open_id: str
    caption: str
    created_ms: int  # on the sandbox's clock
    views: int
    likes: int
    comments: int
    shares: int
    per_hour: tuple[float, float, float, float]  # growth of views, likes, comments, shares
    removed: bool = False

    def figures(self, now_s: float) -> dict[str, int]:
        hours = max(0.0, now_s - self.created_ms / 1000) / 3600
        views, likes, comments, shares = (
            int(base + rate * hours)
            for base, rate in zip((self.views, self.likes, self.comments, self.shares), self.per_hour, strict=True)
        )
        return {"video_views": views, "likes": likes, "comments": comments, "shares": shares}


@dataclass
class Followers:
    base: int
    per_hour: float
    since_s: float

    def at(self, now_s: float) -> int:
        return int(self.base + self.per_hour * max(0.0, now_s - self.since_s) / 3600)


class VideoLibrary:
    """Per account: its posts and followers. Guarded by the sandbox's lock."""

    def __init__(self, sandbox) -> None:
        self.sandbox = sandbox
        self.videos: dict[str, SandboxVideo] = {}
        self.followers: dict[str, Followers] = {}
        self.calls: dict[str, list[float]] = {}  # open_id -> times of Accounts API calls (the qpm switch)

    # --- setup ---------------------------------------------------------------------------------------------

    def account_added(self, open_id: str) -> None:
        with self.sandbox.lock:
            now = self.sandbox.now()
            self.followers.setdefault(open_id, Followers(base=1200, per_hour=6.0, since_s=now))
            count = self.sandbox.behaviour.seed_videos
            if count and not any(v.open_id == open_id for v in self.videos.values()):
                for index in range(count):
                    self._new(open_id, created_ms=int((now - 3600 * (index + 1)) * 1000), seed=index)

    def _new(self, open_id: str, *, created_ms: int, seed: int | None = None, **given) -> SandboxVideo:
        chance = random.Random(seed if seed is not None else time.time_ns())  # noqa: S311 - demo figures
        video_id = str(given.get("video_id") or payloads.numeric_id())
        while any(v.created_ms == created_ms for v in self.videos.values() if v.open_id == open_id):
            created_ms += 1  # distinct times: the cursor (ms) never splits two posts
        video = SandboxVideo(
            video_id=video_id,
            open_id=open_id,
            caption=str(given["caption"] if "caption" in given else CAPTIONS[chance.randrange(len(CAPTIONS))]),
            created_ms=created_ms,
            views=int(given.get("views", chance.randrange(100, 5000))),
            likes=int(given.get("likes", chance.randrange(10, 400))),
            comments=int(given.get("comments", chance.randrange(0, 60))),
            shares=int(given.get("shares", chance.randrange(0, 30))),
            per_hour=(chance.uniform(20, 120), chance.uniform(2, 12), chance.uniform(0.1, 2), chance.uniform(0.1, 1.5)),
        )
        self.videos[video_id] = video
        return video

    def get(self, video_id: str) -> SandboxVideo | None:
        return self.videos.get(video_id)

    def ensure(self, open_id: str, video_id: str, caption: str = "") -> SandboxVideo:
        """The video, created with no figures when a comment or the demo names one not seen yet; a caption given
        replaces the old one (lock held)."""
        video = self.videos.get(video_id)
        if video is None:
            zero = {"views": 0, "likes": 0, "comments": 0, "shares": 0}
            video = self._new(
                open_id, created_ms=int(self.sandbox.now() * 1000), video_id=video_id, caption=caption, **zero
            )
        elif caption:
            video.caption = caption
        return video

    # --- the Accounts API ----------------------------------------------------------------------------------

    def throttle(self, open_id: str) -> None:
        """§9: 40 calls per minute per account (the switch `accounts_api_qpm`; 0 is off) → 40100."""
        with self.sandbox.lock:
            limit = self.sandbox.behaviour.accounts_api_qpm
            if not limit:
                return
            now = time.monotonic()
            recent = [t for t in self.calls.get(open_id, []) if now - t < 60]
            if len(recent) >= limit:
                self.calls[open_id] = recent
                self.sandbox.count("accounts_api_throttled")
                raise _api_error(payloads.TOO_FREQUENT, "request too frequent (accounts_api_qpm)")
            self.calls[open_id] = [*recent, now]

    def account_figures(self, open_id: str) -> dict[str, int]:
        with self.sandbox.lock:
            now = self.sandbox.now()
            followers = self.followers.get(open_id)
            mine = [v for v in self.videos.values() if v.open_id == open_id and not v.removed]
            return {
                "followers_count": followers.at(now) if followers else 0,
                "following_count": 12,
                "total_likes": sum(v.figures(now)["likes"] for v in mine),
                "videos_count": len(mine),
            }

    def video_list(self, open_id: str, query: dict[str, str], fields: list[str]) -> dict:
        unknown = [f for f in fields if f not in VIDEO_FIELDS]
        if unknown:
            raise _api_error(payloads.PARAM_ERROR, f"unknown fields: {', '.join(unknown)}")
        if len(fields) > 1 and "item_id" not in fields:
            raise _api_error(payloads.PARAM_ERROR, "item_id must be among the fields when several are asked")
        try:
            max_count = int(query.get("max_count") or 10)
            cursor = int(query["cursor"]) if query.get("cursor") else None
            filters = json.loads(query.get("filters") or "{}")
        except ValueError:
            raise _api_error(payloads.PARAM_ERROR, "max_count and cursor are numbers, filters JSON") from None
        wanted = filters.get("video_ids") if isinstance(filters, dict) else None
        if wanted is not None and not (isinstance(wanted, list) and all(isinstance(v, str) for v in wanted)):
            raise _api_error(payloads.PARAM_ERROR, "filters.video_ids is a list of strings")
        if not 1 <= max_count <= PAGE_MAX:
            raise _api_error(payloads.PARAM_ERROR, f"max_count must be 1-{PAGE_MAX}")
        self.throttle(open_id)
        with self.sandbox.lock:
            now = self.sandbox.now()
            cursor = cursor if cursor is not None else int(now * 1000) + 1
            older = sorted(
                (
                    v
                    for v in self.videos.values()
                    if v.open_id == open_id
                    and not v.removed
                    and v.created_ms < cursor
                    and (wanted is None or v.video_id in wanted)
                ),
                key=lambda v: -v.created_ms,
            )
            size = max(1, max_count - 3) if self.sandbox.behaviour.short_pages else max_count
            page = older[:size]
            self.sandbox.count("video_list_pages")
            items = [self._public(v, now, fields) for v in page]
        return {
            "videos": items,
            "cursor": page[-1].created_ms if page else cursor,
            "has_more": len(older) > len(page),
        }

    def _public(self, video: SandboxVideo, now: float, fields: list[str]) -> dict:
        username = self.sandbox.accounts[video.open_id].username
        values = {
            "item_id": video.video_id,
            "media_type": "VIDEO",
            "create_time": video.created_ms // 1000,
            "thumbnail_url": f"{self.sandbox.cover_base_url}/sandbox/cover/{video.video_id}.svg",
            "share_url": f"https://www.tiktok.com/@{username}/video/{video.video_id}",
            "embed_url": f"https://www.tiktok.com/embed/{video.video_id}",
            "caption": video.caption,
            "video_duration": 15.0,
            "favorites": 0,
            "reach": 0,
            **video.figures(now),
        }
        return {name: values[name] for name in (fields or ["item_id"])}

    # --- control: post, remove, revoke (each sends its webhook) -------------------------------------------

    def post(self, options: dict) -> dict:
        account = self.sandbox._account_option(options)
        for name in ("views", "likes", "comments", "shares"):
            if name in options and (isinstance(options[name], bool) or not isinstance(options[name], int)):
                raise ValueError(f"{name} must be an integer")
        if "caption" in options and not isinstance(options["caption"], str):
            raise ValueError("caption must be a string")
        if "video_id" in options and not (isinstance(options["video_id"], str) and options["video_id"].isdigit()):
            raise ValueError("video_id must be a string of digits")
        with self.sandbox.lock:
            if options.get("video_id") in self.videos:
                raise ValueError(f"video {options['video_id']} exists already")
            given = {
                k: options[k] for k in ("video_id", "caption", "views", "likes", "comments", "shares") if k in options
            }
            video = self._new(account.open_id, created_ms=int(self.sandbox.now() * 1000), **given)
        self.sandbox.count("videos_posted")
        content = {
            "publish_id": f"v_pub_url~v2.{video.video_id}",
            "publish_type": "DIRECT_POST",
            "post_id": video.video_id,
        }
        deliveries = self._post(PUBLISHED, account.open_id, content)
        return {"video_id": video.video_id, "deliveries": deliveries}

    def remove(self, options: dict) -> dict:
        account = self.sandbox._account_option(options)
        with self.sandbox.lock:
            video = self.videos.get(str(options.get("video_id") or ""))
            if video is None or video.open_id != account.open_id:
                raise ValueError(f"no video {options.get('video_id')!r} of account {account.open_id}")
            video.removed = True
        self.sandbox.count("videos_removed")
        content = {
            "publish_id": f"v_pub_url~v2.{video.video_id}",
            "publish_type": "DIRECT_POST",
            "post_id": video.video_id,
        }
        return {"video_id": video.video_id, "deliveries": self._post(REMOVED, account.open_id, content)}

    def revoke_authorization(self, options: dict) -> dict:
        """The user removes the apps' access in TikTok: every grant of the account ends, then each app is told."""
        account = self.sandbox._account_option(options)
        apps = self._apps(account.open_id)
        with self.sandbox.lock:
            for token in self.sandbox.tokens.values():
                if token.grant.open_id == account.open_id:
                    token.grant.revoked = True
                    token.status = "revoked"
        self.sandbox.count("authorizations_removed")
        deliveries = [
            self.sandbox._attempt(
                AUTH_REMOVED, app, self._body(app, AUTH_REMOVED, account.open_id, {"reason": 1}), 1, kind
            )
            for app, kind in apps
        ]
        return {"account": account.open_id, "deliveries": deliveries}

    def set_followers(self, options: dict) -> dict:
        account = self.sandbox._account_option(options)
        value = options.get("followers")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError("followers must be a non-negative integer")
        with self.sandbox.lock:
            followers = self.followers.setdefault(account.open_id, Followers(0, 0.0, self.sandbox.now()))
            followers.base, followers.since_s = value, self.sandbox.now()
        return {"account": account.open_id, "followers": value}

    def _apps(self, open_id: str) -> list[tuple]:
        """The apps the account has authorized, each with the callback kind its post webhooks go to."""
        with self.sandbox.lock:
            keys = {
                t.grant.client_key
                for t in self.sandbox.tokens.values()
                if t.grant.open_id == open_id and not t.grant.revoked
            }
            found = []
            for key in sorted(keys):
                app = self.sandbox.apps.get(key)
                kind = next((k for k in POST_EVENT_TYPES if app and k in app.webhooks), None)
                if kind:
                    found.append((app, kind))
        return found

    def _body(self, app, event: str, open_id: str, content: dict) -> bytes:
        payload = payloads.webhook_envelope(
            client_key=app.client_key,
            event=event,
            business_id=open_id,
            content=content,
            create_time_ms=self.sandbox.behaviour.create_time_ms,
        )
        return json.dumps(payload, ensure_ascii=False).encode()

    def _post(self, event: str, open_id: str, content: dict) -> list[dict]:
        apps = self._apps(open_id)
        if not apps:
            self.sandbox.count(f"webhooks_{event}_undeliverable")
        return [
            self.sandbox._attempt(event, app, self._body(app, event, open_id, content), 1, kind) for app, kind in apps
        ]

    def state(self) -> list[dict]:
        with self.sandbox.lock:
            now = self.sandbox.now()
            return [
                {
                    "video_id": v.video_id,
                    "account": v.open_id,
                    "caption": v.caption,
                    "removed": v.removed,
                    **v.figures(now),
                }
                for v in sorted(self.videos.values(), key=lambda v: -v.created_ms)
            ]
