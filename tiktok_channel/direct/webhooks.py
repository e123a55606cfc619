"""TikTok's own webhooks (Business Messaging): the signature, the envelope, and the events as the core's.

One URL per app (`/webhooks/tiktok/<app token>/`); every business account that authorized the app delivers there,
routed by the envelope's `user_openid`. The door (`tiktok_webhook`, the core's `inbox.webhooks.receive` with the
steps here): method and size, the app, then the `TikTok-Signature` (HMAC-SHA256 over `t + "." + raw body` with the
app secret, constant-time) and the replay window — all before any write; then the body must be one event we can
read (envelope + `content`, itself a JSON string).
Forged, replayed or malformed: 4xx with the reason, nothing stored. Then the ledger (`inbox.WebhookEvent`) and the
shared processor, which hands the rows to `process_ledger` here:

- `im_receive_msg` → an inbound message (text, image, share post; any other type kept as unsupported);
- `im_send_msg` → the business's own message: ours (matched by TikTok's message id) is not stored twice, one sent
  from TikTok's app is stored as an outbound message sent outside the inbox;
- `im_mark_read_msg` → the user read up to a time: our replies sent before it become seen;
- `comment.update` (§6.4) with `comment_action` "insert" → an inbound comment, in the conversation of kind
  "comment" of its commenter and video (the business's own comments, e.g. our replies, are not stored again);
  a reply by another user to a known comment goes into that comment's thread (`direct/comments.py`);
  `set_to_hidden` / `set_to_public` / `delete` move the stored comment's public state (ours too); other actions
  are kept, counted, not applied; a comment on a video whose cover we do not show yet fetches it (a sync task);
- anything else is kept in the ledger, unapplied, with the reason.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Q
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from inbox.db import update_rows
from inbox.events import InboundMessage, StatusReport
from inbox.models import Conversation, Message, WebhookEvent
from inbox.services import message_statuses_apply, messages_public_state_apply, messages_receive
from inbox.webhooks import Parsed, WebhookDoor, WebhookRefused, receive
from tiktok_channel.direct import comments
from tiktok_channel.direct.comments import video_url
from tiktok_channel.direct.engagement import webhooks as engagement_webhooks
from tiktok_channel.direct.media import media_url
from tiktok_channel.direct.models import DIRECT_PROVIDER, TikTokApp, TikTokConnection
from tiktok_channel.models import CHANNEL

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "TikTok-Signature"
RECEIVE, SEND, READ = "im_receive_msg", "im_send_msg", "im_mark_read_msg"
COMMENT = "comment.update"
COMMENT_INSERT = "insert"
# What TikTok reports of a comment's visibility (§6.4), applied to the stored message.
COMMENT_STATES = {
    "set_to_hidden": Message.PublicState.HIDDEN,
    "set_to_public": Message.PublicState.VISIBLE,
    "delete": Message.PublicState.DELETED,
}
MESSAGE_TYPES = {"text": Message.Type.TEXT, "image": Message.Type.IMAGE, "share_post": Message.Type.SHARE_POST}
ID_MAX_CHARS = 200
URL_MAX_CHARS = 2048
LEDGER_FIELDS = ["verdict", "summary", "problems", "error", "result_count"]


# --- The signature ----------------------------------------------------------------------------------------------


class SignatureError(Exception):
    """The request is not TikTok's (or is too old); the message is the 401's reason."""


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The `TikTok-Signature` header TikTok (or a test, or the sandbox) sends with `body` at `timestamp`."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},s={digest}"


def verify_signature(secret: str, header: str | None, body: bytes, *, now: float, max_age: int) -> None:
    """Raise SignatureError unless `header` signs `body` with `secret`, within `max_age` seconds of `now`."""
    if not header:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    parts = {}
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            parts[key.strip()] = value.strip()
    timestamp, given = parts.get("t", ""), parts.get("s", "")
    if not timestamp.isdigit() or not given:
        raise SignatureError(f"malformed {SIGNATURE_HEADER} header (expected t=<unix seconds>,s=<hex>)")
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), given.lower().encode()):
        raise SignatureError("signature does not match the body")
    if abs(now - int(timestamp)) > max_age:
        raise SignatureError(f"timestamp outside the {max_age}-second replay window")


# --- Parsing ----------------------------------------------------------------------------------------------------


class EventError(ValueError):
    """The body is not one TikTok event we can read; the message is the 400's (or the ledger's) reason."""


@dataclass(frozen=True)
class ParsedEvent:
    event: str
    business_id: str
    content: dict = field(default_factory=dict)


def _id(value, name: str, *, required: bool = True) -> str:
    """An id as a string (TikTok sends some as JSON numbers)."""
    if value is None or value == "":
        if required:
            raise EventError(f"{name} is required")
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise EventError(f"{name} must be a string")
    text = str(value)
    if len(text) > ID_MAX_CHARS:
        raise EventError(f"{name} is longer than {ID_MAX_CHARS} characters")
    return text


def _object(value, name: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise EventError(f"{name} must be an object")
    return value


def parse_event(body: bytes) -> ParsedEvent:
    """The envelope and its decoded `content` (a JSON string in the envelope); the fields each event we apply
    needs are checked here, so a stored event can always be applied."""
    body = body.replace(b"\\u0000", b"\\ufffd")  # PostgreSQL text and jsonb refuse U+0000
    try:
        envelope = json.loads(body)
    except (ValueError, RecursionError):
        raise EventError("body is not valid JSON") from None
    if not isinstance(envelope, dict):
        raise EventError("body must be a JSON object")
    event = envelope.get("event")
    if not isinstance(event, str) or not event:
        raise EventError("'event' is required")
    ours = engagement_webhooks.kind_of(event) is not None  # posts and authorization (engagement/webhooks.py)
    business_id = _id(
        envelope.get("user_openid"), "user_openid", required=ours or event in (RECEIVE, SEND, READ, COMMENT)
    )
    content = envelope.get("content")
    if isinstance(content, str):
        try:
            content = json.loads(content)
        except (ValueError, RecursionError):
            raise EventError("'content' is not valid JSON") from None
    if content is None:
        content = {}
    if not isinstance(content, dict):
        raise EventError("'content' must be a JSON object")
    if ours:
        try:
            engagement_webhooks.check(event, content)
        except ValueError as exc:
            raise EventError(str(exc)) from None
    if event == COMMENT:
        for name in ("comment_id", "video_id", "unique_identifier"):
            _id(content.get(name), f"content.{name}")
        _id(content.get("parent_comment_id"), "content.parent_comment_id", required=False)
        if not isinstance(content.get("comment_action"), str):
            raise EventError("content.comment_action must be a string")
        if content.get("text") is not None and not isinstance(content.get("text"), str):
            raise EventError("content.text must be a string")
    if event in (RECEIVE, SEND, READ):
        _id(content.get("conversation_id"), "content.conversation_id")
        if event == READ:
            read = _object(content.get("read"), "content.read")
            if not isinstance(read.get("last_read_timestamp"), int) or isinstance(read["last_read_timestamp"], bool):
                raise EventError("content.read.last_read_timestamp must be a number (ms)")
        else:
            _id(content.get("message_id"), "content.message_id")
            peer = "from_user" if event == RECEIVE else "to_user"
            _id(_object(content.get(peer), f"content.{peer}").get("id"), f"content.{peer}.id")
            if not isinstance(content.get("type"), str):
                raise EventError("content.type must be a string")
            for key in ("text", "image", "share_post", "referenced_message_info", "message_tag"):
                _object(content.get(key), f"content.{key}")
            text = (content.get("text") or {}).get("body")
            if text is not None and not isinstance(text, str):
                raise EventError("content.text.body must be a string")
            embed = (content.get("share_post") or {}).get("embed_url")
            if embed is not None and (not isinstance(embed, str) or len(embed) > URL_MAX_CHARS):
                raise EventError(f"content.share_post.embed_url must be a URL of at most {URL_MAX_CHARS} characters")
            _id((content.get("referenced_message_info") or {}).get("referenced_message_id"), "quote", required=False)
            _id((content.get("image") or {}).get("media_id"), "content.image.media_id", required=False)
    return ParsedEvent(event=event, business_id=business_id, content=content)


def event_time(milliseconds, fallback: datetime) -> datetime:
    """TikTok's `timestamp` (ms; seconds detected by magnitude), never in the future (a skewed clock must not hold
    the reply window open)."""
    if not isinstance(milliseconds, int) or isinstance(milliseconds, bool) or milliseconds <= 0:
        return fallback
    seconds = milliseconds / 1000 if milliseconds > 10**11 else milliseconds
    try:
        at = datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return fallback
    return min(at, timezone.now())


def inbound_event(parsed: ParsedEvent, *, fallback: datetime) -> InboundMessage:
    content = parsed.content
    outside = parsed.event == SEND
    peer = content["to_user"] if outside else content["from_user"]
    kind = content.get("type", "")
    return InboundMessage(
        channel=CHANNEL,
        endpoint_id=parsed.business_id,
        channel_user_id=str(peer["id"]),
        provider_message_id=str(content["message_id"]),
        provider_conversation_id=str(content["conversation_id"]),
        sent_at=event_time(content.get("timestamp"), fallback),
        type=MESSAGE_TYPES.get(kind, Message.Type.UNSUPPORTED),
        text=(content.get("text") or {}).get("body") or "",
        media_url=media_url(parsed.business_id, str(content["message_id"])) if kind == "image" else "",
        embed_url=(content.get("share_post") or {}).get("embed_url") or "",
        quoted_provider_message_id=str(
            (content.get("referenced_message_info") or {}).get("referenced_message_id") or ""
        ),
        provider=DIRECT_PROVIDER,
        payload=content,
        sent_outside=outside,
    )


def comment_event(parsed: ParsedEvent, *, fallback: datetime, username: str = "") -> InboundMessage:
    """A user's comment on one of the business's videos as an inbound message of the comment conversation of this
    user and video (ids are JSON numbers here, strings in REST: kept as strings)."""
    content = parsed.content
    video_id = str(content["video_id"])
    parent = str(content.get("parent_comment_id") or "")
    return InboundMessage(
        channel=CHANNEL,
        endpoint_id=parsed.business_id,
        channel_user_id=str(content["unique_identifier"]),
        provider_message_id=str(content["comment_id"]),
        provider_conversation_id="",
        sent_at=event_time(content.get("timestamp"), fallback),
        type=Message.Type.TEXT,
        text=content.get("text") or "",
        provider=DIRECT_PROVIDER,
        payload=content,
        conversation_kind=Conversation.Kind.COMMENT,
        subject_id=video_id,
        subject={"url": video_url(video_id, username), "parent_comment_id": "" if parent == "0" else parent},
    )


# --- Applying stored events -------------------------------------------------------------------------------------


@dataclass
class Outcome:
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[dict] = field(default_factory=list)
    error: str = ""

    def add(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def record(self, event: WebhookEvent) -> None:
        event.summary, event.problems, event.result_count = self.counts, self.problems, 1
        if self.error:
            event.verdict, event.error = WebhookEvent.Verdict.REJECTED, self.error
        elif self.problems:
            event.verdict = WebhookEvent.Verdict.PARTIAL
        else:
            event.verdict = WebhookEvent.Verdict.PROCESSED


def _connections(pairs: set[tuple[int, str]]) -> dict[tuple[int, str], TikTokConnection]:
    """The connections (not disconnected) of (app id, account id) pairs, with their app's inbox."""
    found = {}
    accounts = {account for _, account in pairs}
    rows = (
        TikTokConnection.objects.select_related("app")
        .filter(account_id__in=accounts)
        .exclude(state=TikTokConnection.State.DISCONNECTED)
    )
    for connection in rows:
        if (connection.app_id, connection.account_id) in pairs:
            found[(connection.app_id, connection.account_id)] = connection
    return found


def apply_events(requests: list[tuple[int, ParsedEvent, datetime]]) -> list[Outcome]:
    """Apply parsed events, given as (app id, event, received at), all together; the caller holds the transaction."""
    outcomes = [Outcome() for _ in requests]
    connections = _connections({(app_id, parsed.business_id) for app_id, parsed, _ in requests})
    inbound: list[tuple[int, InboundMessage]] = []
    inbound_of: list[int] = []
    echoes: list[tuple[int, int, InboundMessage]] = []  # (position, inbox, event)
    reads: list[tuple[int, ParsedEvent, datetime]] = []
    comment_videos: set[tuple[int, str]] = set()  # (connection, video): fetch the video's cover and caption
    for position, (app_id, parsed, received_at) in enumerate(requests):
        outcome = outcomes[position]
        if engagement_webhooks.kind_of(parsed.event) is not None:
            connection = connections.get((app_id, parsed.business_id))
            if connection is None:
                outcome.add("ignored_unknown_account")
            else:
                outcome.add(engagement_webhooks.apply(connection, parsed.event, parsed.content, received_at))
            continue
        if parsed.event not in (RECEIVE, SEND, READ, COMMENT):
            outcome.add("unrecognized")
            outcome.problems.append({"index": 0, "reason": f"event {parsed.event!r} is not applied"})
            continue
        connection = connections.get((app_id, parsed.business_id))
        if connection is None:
            outcome.add("ignored_unknown_account")
            continue
        if parsed.event == READ:
            reads.append((position, parsed, received_at))
            continue
        if parsed.event == COMMENT:
            action = parsed.content["comment_action"]
            if action in COMMENT_STATES:
                changed = messages_public_state_apply(
                    channel=CHANNEL,
                    endpoint_id=parsed.business_id,
                    provider_ids=[str(parsed.content["comment_id"])],
                    public_state=COMMENT_STATES[action],
                )
                outcome.add(f"comment_{COMMENT_STATES[action]}" if changed else "comment_state_unchanged")
                continue
            if action != COMMENT_INSERT:
                outcome.add(f"comment_{action[:32]}_not_applied")
                continue
            event = comment_event(parsed, fallback=received_at, username=connection.username)
            if event.channel_user_id == parsed.business_id or event.provider_message_id in _our_comments(event):
                outcome.add("own_comment")
                continue
            (event,) = comments.place_in_threads(parsed.business_id, [event])
            inbound.append((connection.app.inbox_id, event))
            inbound_of.append(position)
            comment_videos.add((connection.pk, event.subject_id))
            continue
        event = inbound_event(parsed, fallback=received_at)
        if event.type == Message.Type.UNSUPPORTED:
            outcome.problems.append(
                {"index": 0, "reason": f"message type {parsed.content.get('type')!r} kept as unsupported"}
            )
        if parsed.event == SEND:
            echoes.append((position, connection.app.inbox_id, event))
        else:
            inbound.append((connection.app.inbox_id, event))
            inbound_of.append(position)

    # The business's own messages: ours (TikTok's id on our reply) are not stored twice; an API send with no
    # match while one of ours is on its way is its echo beating the send's answer; the rest were sent outside.
    ours = _ours([event for _, _, event in echoes])
    for position, inbox_id, event in echoes:
        source = ((event.payload.get("message_tag") or {}).get("source") or "").upper()
        if event.provider_message_id in ours:
            outcomes[position].add("echo_of_ours")
        elif source == "API" and _reply_in_flight(event):
            outcomes[position].add("echo_in_flight")
        else:
            inbound.append((inbox_id, event))
            inbound_of.append(position)

    for position, (message, created) in zip(inbound_of, messages_receive(inbound), strict=True):
        kind = "sent_outside" if message.direction == Message.Direction.OUT else "inbound"
        outcomes[position].add(kind if created else "duplicate")
    if comment_videos:
        _fetch_videos_without_cover(comment_videos)

    reports: list[StatusReport] = []
    report_of: list[int] = []
    for position, parsed, received_at in reads:
        read_at = event_time(parsed.content["read"]["last_read_timestamp"], received_at)
        found = _read_reports(parsed, read_at)
        if not found:
            outcomes[position].add("read_nothing_new")
        for report in found:
            reports.append(report)
            report_of.append(position)
    for position, result in zip(report_of, message_statuses_apply(reports), strict=True):
        outcomes[position].add(f"read_{result}")
    return outcomes


def _of_contact(event: InboundMessage) -> Q:
    """The messages of the user's DM conversation with this account (found through the contact's unique index)."""
    return Q(
        conversation__kind=Conversation.Kind.MESSAGE,
        conversation__contact__channel=CHANNEL,
        conversation__contact__endpoint_id=event.endpoint_id,
        conversation__contact__channel_user_id=event.channel_user_id,
    )


def _ours(echoes: list[InboundMessage]) -> set[str]:
    """TikTok's ids, among these echoes, that are on replies of ours (recorded when TikTok accepted them)."""
    if not echoes:
        return set()
    wanted = Q()
    for event in echoes:
        wanted |= _of_contact(event) & Q(provider_status__messageId=event.provider_message_id)
    rows = Message.objects.filter(wanted, direction=Message.Direction.OUT)
    return {str(value) for value in rows.values_list("provider_status__messageId", flat=True)}


def _fetch_videos_without_cover(pairs: set[tuple[int, str]]) -> None:
    from tiktok_channel.direct.tasks import sync_video_soon

    video_ids = {video for _, video in pairs}
    covered = set(
        Conversation.objects.filter(
            kind=Conversation.Kind.COMMENT, subject_id__in=video_ids, subject__has_key="cover_url"
        ).values_list("subject_id", flat=True)
    )
    for connection_id, video_id in sorted(pairs):
        if video_id not in covered:
            sync_video_soon(connection_id, video_id)


def _our_comments(event: InboundMessage) -> set[str]:
    """TikTok's id of this comment if it is one of our replies (recorded when TikTok accepted it)."""
    rows = Message.objects.filter(
        conversation__contact__channel=CHANNEL,
        conversation__contact__endpoint_id=event.endpoint_id,
        direction=Message.Direction.OUT,
        provider_status__messageId=event.provider_message_id,
    )
    return {str(value) for value in rows.values_list("provider_status__messageId", flat=True)}


def _reply_in_flight(event: InboundMessage) -> bool:
    return Message.objects.filter(
        _of_contact(event), direction=Message.Direction.OUT, status=Message.Status.QUEUED
    ).exists()


def _read_reports(parsed: ParsedEvent, read_at: datetime) -> list[StatusReport]:
    """Seen reports for our replies in this conversation sent (queued) before the user's read time."""
    business_id = parsed.business_id
    reader = (parsed.content.get("from_user") or {}).get("id")
    if reader:  # the user's conversation through the contact's unique index
        where = Q(conversation__contact__channel_user_id=str(reader))
    else:
        where = Q(conversation__provider_conversation_id=str(parsed.content["conversation_id"]))
    rows = Message.objects.filter(
        where,
        channel=CHANNEL,
        direction=Message.Direction.OUT,
        status__in=(Message.Status.ACCEPTED, Message.Status.DELIVERED),
        conversation__contact__channel=CHANNEL,
        conversation__contact__endpoint_id=business_id,
        conversation__kind=Conversation.Kind.MESSAGE,  # a read in DMs says nothing of public comment replies
        sent_at__lte=read_at,
    ).values_list("provider_message_id", flat=True)
    return [
        StatusReport(
            channel=CHANNEL,
            provider_message_id=provider_message_id,
            status=Message.Status.SEEN,
            at=read_at,
            endpoint_ids=(business_id,),
        )
        for provider_message_id in rows
    ]


def process_ledger(events: list[WebhookEvent]) -> None:
    """Apply stored requests (the processor's claimed rows; the caller holds the transaction) and record each
    one's verdict. All together first; if that fails for a reason other than the database, one by one, so one bad
    event never costs the others."""
    parsed: list[tuple[WebhookEvent, ParsedEvent]] = []
    for event in events:
        try:
            parsed.append((event, parse_event(event.body.encode())))
        except EventError as exc:  # the door stores only events it parsed; a hand-edited row lands here
            Outcome(error=str(exc)).record(event)
    requests = [(event.connection_id, item, event.received_at) for event, item in parsed]
    try:
        with transaction.atomic():
            outcomes = apply_events(requests)
    except (OperationalError, InterfaceError):
        raise
    except Exception:  # noqa: BLE001 - redone one by one, where each failure is recorded
        logger.exception("TikTok webhook batch failed; applying %d events one at a time", len(parsed))
        outcomes = []
        for request in requests:
            try:
                with transaction.atomic():
                    outcomes.extend(apply_events([request]))
            except (OperationalError, InterfaceError):
                raise
            except Exception as exc:  # noqa: BLE001 - recorded on its row, replayable
                logger.exception("TikTok webhook event failed")
                outcome = Outcome()
                outcome.error = ""
                outcome.problems.append({"index": 0, "reason": f"{type(exc).__name__}: {exc}"})
                outcome.add("failed")
                outcomes.append(outcome)
    for (event, _), outcome in zip(parsed, outcomes, strict=True):
        outcome.record(event)
        if outcome.counts.get("failed"):
            event.verdict = WebhookEvent.Verdict.FAILED
    update_rows(WebhookEvent, LEDGER_FIELDS, events)


def replay_event(event: WebhookEvent) -> None:
    """Apply one stored request again (admin action): effects are idempotent."""
    with transaction.atomic():
        process_ledger([event])
        event.replayed_at = timezone.now()
        update_rows(WebhookEvent, ["replayed_at"], [event])


# --- The door ---------------------------------------------------------------------------------------------------


def _app(token: str) -> TikTokApp | None:
    return TikTokApp.objects.filter(webhook_path_token=token, active=True).first()


def _authenticate(app: TikTokApp, request: HttpRequest, body: bytes) -> None:
    try:
        verify_signature(
            app.client_secret,
            request.headers.get(SIGNATURE_HEADER),
            body,
            now=time.time(),
            max_age=settings.TIKTOK_DIRECT_WEBHOOK_MAX_AGE_SECONDS,
        )
    except SignatureError as exc:
        logger.warning("TikTok webhook refused for app %s: %s", app.pk, exc)
        raise WebhookRefused(401, "unauthenticated", str(exc)) from None


def _parse(app: TikTokApp, body: bytes) -> Parsed:
    try:
        parsed = parse_event(body)
    except EventError as exc:
        logger.warning("TikTok webhook for app %s not readable: %s", app.pk, exc)
        raise WebhookRefused(400, "bad_payload", str(exc)) from None
    return Parsed(result_count=1, data=parsed, path_kind=parsed.event[:16])


DOOR = WebhookDoor(
    provider=DIRECT_PROVIDER,
    connection=_app,
    authenticate=_authenticate,
    parse=_parse,
    process=lambda event, _: process_ledger([event]),
    json_only=False,
    signature_header=SIGNATURE_HEADER,
)


@csrf_exempt
def tiktok_webhook(request: HttpRequest, token: str) -> JsonResponse:
    return receive(request, token, DOOR)
