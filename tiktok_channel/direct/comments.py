"""Comments on a connected account's videos (../shared/tiktok/README.md §6.1, §6.2, §6.4), beside the webhook:

- **whose thread**: a reply by another user to a comment we know goes into the thread of that comment's author
  (the contact), marked with its writer (`other_author`); a reply to an unknown comment opens its writer's own;
- **the periodic sync** (`sync_connection`, Celery beat): the account's recent videos (cover, caption, link cached
  on their comment conversations) and their comments with replies, newest first, cursor paging, a bounded number
  of calls per run (the Accounts API allows 40 per minute per account); stored through the same
  `messages_receive` as the webhook, so a comment seen by both is one message, whichever came first;
- hidden comments (`status` HIDDEN) are stored hidden, or marked hidden if we had them visible.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from inbox.events import InboundMessage
from inbox.models import Conversation, Message
from inbox.services import conversation_subjects_update, messages_public_state_apply, messages_receive
from tiktok_channel.direct import client, tokens
from tiktok_channel.direct.client import TikTokError
from tiktok_channel.direct.models import DIRECT_PROVIDER, TikTokConnection
from tiktok_channel.models import CHANNEL

logger = logging.getLogger(__name__)

TEXT_MAX_CHARS = 2200
NAME_MAX_CHARS = 200


def video_url(video_id: str, username: str = "") -> str:
    """A link to a TikTok video (the handle is optional for TikTok's web player)."""
    if username:
        return f"https://www.tiktok.com/@{username}/video/{video_id}"
    return f"https://www.tiktok.com/video/{video_id}"


def _http_url(value) -> str:
    return value if isinstance(value, str) and value.startswith(("https://", "http://")) else ""


def video_subject(video: dict, username: str = "") -> dict:
    """The cached description of a video (§6.1's fields) for its comment conversations' banner."""
    video_id = str(video.get("item_id") or "")
    subject = {
        "url": _http_url(video.get("share_url")) or video_url(video_id, username),
        "cover_url": _http_url(video.get("thumbnail_url")),
        "caption": str(video.get("caption") or "")[:TEXT_MAX_CHARS],
    }
    if isinstance(video.get("create_time"), int):
        subject["posted_at"] = datetime.fromtimestamp(video["create_time"], tz=UTC).isoformat()
    return subject


def thread_owners(business_id: str, parent_ids: set[str]) -> dict[str, str]:
    """The commenter whose thread each known comment id is in (our own replies included: their TikTok id is kept
    in `provider_status.messageId`)."""
    if not parent_ids:
        return {}
    rows = (
        Message.objects.filter(
            conversation__kind=Conversation.Kind.COMMENT,
            conversation__contact__channel=CHANNEL,
            conversation__contact__endpoint_id=business_id,
        )
        .filter(Q(provider_message_id__in=parent_ids) | Q(provider_status__messageId__in=parent_ids))
        .values_list("provider_message_id", "provider_status__messageId", "conversation__contact__channel_user_id")
    )
    owners = {}
    for own_id, tiktok_id, owner in rows:
        for key in (own_id, tiktok_id):
            if key in parent_ids:
                owners[str(key)] = owner
    return owners


def place_in_threads(business_id: str, events: list[InboundMessage], known: dict[str, str] | None = None):
    """Move replies into the thread of the comment they answer (see the module's docstring)."""
    known = dict(known or {})
    parents = {e.subject.get("parent_comment_id", "") for e in events} - {""} - set(known)
    known.update(thread_owners(business_id, parents))
    placed = []
    for event in events:
        parent = event.subject.get("parent_comment_id", "")
        owner = known.get(parent)
        if parent and owner and owner != event.channel_user_id and owner != business_id:
            writer = event.payload.get("display_name") or event.payload.get("username") or event.channel_user_id
            event = replace(event, channel_user_id=owner, other_author=str(writer)[:NAME_MAX_CHARS])
        placed.append(event)
    return placed


def comment_inbound(comment: dict, *, business_id: str, username: str, parent_id: str = "") -> InboundMessage | None:
    """A comment of `/business/comment/list/` as an inbound message of its commenter's comment conversation, or
    None for the business's own comments and malformed items."""
    comment_id, video_id = str(comment.get("comment_id") or ""), str(comment.get("video_id") or "")
    user = str(comment.get("unique_identifier") or comment.get("user_id") or "")
    if not (comment_id.isdigit() and video_id.isdigit() and user) or comment.get("owner") or user == business_id:
        return None
    parent = parent_id or str(comment.get("parent_comment_id") or "")
    created = comment.get("create_time")
    sent_at = datetime.fromtimestamp(created, tz=UTC) if isinstance(created, int) else timezone.now()
    payload = {k: comment.get(k) for k in ("comment_id", "video_id", "username", "display_name", "status")}
    return InboundMessage(
        channel=CHANNEL,
        endpoint_id=business_id,
        channel_user_id=user,
        provider_message_id=comment_id,
        provider_conversation_id="",
        sent_at=sent_at,
        type=Message.Type.TEXT,
        text=str(comment.get("text") or "")[:TEXT_MAX_CHARS],
        provider=DIRECT_PROVIDER,
        payload=payload,
        conversation_kind=Conversation.Kind.COMMENT,
        subject_id=video_id,
        subject={"url": video_url(video_id, username), "parent_comment_id": "" if parent in ("", "0") else parent},
        public_state=Message.PublicState.HIDDEN if comment.get("status") == "HIDDEN" else Message.PublicState.VISIBLE,
    )


@dataclass
class SyncReport:
    videos: int = 0
    calls: int = 0
    comments_seen: int = 0
    stored: int = 0
    hidden: int = 0
    stopped: str = ""  # why the run stopped early: "throttled", "call_budget", an error
    problems: list[str] = field(default_factory=list)


class _Budget(Exception):
    pass


def sync_connection(connection_id: int, *, video_ids: list[str] | None = None) -> SyncReport:
    """Fetch the account's recent videos (or `video_ids`) and their comments; store what the webhook missed."""
    report = SyncReport()
    connection = TikTokConnection.objects.select_related("app").filter(pk=connection_id).first()
    if connection is None or connection.state != TikTokConnection.State.CONNECTED or not connection.app.active:
        report.stopped = "not_connected"
        return report
    token = tokens.usable_access_token(connection)
    if token is None:
        report.stopped = "no_token"
        return report
    business_id, username = connection.account_id, connection.username

    def call(fn, **kwargs):
        if report.calls >= settings.TIKTOK_COMMENT_SYNC_MAX_CALLS:
            raise _Budget
        report.calls += 1
        return fn(connection.app, access_token=token, business_id=business_id, **kwargs)

    try:
        if "video.list" in connection.scopes.split(","):
            videos = _recent_videos(call, video_ids)
            subjects = {str(v["item_id"]): video_subject(v, username) for v in videos if v.get("item_id")}
            conversation_subjects_update(channel=CHANNEL, endpoint_id=business_id, subjects=subjects)
        else:  # without video.list: the videos we already have comments on
            subjects = {video_id: {} for video_id in video_ids or _commented_videos(business_id)}
        report.videos = len(subjects)
        for video_id in subjects:
            _sync_video(call, connection, video_id, subjects[video_id], report)
    except _Budget:
        report.stopped = "call_budget"
    except TikTokError as exc:
        report.stopped = "throttled" if exc.kind == client.THROTTLED else f"error: {exc}"[:200]
        if exc.kind not in (client.THROTTLED, client.RETRYABLE):
            logger.warning("comment sync of TikTok account %s stopped: %s", connection, exc)
    return report


def _commented_videos(business_id: str) -> list[str]:
    since = timezone.now() - timedelta(days=settings.TIKTOK_COMMENT_SYNC_DAYS)
    rows = (
        Conversation.objects.filter(
            kind=Conversation.Kind.COMMENT,
            contact__channel=CHANNEL,
            contact__endpoint_id=business_id,
            last_activity_at__gte=since,
        )
        .order_by("-last_activity_at")
        .values_list("subject_id", flat=True)
    )
    return list(dict.fromkeys(rows))[: settings.TIKTOK_COMMENT_SYNC_MAX_VIDEOS]


def _recent_videos(call, video_ids: list[str] | None) -> list[dict]:
    if video_ids:
        return list(call(client.list_videos, video_ids=video_ids).get("videos") or [])
    since = timezone.now() - timedelta(days=settings.TIKTOK_COMMENT_SYNC_DAYS)
    videos: list[dict] = []
    cursor = None
    while len(videos) < settings.TIKTOK_COMMENT_SYNC_MAX_VIDEOS:
        page = call(client.list_videos, cursor=cursor)
        for video in page.get("videos") or []:
            created = video.get("create_time")
            if isinstance(created, int) and datetime.fromtimestamp(created, tz=UTC) < since:
                return videos  # newest first: the rest is older
            videos.append(video)
        if not page.get("has_more") or page.get("cursor") in (None, cursor):
            break
        cursor = page.get("cursor")
    return videos[: settings.TIKTOK_COMMENT_SYNC_MAX_VIDEOS]


def _sync_video(call, connection: TikTokConnection, video_id: str, subject: dict, report: SyncReport) -> None:
    business_id, username = connection.account_id, connection.username
    cursor = 0
    for _ in range(settings.TIKTOK_COMMENT_SYNC_MAX_PAGES):
        page = call(client.list_comments, video_id=video_id, cursor=cursor)
        comments = [c for c in page.get("comments") or [] if isinstance(c, dict)]
        events: list[InboundMessage] = []
        owners: dict[str, str] = {}
        hidden, visible = [], []
        for comment in comments:
            comment = {**comment, "video_id": comment.get("video_id") or video_id}
            top = comment_inbound(comment, business_id=business_id, username=username)
            if top is not None:
                owners[top.provider_message_id] = top.channel_user_id
                events.append(top)
            replies = [r for r in comment.get("reply_list") or [] if isinstance(r, dict)]
            if isinstance(comment.get("replies"), int) and comment["replies"] > len(replies):
                replies = _all_replies(call, video_id, str(comment.get("comment_id")))
            for reply in replies:
                reply = {**reply, "video_id": reply.get("video_id") or video_id}
                event = comment_inbound(
                    reply, business_id=business_id, username=username, parent_id=str(comment.get("comment_id"))
                )
                if event is not None:
                    events.append(event)
        for event in events:
            (hidden if event.public_state == Message.PublicState.HIDDEN else visible).append(event.provider_message_id)
        report.comments_seen += len(events)
        events = [replace(e, subject={**e.subject, **subject}) for e in place_in_threads(business_id, events, owners)]
        received = messages_receive([(connection.app.inbox_id, e) for e in events]) if events else []
        new = sum(1 for _, created in received if created)
        report.stored += new
        report.hidden += messages_public_state_apply(
            channel=CHANNEL, endpoint_id=business_id, provider_ids=hidden, public_state=Message.PublicState.HIDDEN
        )
        messages_public_state_apply(
            channel=CHANNEL, endpoint_id=business_id, provider_ids=visible, public_state=Message.PublicState.VISIBLE
        )
        if not page.get("has_more") or (received and new == 0):
            return  # newest first: a page with nothing new means the rest is known
        cursor = page.get("cursor") or cursor + len(comments)


def _all_replies(call, video_id: str, comment_id: str) -> list[dict]:
    replies: list[dict] = []
    cursor = 0
    for _ in range(settings.TIKTOK_COMMENT_SYNC_MAX_PAGES):
        page = call(client.list_comment_replies, video_id=video_id, comment_id=comment_id, cursor=cursor)
        replies.extend(r for r in page.get("comments") or [] if isinstance(r, dict))
        if not page.get("has_more"):
            break
        cursor = page.get("cursor") or cursor + len(page.get("comments") or [])
    return replies


def connections_to_sync() -> list[int]:
    """Connected accounts that granted comment.list."""
    rows = TikTokConnection.objects.filter(state=TikTokConnection.State.CONNECTED, app__active=True)
    return [pk for pk, scopes in rows.values_list("pk", "scopes") if "comment.list" in scopes.split(",")]
