"""What the TikTok sandbox knows and does, independent of HTTP: apps, business accounts, OAuth grants and tokens,
conversations, messages, media, and the signed webhooks it posts (with retries)."""

from __future__ import annotations

import json
import logging
import random
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tiktok_channel.direct.sandbox import payloads
from tiktok_channel.direct.sandbox.behaviour import Behaviour
from tiktok_channel.direct.sandbox.posting import Posting
from tiktok_channel.direct.sandbox.videos import VideoLibrary
from tiktok_channel.sandbox.server import DEMO_LINES  # the Infobip sandbox's, reused as they are
from tiktok_channel.sandbox.switches import SandboxState, is_url, redirect_uris

logger = logging.getLogger(__name__)

KEPT_SENT = 1000
DEFAULT_SHARE_POST = "https://www.tiktok.com/embed/7300000000000000001"
QUOTABLE = {"text", "image", "share_post"}  # §3.2: what a TEXT may quote
OTHER_KINDS = {"sticker", "video", "emoji", "other"}  # kept as "anything else" by receivers
MESSAGE_TYPES = ("TEXT", "IMAGE", "SHARE_POST", "TEMPLATE", "SENDER_ACTION")


class ApiError(Exception):
    """Answer the current API call with TikTok's envelope: `code` ≠ 0 and a reason (HTTP 200 unless `status`)."""

    def __init__(self, code: int, reason: str = "", status: int = 200) -> None:
        super().__init__(f"{code} {reason}")
        self.code, self.reason, self.status = code, reason, status

    def body(self) -> dict:
        return payloads.envelope(code=self.code, message=self.reason)


@dataclass
class App:
    client_key: str
    client_secret: str
    name: str = "Sandbox app"
    redirect_uris: list[str] = field(default_factory=list)  # empty: any http(s) URL is accepted
    webhooks: dict[str, str] = field(default_factory=dict)  # event_type -> callback_url

    def __repr__(self) -> str:  # never show the secret
        return f"App({self.client_key!r}, {self.name!r})"

    def public(self) -> dict:
        return {
            "client_key": self.client_key,
            "name": self.name,
            "redirect_uris": list(self.redirect_uris),
            "webhooks": dict(self.webhooks),
        }


@dataclass
class Account:
    """A TikTok business account; `open_id` is the `business_id` of every messaging call."""

    open_id: str
    username: str
    display_name: str

    def public(self) -> dict:
        return {"open_id": self.open_id, "username": self.username, "display_name": self.display_name}


@dataclass
class AuthCode:
    code: str
    client_key: str
    open_id: str
    scope: list[str]
    redirect_uri: str
    expires_at: float
    used: bool = False


@dataclass
class Grant:
    """One consent of one account to one app; revoking it ends all its tokens and its webhooks."""

    client_key: str
    open_id: str
    scope: list[str]
    revoked: bool = False


@dataclass
class Token:
    value: str
    kind: str  # "access" | "refresh"
    grant: Grant
    issued_at: float
    expires_at: float
    status: str = "active"  # "active" | "rotated" | "revoked"

    def state(self, now: float) -> str:
        if self.status == "active" and now >= self.expires_at:
            return "expired"
        return self.status


@dataclass
class Message:
    message_id: str
    conversation_id: str
    direction: str  # "in" (user -> business) | "out" (business -> user)
    kind: str  # webhook type: text, image, share_post, sticker, ...
    timestamp_ms: int
    body: dict | None = None
    source: str = "APP"  # message_tag.source: APP for the users' and the business's app, API for our sends
    referenced_message_id: str = ""
    read: bool = False


@dataclass
class Conversation:
    conversation_id: str
    open_id: str
    user_id: str
    username: str
    last_user_message_at: float
    sent_since_user: int = 0  # business messages since the user last wrote
    sent_after_window: int = 0  # business messages after the reply window closed

    def public(self) -> dict:
        return {
            "conversation_id": self.conversation_id,
            "account": self.open_id,
            "user": self.user_id,
            "username": self.username,
            "last_user_message_at": self.last_user_message_at,
            "sent_since_user": self.sent_since_user,
            "sent_after_window": self.sent_after_window,
        }


@dataclass
class Media:
    media_id: str
    open_id: str
    mime: str
    data: bytes
    expires_at: float


class Sandbox(SandboxState):
    """The sandbox's state and behaviour. One lock guards all of it; webhooks are posted outside it."""

    behaviour: Behaviour

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        super().__init__(behaviour or Behaviour())
        self.cover_base_url = "http://127.0.0.1"  # the server sets its own address (covers it serves)
        self.clock_offset_s = 0.0
        self.apps: dict[str, App] = {}
        self.accounts: dict[str, Account] = {}
        self.codes: dict[str, AuthCode] = {}
        self.tokens: dict[str, Token] = {}
        self.conversations: dict[str, Conversation] = {}
        self.messages: dict[str, Message] = {}
        self.media: dict[str, Media] = {}
        self.downloads: dict[str, tuple[str, float]] = {}  # download token -> (media_id, expires_at)
        self.sent: deque[dict] = deque(maxlen=KEPT_SENT)
        self.comments: dict[str, dict] = {}  # comment id -> the comment as `/business/comment/list/` shows it
        self.videos = VideoLibrary(self)  # posts, their growing figures, followers (videos.py)
        self.posting = Posting(self)  # the Content Posting API (§4)

    def now(self) -> float:
        """TikTok's clock: the wall clock plus what `advance_clock_s` added (tokens, codes, the reply window)."""
        return time.time() + self.clock_offset_s

    # --- setup -----------------------------------------------------------------------------------------------

    def add_app(self, spec: dict) -> App:
        """Register (or replace) an app from `{"client_key", "client_secret", "name"?, "redirect_uri(s)"?,
        "webhook_url"?}`; raises ValueError."""
        if not isinstance(spec, dict):
            raise ValueError("an app must be a JSON object")
        key, secret = spec.get("client_key"), spec.get("client_secret")
        if not isinstance(key, str) or not key or not isinstance(secret, str) or not secret:
            raise ValueError("client_key and client_secret are required strings")
        uris = redirect_uris(spec)
        app = App(client_key=key, client_secret=secret, name=str(spec.get("name") or key), redirect_uris=uris)
        webhook_url = spec.get("webhook_url")
        if webhook_url:
            if not isinstance(webhook_url, str) or not is_url(webhook_url):
                raise ValueError("webhook_url must be an absolute http(s) URL")
            app.webhooks["DIRECT_MESSAGE"] = webhook_url
        with self.lock:
            self.apps[key] = app
        return app

    def add_account(self, spec: dict) -> Account:
        """Register (or replace) a business account from `{"open_id", "username"?, "display_name"?}`."""
        if not isinstance(spec, dict):
            raise ValueError("an account must be a JSON object")
        open_id = spec.get("open_id")
        if not isinstance(open_id, str) or not open_id:
            raise ValueError("open_id is a required string")
        username = str(spec.get("username") or open_id)
        account = Account(open_id=open_id, username=username, display_name=str(spec.get("display_name") or username))
        with self.lock:
            self.accounts[open_id] = account
        self.videos.account_added(open_id)
        return account

    # --- OAuth -----------------------------------------------------------------------------------------------

    def app_for_authorize(self, client_key: str, redirect_uri: str) -> App:
        """The app an authorize request names, if its redirect URI may be used (else ValueError: no redirect)."""
        with self.lock:
            app = self.apps.get(client_key)
        if app is None:
            raise ValueError(f"client_key {client_key!r} is not a registered app")
        if not is_url(redirect_uri):
            raise ValueError("redirect_uri must be an absolute http(s) URL")
        if app.redirect_uris and redirect_uri not in app.redirect_uris:
            raise ValueError(f"redirect_uri {redirect_uri!r} is not registered for this app")
        return app

    def issue_code(self, *, app: App, open_id: str, scope: list[str], redirect_uri: str) -> str:
        code = "sbx-code-" + secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = AuthCode(
                code=code,
                client_key=app.client_key,
                open_id=open_id,
                scope=scope,
                redirect_uri=redirect_uri,
                expires_at=self.now() + self.behaviour.auth_code_ttl_s,
            )
        self.count("oauth_authorized")
        return code

    def _client(self, client_id: Any, client_secret: Any) -> App:
        if not isinstance(client_id, str) or not client_id or not isinstance(client_secret, str) or not client_secret:
            raise ApiError(payloads.PARAM_ERROR, "client_id and client_secret are required strings")
        app = self.apps.get(client_id)
        if app is None or not secrets.compare_digest(app.client_secret, client_secret):
            raise ApiError(payloads.PERMISSION_ERROR, "client_id or client_secret is wrong")
        return app

    def _issue_tokens(self, grant: Grant, *, refresh: Token | None = None) -> dict:
        """A new access token, and a new refresh token unless `refresh` is kept (no rotation)."""
        b, now = self.behaviour, self.now()
        access = Token("act.sbx" + secrets.token_urlsafe(32), "access", grant, now, now + b.access_token_ttl_s)
        self.tokens[access.value] = access
        if refresh is None:
            refresh = Token("rft.sbx" + secrets.token_urlsafe(32), "refresh", grant, now, now + b.refresh_token_ttl_s)
            self.tokens[refresh.value] = refresh
        return payloads.token_data(
            open_id=grant.open_id,
            scope=",".join(grant.scope),
            access_token=access.value,
            refresh_token=refresh.value,
            expires_in=b.access_token_ttl_s,
            refresh_expires_in=max(0, int(refresh.expires_at - now)),
        )

    def exchange_code(self, body: dict) -> dict:
        with self.lock:
            app = self._client(body.get("client_id"), body.get("client_secret"))
            if body.get("grant_type") != "authorization_code":
                raise ApiError(payloads.GRANT_TYPE_INVALID, "grant_type must be authorization_code")
            code_value, redirect_uri = body.get("auth_code"), body.get("redirect_uri")
            if not isinstance(code_value, str) or not code_value:
                raise ApiError(payloads.PARAM_ERROR, "auth_code is a required string")
            if not isinstance(redirect_uri, str) or not redirect_uri:
                raise ApiError(payloads.PARAM_ERROR, "redirect_uri is a required string")
            code = self.codes.get(code_value)
            problem = ""
            if code is None or code.client_key != app.client_key:
                problem = "auth_code is not valid"
            elif code.used:
                problem = "auth_code was already used"
            elif self.now() >= code.expires_at:
                problem = "auth_code has expired"
            elif code.redirect_uri != redirect_uri:
                problem = "redirect_uri does not match the one of the authorization"
            if problem:
                self.count("oauth_code_rejected")
                raise ApiError(payloads.AUTH_CODE_ERROR, problem)
            code.used = True
            grant = Grant(client_key=app.client_key, open_id=code.open_id, scope=list(code.scope))
            data = self._issue_tokens(grant)
        self.count("tokens_issued")
        return data

    def refresh(self, body: dict) -> dict:
        with self.lock:
            app = self._client(body.get("client_id"), body.get("client_secret"))
            if body.get("grant_type") != "refresh_token":
                raise ApiError(payloads.GRANT_TYPE_INVALID, "grant_type must be refresh_token")
            value = body.get("refresh_token")
            if not isinstance(value, str) or not value:
                raise ApiError(payloads.PARAM_ERROR, "refresh_token is a required string")
            token = self.tokens.get(value)
            if token is None or token.kind != "refresh" or token.grant.client_key != app.client_key:
                problem = (payloads.REFRESH_TOKEN_INVALID, "refresh_token is not valid")
            else:
                problem = {
                    "rotated": (payloads.REFRESH_TOKEN_INVALID, "refresh_token was replaced by a newer one"),
                    "revoked": (payloads.REFRESH_TOKEN_INVALID, "refresh_token was revoked"),
                    "expired": (payloads.REFRESH_TOKEN_EXPIRED, "refresh_token has expired"),
                }.get(token.state(self.now()))
            if problem:
                self.count("refresh_rejected")
                raise ApiError(*problem)
            if self.behaviour.refresh_rotates:
                token.status = "rotated"
                data = self._issue_tokens(token.grant)
            else:
                data = self._issue_tokens(token.grant, refresh=token)
        self.count("tokens_refreshed")
        return data

    def revoke(self, body: dict) -> dict:
        with self.lock:
            app = self._client(body.get("client_id"), body.get("client_secret"))
            value = body.get("access_token")
            if not isinstance(value, str) or not value:
                raise ApiError(payloads.PARAM_ERROR, "access_token is a required string")
            token = self.tokens.get(value)
            if token is None or token.kind != "access" or token.grant.client_key != app.client_key:
                raise ApiError(payloads.ACCESS_TOKEN_INVALID, "access_token is not valid")
            token.grant.revoked = True
            for other in self.tokens.values():
                if other.grant is token.grant:
                    other.status = "revoked"
        self.count("tokens_revoked")
        return {}

    def token_info(self, body: dict) -> dict:
        with self.lock:
            app_id, value = body.get("app_id"), body.get("access_token")
            if not isinstance(app_id, str) or not isinstance(value, str) or not app_id or not value:
                raise ApiError(payloads.PARAM_ERROR, "app_id and access_token are required strings")
            token = self._access_token(value)
            if token.grant.client_key != app_id:
                raise ApiError(payloads.ACCESS_TOKEN_INVALID, "access_token was not issued to this app_id")
            return {"app_id": app_id, "scope": ",".join(token.grant.scope), "creator_id": token.grant.open_id}

    def _access_token(self, value: str) -> Token:
        if not value:
            raise ApiError(payloads.ACCESS_TOKEN_EMPTY, "send the token in the Access-Token header")
        if self.behaviour.take("invalid_token_next"):
            self.count("fault_invalid_token")
            raise ApiError(payloads.ACCESS_TOKEN_INVALID, "access token is invalid (fault switch)")
        token = self.tokens.get(value)
        if token is None or token.kind != "access":
            raise ApiError(payloads.ACCESS_TOKEN_INVALID, "access token is not valid")
        state = token.state(self.now())
        if state == "revoked":
            raise ApiError(payloads.ACCESS_TOKEN_INVALID, "access token was revoked")
        if state == "expired":
            raise ApiError(payloads.ACCESS_TOKEN_EXPIRED, "access token has expired")
        return token

    def authenticate(self, value: str, business_id: Any, scope: str) -> Grant:
        """The grant behind an `Access-Token`, checked for this business and scope (raises ApiError)."""
        with self.lock:
            try:
                token = self._access_token(value)
            except ApiError as exc:
                self.count(f"token_rejected_{exc.code}")
                raise
            if not isinstance(business_id, str) or not business_id:
                raise ApiError(payloads.PARAM_ERROR, "business_id is a required string")
            if business_id != token.grant.open_id:
                raise ApiError(payloads.PERMISSION_ERROR, "the access token is not for this business_id")
            if scope not in token.grant.scope:
                raise ApiError(payloads.PERMISSION_ERROR, f"scope {scope} is not authorized")
            return token.grant

    # --- Business Messaging ----------------------------------------------------------------------------------

    def business_info(self, grant: Grant, fields: list[str]) -> dict:
        account = self.accounts[grant.open_id]
        expires = int(self.now()) + 86400  # a temporary URL, as TikTok's
        values = {
            "username": account.username,
            "display_name": account.display_name,
            "profile_image": f"https://p16.tiktokcdn.example/{account.open_id}.jpeg?x-expires={expires}",
            "bio_description": "",
            "profile_deep_link": f"https://www.tiktok.com/@{account.username}",
            "is_verified": False,
            "is_business_account": True,
            **self.videos.account_figures(account.open_id),
        }
        unknown = [f for f in fields if f not in values]
        if unknown:
            raise ApiError(payloads.PARAM_ERROR, f"unknown fields: {', '.join(unknown)}")
        return {name: values[name] for name in (fields or ["username", "display_name", "profile_image"])}

    def send(self, grant: Grant, body: dict) -> tuple[dict, list]:
        """Check and record one send; returns `data` and the echo job to run before answering (`echo_first`)."""
        if body.get("recipient_type") != "CONVERSATION":
            raise ApiError(payloads.PARAM_ERROR, "recipient_type must be CONVERSATION")
        recipient = body.get("recipient")
        if not isinstance(recipient, str) or not recipient:
            raise ApiError(payloads.PARAM_ERROR, "recipient (the conversation_id) is a required string")
        message_type = body.get("message_type")
        if message_type not in MESSAGE_TYPES:
            raise ApiError(payloads.PARAM_ERROR, f"message_type must be one of {', '.join(MESSAGE_TYPES)}")
        kind = message_type.lower()
        content = _message_body(message_type, body, self.behaviour.text_max_chars)
        reference = body.get("referenced_message_info")
        if reference is not None and (
            not isinstance(reference, dict) or not isinstance(reference.get("referenced_message_id"), str)
        ):
            raise ApiError(payloads.PARAM_ERROR, "referenced_message_info.referenced_message_id must be a string")
        if reference is not None and message_type != "TEXT":
            raise ApiError(payloads.PARAM_ERROR, "only TEXT messages can quote a message")
        with self.lock:
            conversation = self.conversations.get(recipient)
            if conversation is None or conversation.open_id != grant.open_id:
                raise ApiError(payloads.NOT_EXIST, f"conversation {recipient} does not exist (users write first)")
            referenced = ""
            if reference is not None:
                referenced = reference["referenced_message_id"]
                quoted = self.messages.get(referenced)
                if quoted is None or quoted.conversation_id != recipient:
                    raise ApiError(payloads.NOT_EXIST, f"referenced message {referenced} is not in this conversation")
                if quoted.kind not in QUOTABLE:
                    raise ApiError(payloads.PARAM_ERROR, "only TEXT, IMAGE or SHARE_POST messages can be quoted")
            if message_type == "IMAGE":
                media = self.media.get(content["media_id"])
                if media is None or media.open_id != grant.open_id or self.now() >= media.expires_at:
                    raise ApiError(payloads.NOT_EXIST, f"media {content['media_id']} does not exist or has expired")
                if not self.behaviour.image_send_capable:
                    raise ApiError(payloads.PERMISSION_ERROR, "image sending is not available in this conversation")
            if message_type == "SENDER_ACTION":
                self.count(f"sender_action_{content.lower()}")
                return {"message": {"message_id": ""}}, []
            self._apply_messaging_rules(conversation)
            message = Message(
                message_id=payloads.numeric_id(),
                conversation_id=recipient,
                direction="out",
                kind=kind,
                timestamp_ms=int(self.now() * 1000),
                body=content,
                source="API",
                referenced_message_id=referenced,
            )
            self.messages[message.message_id] = message
            self.sent.append(
                {
                    "message_id": message.message_id,
                    "account": grant.open_id,
                    "client_key": grant.client_key,
                    "conversation_id": recipient,
                    "user": conversation.user_id,
                    "message_type": message_type,
                    "content": content,
                    "referenced_message_id": referenced,
                    "at": self.now(),
                }
            )
            b = self.behaviour
            echo_first, echo, echo_s = b.echo_first, b.echo_api_sends, b.echo_delay_ms / 1000
            read, read_s = b.send_read, b.read_delay_ms / 1000
        self.count("messages_sent")
        echo_now = []
        if echo:
            job = lambda: self._post_message_event("im_send_msg", conversation, message)  # noqa: E731
            if echo_first:
                echo_now.append(job)
            else:
                self.scheduler.at(echo_s, job)
        if read:
            self.scheduler.at(read_s, lambda: self.mark_read(conversation.conversation_id, message.message_id))
        return {"message": {"message_id": message.message_id}}, echo_now

    def _apply_messaging_rules(self, conversation: Conversation) -> None:
        """§3.1: 10 messages until the user replies; 3 more once the 48 h window has closed (40064 beyond)."""
        b = self.behaviour
        closed = self.now() - conversation.last_user_message_at > b.reply_window_s
        if closed:
            if b.max_messages_after_window and conversation.sent_after_window >= b.max_messages_after_window:
                self.count("messages_blocked")
                raise ApiError(
                    payloads.BLOCKED_BY_MESSAGING_RULES,
                    f"the reply window closed and {conversation.sent_after_window} messages were sent after it",
                )
            conversation.sent_after_window += 1
        elif b.max_messages_before_reply and conversation.sent_since_user >= b.max_messages_before_reply:
            self.count("messages_blocked")
            raise ApiError(
                payloads.BLOCKED_BY_MESSAGING_RULES,
                f"{conversation.sent_since_user} messages were sent since the user last wrote",
            )
        conversation.sent_since_user += 1

    def upload_media(self, grant: Grant, media_type: str, data: bytes) -> dict:
        if media_type != "IMAGE":
            raise ApiError(payloads.PARAM_ERROR, "media_type must be IMAGE")
        if not data:
            raise ApiError(payloads.PARAM_ERROR, "file is required")
        mime = payloads.sniff_image(data)
        if mime not in self.behaviour.image_types:
            raise ApiError(
                payloads.FILE_TYPE_UNSUPPORTED, f"file type must be one of {', '.join(self.behaviour.image_types)}"
            )
        if len(data) > self.behaviour.image_max_bytes:
            raise ApiError(payloads.FILE_TOO_LARGE, f"file must be at most {self.behaviour.image_max_bytes} bytes")
        media = self._store_media(grant.open_id, mime, data)
        self.count("media_uploaded")
        return {"media_id": media.media_id}

    def _store_media(self, open_id: str, mime: str, data: bytes) -> Media:
        with self.lock:
            media = Media(
                media_id="v0" + secrets.token_hex(16),
                open_id=open_id,
                mime=mime,
                data=data,
                expires_at=self.now() + self.behaviour.media_ttl_s,
            )
            self.media[media.media_id] = media
            return media

    def download_url(self, grant: Grant, body: dict, base_url: str) -> dict:
        names = ("conversation_id", "message_id", "media_id")
        if not all(isinstance(body.get(n), str) and body.get(n) for n in names):
            raise ApiError(payloads.PARAM_ERROR, "conversation_id, message_id and media_id are required strings")
        if body.get("media_type") not in ("IMAGE", "VIDEO"):
            raise ApiError(payloads.PARAM_ERROR, "media_type must be IMAGE or VIDEO")
        with self.lock:
            message = self.messages.get(body["message_id"])
            if (
                message is None
                or message.conversation_id != body["conversation_id"]
                or (message.body or {}).get("media_id") != body["media_id"]
                or body["media_id"] not in self.media
                or self.media[body["media_id"]].open_id != grant.open_id
            ):
                raise ApiError(payloads.NOT_EXIST, "no such media in this conversation's message")
            token = secrets.token_urlsafe(24)
            self.downloads[token] = (body["media_id"], self.now() + 86400)
        return {"download_url": f"{base_url}/sandbox/media/{token}/"}

    def download(self, token: str, user_token: str) -> Media | None:
        """The media behind a download URL if `x-user` is a live access token of its business."""
        with self.lock:
            media_id, expires_at = self.downloads.get(token, ("", 0.0))
            media = self.media.get(media_id)
            access = self.tokens.get(user_token)
            if media is None or self.now() >= expires_at or access is None or access.kind != "access":
                return None
            if access.state(self.now()) != "active" or access.grant.open_id != media.open_id:
                return None
            return media

    def conversation_list(self, grant: Grant, query: dict[str, str]) -> dict:
        """§3.3: the account's conversations, the latest first, `limit` 1..100 from `cursor` (an offset here)."""
        kind = query.get("conversation_type", "")
        if kind not in ("SINGLE", "STRANGER"):
            raise ApiError(payloads.PARAM_ERROR, "conversation_type must be SINGLE or STRANGER")
        try:
            limit, cursor = int(query.get("limit") or 20), int(query.get("cursor") or 0)
        except ValueError:
            raise ApiError(payloads.PARAM_ERROR, "limit and cursor must be integers") from None
        if not 1 <= limit <= 100 or cursor < 0:
            raise ApiError(payloads.PARAM_ERROR, "limit must be 1-100 and cursor not negative")
        with self.lock:
            # Every sandbox conversation was opened by its user writing in: none is a STRANGER request.
            found = [c for c in self.conversations.values() if c.open_id == grant.open_id] if kind == "SINGLE" else []
            up_time = {c.conversation_id: self._last_message_ms(c.conversation_id) for c in found}
        found.sort(key=lambda c: up_time[c.conversation_id], reverse=True)
        page = found[cursor : cursor + limit]
        return {
            "conversations": [
                {
                    "conversation_id": c.conversation_id,
                    "up_time": up_time[c.conversation_id],
                    "referral": {"ad": [], "short_link": []},
                }
                for c in page
            ],
            "has_more": cursor + limit < len(found),
            "cursor": str(cursor + len(page)),
        }

    def _last_message_ms(self, conversation_id: str) -> int:
        return max((m.timestamp_ms for m in self.messages.values() if m.conversation_id == conversation_id), default=0)

    def content_list(self, grant: Grant, conversation_id: str) -> dict:
        """§3.3: the 20 most recent messages and the participants. The shape of `messages[]` is not documented:
        here each has `message_id`, `timestamp` (ms), uppercase `message_type`, `from_user`/`to_user` and the
        body under the lowercase type, as the webhooks carry it."""
        with self.lock:
            conversation = self.conversations.get(conversation_id)
            if conversation is None or conversation.open_id != grant.open_id:
                raise ApiError(payloads.NOT_EXIST, f"conversation {conversation_id} does not exist")
            account = self.accounts[grant.open_id]
            ours = sorted(
                (m for m in self.messages.values() if m.conversation_id == conversation_id),
                key=lambda m: m.timestamp_ms,
            )[-20:]
        business = {"id": account.open_id, "role": "BUSINESS_ACCOUNT"}
        user = {"id": conversation.user_id, "role": "PERSONAL_ACCOUNT"}
        messages = []
        for m in ours:
            sender, receiver = (user, business) if m.direction == "in" else (business, user)
            entry = {
                "message_id": m.message_id,
                "timestamp": m.timestamp_ms,
                "message_type": m.kind.upper() if m.kind in QUOTABLE else "OTHER",
                "from_user": sender,
                "to_user": receiver,
            }
            if m.body is not None:
                entry[m.kind] = m.body
            messages.append(entry)
        participants = [
            {**business, "display_name": account.display_name, "profile_image": "", "is_follower": False},
            {**user, "display_name": conversation.username, "profile_image": "", "is_follower": False},
        ]
        return {"messages": messages, "participants": participants}

    # --- webhook registration (§3.4) -------------------------------------------------------------------------

    def webhook_app(self, app_id: Any, secret: Any, event_type: Any) -> App:
        with self.lock:
            if not isinstance(app_id, str) or not app_id or not isinstance(secret, str) or not secret:
                raise ApiError(payloads.PARAM_ERROR, "app_id and secret are required strings")
            app = self.apps.get(app_id)
            if app is None or not secrets.compare_digest(app.client_secret, secret):
                raise ApiError(payloads.PERMISSION_ERROR, "app_id or secret is wrong")
            if event_type not in payloads.WEBHOOK_EVENT_TYPES:
                raise ApiError(
                    payloads.PARAM_ERROR, f"event_type must be one of {', '.join(payloads.WEBHOOK_EVENT_TYPES)}"
                )
            return app

    # --- simulated users and the business's own app ----------------------------------------------------------

    def conversation_for(
        self, open_id: str, user_id: str, *, username: str = "", conversation_id: str = ""
    ) -> Conversation:
        with self.lock:
            found = next(
                (c for c in self.conversations.values() if c.open_id == open_id and c.user_id == user_id), None
            )
            if found is None:
                found = Conversation(
                    conversation_id=conversation_id or f"tt-conv-{secrets.token_hex(8)}",
                    open_id=open_id,
                    user_id=user_id,
                    username=username or user_id,
                    last_user_message_at=0.0,
                )
                self.conversations[found.conversation_id] = found
            elif username:
                found.username = username
            return found

    def inbound(self, options: dict) -> dict:
        """A simulated user writes to a business account (`POST /sandbox/inbound`); returns ids and deliveries."""
        if not isinstance(options, dict):
            raise ValueError("the body must be a JSON object")
        account = self._account_option(options)
        user = options.get("user")
        if not isinstance(user, str) or not user:
            raise ValueError("user (the TikTok user's id) is a required string")
        kind, body = self._content_option(options, account.open_id)
        reply_to = str(options.get("reply_to") or "")
        self._targets(account.open_id)  # fail before anything is recorded
        with self.lock:
            conversation = self.conversation_for(
                account.open_id,
                user,
                username=str(options.get("username") or ""),
                conversation_id=str(options.get("conversation_id") or ""),
            )
            quoted = self.messages.get(reply_to)
            if reply_to and (quoted is None or quoted.conversation_id != conversation.conversation_id):
                raise ValueError(f"reply_to {reply_to} is not a message of this conversation")
            message_id = str(options.get("message_id") or payloads.numeric_id())
            message = Message(
                message_id=message_id,
                conversation_id=conversation.conversation_id,
                direction="in",
                kind=kind,
                timestamp_ms=int(self.now() * 1000),
                body=body,
                referenced_message_id=reply_to,
            )
            self.messages[message_id] = message
            conversation.last_user_message_at = self.now()
            conversation.sent_since_user = conversation.sent_after_window = 0
        self.count("inbound_messages")
        deliveries = self._post_message_event("im_receive_msg", conversation, message)
        answer = {"conversation_id": conversation.conversation_id, "message_id": message_id, "deliveries": deliveries}
        if body and "media_id" in body:
            answer["media_id"] = body["media_id"]
        return answer

    def business_message(self, options: dict) -> dict:
        """The business writes from the TikTok app (`POST /sandbox/business_message`): an `im_send_msg` echo with
        `message_tag.source` APP. Not held to the API's messaging caps."""
        if not isinstance(options, dict):
            raise ValueError("the body must be a JSON object")
        account = self._account_option(options)
        user = options.get("user")
        if not isinstance(user, str) or not user:
            raise ValueError("user (the TikTok user's id) is a required string")
        kind, body = self._content_option(options, account.open_id)
        self._targets(account.open_id)
        conversation = self.conversation_for(account.open_id, user)
        message = Message(
            message_id=payloads.numeric_id(),
            conversation_id=conversation.conversation_id,
            direction="out",
            kind=kind,
            timestamp_ms=int(self.now() * 1000),
            body=body,
            source=str(options.get("source") or "APP"),
        )
        with self.lock:
            self.messages[message.message_id] = message
        self.count("business_app_messages")
        deliveries = self._post_message_event("im_send_msg", conversation, message)
        return {
            "conversation_id": conversation.conversation_id,
            "message_id": message.message_id,
            "deliveries": deliveries,
        }

    def mark_read(self, conversation_id: str, message_id: str = "") -> list[dict]:
        """The user reads the conversation up to `message_id` (default: the newest business message)."""
        with self.lock:
            conversation = self.conversations.get(conversation_id)
            if conversation is None:
                raise ValueError(f"no conversation {conversation_id}")
            ours = [m for m in self.messages.values() if m.conversation_id == conversation_id and m.direction == "out"]
            upto = (
                self.messages.get(message_id) if message_id else max(ours, key=lambda m: m.timestamp_ms, default=None)
            )
            if upto is None:
                raise ValueError("nothing to read in this conversation")
            for m in ours:
                if m.timestamp_ms <= upto.timestamp_ms:
                    m.read = True
            content = payloads.read_content(
                conversation_id=conversation_id, user_id=conversation.user_id, last_read_timestamp_ms=upto.timestamp_ms
            )
        self.count("read_events")
        return self._post_event("im_mark_read_msg", conversation.open_id, content)

    def chatter(self, open_id: str, *, every_s: tuple[float, float], users: int = 4, first_s: float = 5) -> None:
        """Demo: a few simulated users write to the account now and then (the first soon), forever."""
        rng = random.Random()

        def tick() -> None:
            try:
                self.inbound(
                    {"account": open_id, "user": f"demo-user-{rng.randint(1, users)}", "text": rng.choice(DEMO_LINES)}
                )
            except ValueError as exc:  # not connected yet: try again later
                logger.info("tiktok sandbox: chatter not sent: %s", exc)
            self.scheduler.at(rng.uniform(*every_s), tick)

        self.scheduler.at(first_s, tick)

    def comment_chatter(
        self, open_id: str, *, every_s: tuple[float, float], users: int = 5, first_s: float = 20, video_id: str = ""
    ) -> str:
        """Demo: a video posted on the account, and simulated users commenting on it now and then (sometimes
        answering each other's comments), forever. Returns the video's id."""
        rng = random.Random()
        video_id = video_id or DEMO_VIDEO_ID
        with self.lock:
            self._video(open_id, video_id, caption=DEMO_VIDEO_CAPTION)

        def tick() -> None:
            with self.lock:
                earlier = [
                    c["comment_id"]
                    for c in self.comments.values()
                    if c["video_id"] == video_id and not c["parent_comment_id"] and not c["owner"]
                ]
            options = {
                "account": open_id,
                "user": f"demo-fan-{rng.randint(1, users)}",
                "video_id": video_id,
                "text": rng.choice(DEMO_COMMENTS),
            }
            if earlier and rng.random() < 0.3:
                options["parent_comment_id"] = rng.choice(earlier)
                options["text"] = rng.choice(DEMO_COMMENT_REPLIES)
            try:
                self.comment(options)
            except ValueError as exc:  # no COMMENT webhook yet (the app connects after the sandbox starts)
                logger.info("tiktok sandbox: comment chatter not sent: %s", exc)
            self.scheduler.at(rng.uniform(*every_s), tick)

        self.scheduler.at(first_s, tick)
        return video_id

    def _account_option(self, options: dict) -> Account:
        open_id = options.get("account")
        with self.lock:
            account = self.accounts.get(open_id) if isinstance(open_id, str) else None
        if account is None:
            raise ValueError(f"account must be a registered business account's open_id, not {open_id!r}")
        return account

    def _content_option(self, options: dict, open_id: str) -> tuple[str, dict | None]:
        """`text` | `image` (true) | `share_post` (true or an embed URL) | `other` (a type such as "sticker")."""
        chosen = [k for k in ("text", "image", "share_post", "other") if options.get(k)]
        if len(chosen) != 1:
            raise ValueError("give exactly one of text, image, share_post, other")
        kind = chosen[0]
        value = options[kind]
        if kind == "text":
            if not isinstance(value, str):
                raise ValueError("text must be a string")
            return "text", {"body": value}
        if kind == "image":
            media = self._store_media(open_id, "image/png", payloads.TINY_PNG)
            return "image", {"media_id": media.media_id}
        if kind == "share_post":
            return "share_post", {"embed_url": value if isinstance(value, str) else DEFAULT_SHARE_POST}
        if value not in OTHER_KINDS:
            raise ValueError(f"other must be one of {', '.join(sorted(OTHER_KINDS))}")
        return value, None

    # --- webhooks --------------------------------------------------------------------------------------------

    def video(self, options: dict) -> dict:
        """Put a video on a business account without a webhook (tests, the demo): {"account", "video_id"?,
        "caption"?}; an existing one keeps its figures and takes the new caption. `POST /sandbox/video` is
        `videos.post` (a new post, with TikTok's post webhook)."""
        if not isinstance(options, dict):
            raise ValueError("the body must be a JSON object")
        account = self._account_option(options)
        video_id = options.get("video_id") or payloads.numeric_id()
        if not isinstance(video_id, str) or not video_id.isdigit():
            raise ValueError("video_id is a string of digits")
        caption = options.get("caption", "")
        if not isinstance(caption, str) or len(caption) > 2200:
            raise ValueError("caption is a string of at most 2200 characters")
        with self.lock:
            video = self._video(account.open_id, video_id, caption=caption)
        self.count("videos")
        return {"video_id": video.video_id, "caption": video.caption}

    def _video(self, open_id: str, video_id: str, caption: str = ""):
        """The video, created (no figures yet) when a comment names one the sandbox has not seen (lock held)."""
        return self.videos.ensure(open_id, video_id, caption)

    def _comment_action_fault(self) -> None:
        with self.lock:
            if self.behaviour.take("refuse_comment_action_next"):
                raise ApiError(self.behaviour.refuse_comment_action_code, self.behaviour.refuse_comment_action_reason)

    def comment_delete(self, grant: Grant, body: dict) -> dict:
        """`POST /business/comment/delete/` (§6.2): only a comment the business wrote; a `comment.update` webhook
        (`delete`) follows."""
        self._comment_action_fault()
        with self.lock:
            found = self.comments.get(str(body.get("comment_id") or ""))
            if found is None or found["owner_id"] != grant.open_id or found.get("status") == "DELETED":
                raise ApiError(payloads.NOT_EXIST, f"no comment {body.get('comment_id')}")
            if not found["owner"]:
                raise ApiError(payloads.PARAM_ERROR, "only comments the business wrote can be deleted")
            found["status"] = "DELETED"
            parent = self.comments.get(found["parent_comment_id"] or "")
            if parent is not None:
                parent["replies"] = max(0, parent["replies"] - 1)
        self.count("comments_deleted")
        self._post_event("comment.update", grant.open_id, _comment_content(found, "delete", self.now()), "COMMENT")
        return {}

    def comment_reply_list(self, grant: Grant, query: dict[str, str]) -> dict:
        """`GET /business/comment/reply/list/` (§6.2): the replies to one comment, newest first, cursor paging."""
        video_id, comment_id = query.get("video_id") or "", query.get("comment_id") or ""
        if not video_id or not comment_id:
            raise ApiError(payloads.PARAM_ERROR, "video_id and comment_id are required")
        try:
            cursor, max_count = int(query.get("cursor") or 0), int(query.get("max_count") or 20)
        except ValueError:
            raise ApiError(payloads.PARAM_ERROR, "cursor and max_count are numbers") from None
        with self.lock:
            replies = [
                c
                for c in self.comments.values()
                if c["owner_id"] == grant.open_id
                and c["video_id"] == video_id
                and c["parent_comment_id"] == comment_id
                and c["status"] != "DELETED"
            ]
        replies.sort(key=lambda c: -c["create_time"])
        page = replies[cursor : cursor + max_count]
        return {
            "comments": [_public_comment(c) for c in page],
            "cursor": cursor + len(page),
            "has_more": cursor + len(page) < len(replies),
        }

    def comment(self, options: dict) -> dict:
        """A simulated user comments on a video of a business account (`POST /sandbox/comment`): the comment is
        listed and a signed `comment.update` webhook (§6.4) goes to the apps with a COMMENT callback."""
        if not isinstance(options, dict):
            raise ValueError("the body must be a JSON object")
        account = self._account_option(options)
        user, video_id, text = options.get("user"), options.get("video_id"), options.get("text")
        if not isinstance(user, str) or not user:
            raise ValueError("user (the commenter's unique_identifier) is a required string")
        if not isinstance(video_id, str) or not video_id.isdigit():
            raise ValueError("video_id is a required string of digits")
        if not isinstance(text, str) or not text or len(text) > COMMENT_MAX_CHARS:
            raise ValueError(f"text is a required string of at most {COMMENT_MAX_CHARS} characters")
        webhook = options.get("webhook", True)
        if not isinstance(webhook, bool):
            raise ValueError("webhook is true or false (false: TikTok's webhook is lost, only the list shows it)")
        parent_id = str(options.get("parent_comment_id") or "")
        if webhook:
            self._targets(account.open_id, "COMMENT")  # fail before anything is recorded
        now_ms = int(self.now() * 1000)
        comment_id = str(options.get("comment_id") or payloads.numeric_id())
        with self.lock:
            if parent_id:
                parent = self.comments.get(parent_id)
                if parent is None or parent["video_id"] != video_id or parent["owner_id"] != account.open_id:
                    raise ValueError(f"parent_comment_id {parent_id} is not a comment on video {video_id}")
                parent["replies"] += 1
            video = self._video(account.open_id, video_id)
            video.comments += 1
            created = _comment(
                comment_id, video_id, user, text, now_ms, account.open_id, username=str(options.get("username") or "")
            )
            created["parent_comment_id"] = parent_id
            self.comments[comment_id] = created
        self.count("comments")
        deliveries = []
        if webhook:
            content = _comment_content(created, "insert", now_ms / 1000)
            deliveries = self._post_event("comment.update", account.open_id, content, "COMMENT")
        else:
            self.count("comment_webhooks_dropped")
        return {"comment_id": comment_id, "video_id": video_id, "deliveries": deliveries}

    def comment_reply(self, grant: Grant, body: dict) -> dict:
        """`POST /business/comment/reply/create/` (§6.2): text ≤ 150 characters, to a comment of this account's
        video; `data` is the new comment."""
        for name in ("video_id", "comment_id", "text"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise ApiError(payloads.PARAM_ERROR, f"{name} is a required string")
        if len(body["text"]) > COMMENT_MAX_CHARS:
            raise ApiError(payloads.PARAM_ERROR, f"text is longer than {COMMENT_MAX_CHARS} characters")
        with self.lock:
            parent = self.comments.get(body["comment_id"])
            if parent is None or parent["video_id"] != body["video_id"] or parent["owner_id"] != grant.open_id:
                raise ApiError(payloads.PARAM_ERROR, f"no comment {body['comment_id']} on video {body['video_id']}")
            reply_id = payloads.numeric_id()
            reply = _comment(
                reply_id, body["video_id"], grant.open_id, body["text"], int(self.now() * 1000), grant.open_id
            )
            reply.update(owner=True, parent_comment_id=body["comment_id"])
            self.comments[reply_id] = reply
            parent["replies"] += 1
            self.sent.append({"message_id": reply_id, "kind": "comment_reply", "body": dict(body)})
            self.messages[reply_id] = Message(
                message_id=reply_id,
                conversation_id="",
                direction="out",
                kind="comment_reply",
                timestamp_ms=reply["create_time"] * 1000,
                body={"text": body["text"]},
            )
        self.count("comment_replies")
        return _public_comment(reply)

    def comment_hide(self, grant: Grant, body: dict) -> dict:
        """`POST /business/comment/hide/` (§6.2): `action` HIDE or UNHIDE a comment on this account's video; a
        `comment.update` webhook (`set_to_hidden` / `set_to_public`) follows, as TikTok reports changes."""
        action = body.get("action")
        if action not in ("HIDE", "UNHIDE"):
            raise ApiError(payloads.PARAM_ERROR, "action must be HIDE or UNHIDE")
        self._comment_action_fault()
        with self.lock:
            found = self.comments.get(str(body.get("comment_id") or ""))
            if found is None or found["video_id"] != body.get("video_id") or found["owner_id"] != grant.open_id:
                raise ApiError(
                    payloads.PARAM_ERROR, f"no comment {body.get('comment_id')} on video {body.get('video_id')}"
                )
            found["status"] = "HIDDEN" if action == "HIDE" else "PUBLIC"
        self.count("comments_hidden" if action == "HIDE" else "comments_unhidden")
        content = _comment_content(found, "set_to_hidden" if action == "HIDE" else "set_to_public", self.now())
        self._post_event("comment.update", grant.open_id, content, "COMMENT")
        return {}

    def comment_list(self, grant: Grant, query: dict[str, str]) -> dict:
        """`GET /business/comment/list/` (§6.2): a video's top-level comments, newest first, cursor paging;
        `include_replies` adds up to 3 replies each; `status` PUBLIC leaves hidden ones out."""
        video_id = query.get("video_id") or ""
        if not video_id:
            raise ApiError(payloads.PARAM_ERROR, "video_id is required")
        try:
            cursor, max_count = int(query.get("cursor") or 0), int(query.get("max_count") or 20)
        except ValueError:
            raise ApiError(payloads.PARAM_ERROR, "cursor and max_count are numbers") from None
        if not 1 <= max_count <= 30:
            raise ApiError(payloads.PARAM_ERROR, "max_count must be 1-30")
        with self.lock:
            mine = [
                c
                for c in self.comments.values()
                if c["owner_id"] == grant.open_id and c["video_id"] == video_id and c["status"] != "DELETED"
            ]
        top = sorted((c for c in mine if not c["parent_comment_id"]), key=lambda c: -c["create_time"])
        if query.get("status") == "PUBLIC":
            top = [c for c in top if c["status"] == "PUBLIC"]
        page = top[cursor : cursor + max_count]
        replies = query.get("include_replies") in ("true", "1")
        out = []
        for c in page:
            item = _public_comment(c)
            if replies:
                item["reply_list"] = [_public_comment(r) for r in mine if r["parent_comment_id"] == c["comment_id"]][:3]
            out.append(item)
        return {"comments": out, "cursor": cursor + len(page), "has_more": cursor + len(page) < len(top)}

    def _targets(self, open_id: str, event_type: str = "DIRECT_MESSAGE") -> list[App]:
        """The apps this account has authorized (a grant not revoked) that have a callback for `event_type`."""
        with self.lock:
            client_keys = {
                t.grant.client_key for t in self.tokens.values() if t.grant.open_id == open_id and not t.grant.revoked
            }
            apps = [self.apps[k] for k in sorted(client_keys) if k in self.apps and event_type in self.apps[k].webhooks]
        if not apps:
            raise ValueError(f"account {open_id} has not authorized an app with a {event_type} webhook URL")
        return apps

    def _post_message_event(self, event: str, conversation: Conversation, message: Message) -> list[dict]:
        account = self.accounts[conversation.open_id]
        business = (account.username, account.open_id, "business_account")
        user = (conversation.username, conversation.user_id, "personal_account")
        sender, receiver = (user, business) if message.direction == "in" else (business, user)
        content = payloads.message_content(
            conversation_id=conversation.conversation_id,
            message_id=message.message_id,
            timestamp_ms=message.timestamp_ms,
            kind=message.kind,
            body=message.body,
            from_name=sender[0],
            from_id=sender[1],
            from_role=sender[2],
            to_name=receiver[0],
            to_id=receiver[1],
            to_role=receiver[2],
            source=message.source,
            referenced_message_id=message.referenced_message_id,
        )
        return self._post_event(event, conversation.open_id, content)

    def _post_event(self, event: str, open_id: str, content: dict, event_type: str = "DIRECT_MESSAGE") -> list[dict]:
        try:
            apps = self._targets(open_id, event_type)
        except ValueError as exc:
            logger.warning("tiktok sandbox: %s not posted: %s", event, exc)
            self.count(f"webhooks_{event}_undeliverable")
            return []
        results = []
        for app in apps:
            payload = payloads.webhook_envelope(
                client_key=app.client_key,
                event=event,
                business_id=open_id,
                content=content,
                create_time_ms=self.behaviour.create_time_ms,
            )
            body = json.dumps(payload, ensure_ascii=False).encode()
            results.append(self._attempt(event, app, body, 1, event_type))
        return results

    def _attempt(self, event: str, app: App, body: bytes, attempt: int, event_type: str = "DIRECT_MESSAGE") -> dict:
        """POST one signed webhook; a non-200 answer is tried again after `webhook_retry_ms × 2^(n-1)` (§3.5)."""
        with self.lock:
            url, skew = app.webhooks.get(event_type, ""), self.behaviour.signature_skew_s
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "tiktok-sandbox",
            "TikTok-Signature": payloads.signature_header(app.client_secret, body, int(time.time()) - skew),
        }
        return self.post_webhook(
            url,
            body,
            headers,
            attempt,
            record={"event": event},
            counter=f"webhooks_{event}",
            what=f"tiktok sandbox: {event}",
            again=lambda: self._attempt(event, app, body, attempt + 1, event_type),
        )

    # --- control ---------------------------------------------------------------------------------------------

    def reset(self) -> None:
        super().reset()
        self.clock_offset_s = 0.0

    def control(self, body: dict) -> dict:
        """`{"reset": true}`, `{"set": {...}}` and the actions `expire_access_token`, `revoke_refresh_token`
        (an account's open_id, or "*" for all) and `advance_clock_s`."""
        with self.lock:
            self.control_switches(body, {"expire_access_token", "revoke_refresh_token", "advance_clock_s"})
            advance = body.get("advance_clock_s", 0)
            if isinstance(advance, bool) or not isinstance(advance, int | float) or advance < 0:
                raise ValueError("advance_clock_s must be a non-negative number")
            self.clock_offset_s += advance
            for action, kind in (("expire_access_token", "access"), ("revoke_refresh_token", "refresh")):
                if action not in body:
                    continue
                target = body[action]
                if target != "*" and target not in self.accounts:
                    raise ValueError(f'{action} takes an account\'s open_id or "*"')
                for token in self.tokens.values():
                    if token.kind == kind and token.status == "active" and target in ("*", token.grant.open_id):
                        if kind == "access":
                            token.expires_at = min(token.expires_at, self.now())
                        else:
                            token.status = "revoked"
                        self.count(f"control_{action}")
        return self.state()

    def state(self) -> dict:
        with self.lock:
            now = self.now()
            return {
                "now": now,
                "clock_offset_s": self.clock_offset_s,
                "behaviour": self.behaviour.as_dict(),
                "counters": dict(self.counters),
                "apps": [a.public() for a in self.apps.values()],
                "accounts": [a.public() for a in self.accounts.values()],
                # Sandbox tokens, not secrets of anyone: listed so that tests can follow them.
                "tokens": [
                    {
                        "kind": t.kind,
                        "token": t.value,
                        "client_key": t.grant.client_key,
                        "account": t.grant.open_id,
                        "scope": ",".join(t.grant.scope),
                        "issued_at": t.issued_at,
                        "expires_at": t.expires_at,
                        "status": t.state(now),
                    }
                    for t in self.tokens.values()
                ],
                "conversations": [c.public() for c in self.conversations.values()],
                "sent": [{**s, "read": self.messages[s["message_id"]].read} for s in list(self.sent)[-100:]],
                "webhooks": list(self.deliveries)[-50:],
                "videos": self.videos.state(),
                "posts": self.posting.public(),
                "scheduled_jobs": self.scheduler.pending(),
                "idle": self.scheduler.idle,
            }


COMMENT_MAX_CHARS = 150
DEMO_VIDEO_ID = "7400000000000000001"
DEMO_VIDEO_CAPTION = "Our spring collection is here 🌸 Which colour is your favourite? #newin #spring"
DEMO_COMMENTS = (
    "Love the green one 😍",
    "How much is the jacket?",
    "Do you ship to Canada?",
    "Is it true to size?",
    "When will the pink one be back in stock?",
    "Need this!!",
    "What fabric is it?",
)
DEMO_COMMENT_REPLIES = ("Same question!", "I got mine last week, it's great", "+1", "Following for the answer 👀")


def _comment(
    comment_id: str, video_id: str, user: str, text: str, at_ms: int, owner_id: str, username: str = ""
) -> dict:
    return {
        "comment_id": comment_id,
        "video_id": video_id,
        "unique_identifier": user,
        "user_id": user,
        "create_time": at_ms // 1000,
        "text": text,
        "likes": 0,
        "replies": 0,
        "owner": False,
        "liked": False,
        "pinned": False,
        "status": "PUBLIC",
        "username": username or user,
        "display_name": username or user,
        "parent_comment_id": "",
        "owner_id": owner_id,
    }


def _public_comment(comment: dict) -> dict:
    return {k: v for k, v in comment.items() if k != "owner_id"}


def _comment_content(comment: dict, action: str, at_s: float) -> dict:
    """The `content` of a `comment.update` webhook (§6.4): ids as JSON numbers."""
    return {
        "comment_id": int(comment["comment_id"]),
        "video_id": int(comment["video_id"]),
        "parent_comment_id": int(comment["parent_comment_id"] or 0),
        "comment_type": "reply" if comment["parent_comment_id"] else "comment",
        "comment_action": action,
        "timestamp": int(at_s * 1000),
        "unique_identifier": comment["unique_identifier"],
        "text": comment["text"],
    }


def cover_svg(video_id: str, caption: str) -> bytes:
    """A video cover for the sandbox's videos: TikTok's colours and the caption's first words."""
    from xml.sax.saxutils import escape

    hue = int(video_id[-3:] or "0") % 360
    words = escape(caption[:28] or f"Video {video_id[-4:]}")
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="180" height="320" viewBox="0 0 180 320">'
        f'<rect width="180" height="320" fill="hsl({hue},70%,25%)"/>'
        '<circle cx="90" cy="140" r="36" fill="#25f4ee" opacity=".85"/>'
        '<polygon points="80,122 80,158 110,140" fill="#fe2c55"/>'
        f'<text x="90" y="250" font-family="sans-serif" font-size="14" fill="#fff" text-anchor="middle">{words}</text>'
        "</svg>"
    ).encode()


def _message_body(message_type: str, body: dict, text_max: int) -> Any:
    """The part of a send body its `message_type` names, checked as §3.2 documents it."""
    present = {k for k in ("text", "image", "share_post", "template", "sender_action") if k in body}
    expected = message_type.lower()
    if present - {expected}:
        raise ApiError(
            payloads.PARAM_ERROR, f"a {message_type} message must not carry {', '.join(sorted(present - {expected}))}"
        )
    value = body.get(expected)
    if message_type == "TEXT":
        text = value.get("body") if isinstance(value, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise ApiError(payloads.PARAM_ERROR, "text.body is a required, non-empty string")
        if len(text) > text_max:
            raise ApiError(payloads.PARAM_ERROR, f"text.body is longer than {text_max} characters")
        return {"body": text}
    if message_type == "IMAGE":
        media_id = value.get("media_id") if isinstance(value, dict) else None
        if not isinstance(media_id, str) or not media_id:
            raise ApiError(payloads.PARAM_ERROR, "image.media_id is a required string (upload the image first)")
        return {"media_id": media_id}
    if message_type == "SHARE_POST":
        item_id = value.get("item_id") if isinstance(value, dict) else None
        if not isinstance(item_id, str) or not item_id:
            raise ApiError(payloads.PARAM_ERROR, "share_post.item_id is a required string")
        return {"item_id": item_id}
    if message_type == "SENDER_ACTION":
        if value not in ("TYPING", "MARK_READ"):
            raise ApiError(payloads.PARAM_ERROR, "sender_action must be TYPING or MARK_READ")
        return value
    return _template(value)


def _template(value: Any) -> dict:
    if not isinstance(value, dict) or value.get("type") not in ("QA_BUTTON_CARD", "QA_LINK_CARD"):
        raise ApiError(payloads.PARAM_ERROR, "template.type must be QA_BUTTON_CARD or QA_LINK_CARD")
    title, buttons = value.get("title"), value.get("buttons")
    if not isinstance(title, str) or not 0 < len(title) <= 40:
        raise ApiError(payloads.PARAM_ERROR, "template.title is a string of 1-40 characters")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        raise ApiError(payloads.PARAM_ERROR, "template.buttons holds 1-3 buttons")
    limit = 20 if value["type"] == "QA_BUTTON_CARD" else 40
    for button in buttons:
        ok = (
            isinstance(button, dict)
            and isinstance(button.get("title"), str)
            and 0 < len(button["title"]) <= limit
            and isinstance(button.get("id"), str)
            and 0 < len(button["id"]) <= 40
            and isinstance(button.get("type"), str)
        )
        if not ok:
            raise ApiError(payloads.PARAM_ERROR, f"each button needs a type, a title of 1-{limit} and an id of 1-40")
    return value
