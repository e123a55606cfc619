"""TikTok's Business Messaging API as an `inbox.providers.Backend` (provider name `tiktok_direct`).

A conversation's contact's `endpoint_id` is the connection's account id (TikTok's `business_id`), its
`provider_conversation_id` TikTok's conversation id. Each call takes a usable access token (refreshed first if
expired by our clock); TikTok answering "invalid/expired token" refreshes once and tries again. A connection
waiting for re-authorization holds replies (HELD: queued, untried) and the composer shows why; a disconnected one
fails them (UNAVAILABLE).
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.cache import cache
from django.db.models.signals import post_delete, post_save

from inbox import providers
from inbox.models import Conversation, Message, WebhookEvent
from tiktok_channel.direct import client, tokens, webhooks
from tiktok_channel.direct.client import TikTokError
from tiktok_channel.direct.models import DIRECT_PROVIDER, TikTokApp, TikTokConnection
from tiktok_channel.models import CHANNEL

State = TikTokConnection.State

# The composer's lock reasons, per connection state (`send_blocked`).
BLOCKED = {
    State.REAUTHORIZATION_NEEDED: (
        "channel_reauthorization_needed",
        "This inbox's TikTok account must be reconnected by an admin. Replies already written wait and are "
        "sent once it is reconnected.",
    ),
    State.DISCONNECTED: ("channel_disconnected", "This inbox's TikTok account was disconnected by an admin."),
}
MISSING = ("channel_disconnected", "This conversation's TikTok account is not connected.")

# Connection states by account id in the shared cache (Redis), for `send_blocked` on every row of a list: one cache
# read instead of a query. Saving a connection (or its app) deletes its entry, for every process at once, so a
# composer refetched after a state change sees the new state.
STATE_CACHE_SECONDS = 300
MISSING_STATE = "missing"


def state_cache_key(account_id: str) -> str:
    return f"tiktok_direct:state:{account_id}"


def forget_connection_state(sender=None, instance=None, **_kwargs) -> None:
    if isinstance(instance, TikTokConnection):
        cache.delete(state_cache_key(instance.account_id))
    elif isinstance(instance, TikTokApp):
        accounts = TikTokConnection.objects.filter(app=instance).values_list("account_id", flat=True)
        cache.delete_many([state_cache_key(account) for account in accounts])


post_save.connect(forget_connection_state, sender=TikTokConnection, dispatch_uid="tiktok-direct-state-cache")
post_delete.connect(forget_connection_state, sender=TikTokConnection, dispatch_uid="tiktok-direct-state-cache-del")
post_save.connect(forget_connection_state, sender=TikTokApp, dispatch_uid="tiktok-direct-state-cache-app")


def connection_state(account_id: str) -> str | None:
    """The connection's state (DISCONNECTED when its app is switched off), or None without a connection."""
    key = state_cache_key(account_id)
    cached = cache.get(key)
    if cached is not None:
        return None if cached == MISSING_STATE else cached
    row = TikTokConnection.objects.filter(account_id=account_id).values_list("state", "app__active").first()
    state = None if row is None else (row[0] if row[1] else State.DISCONNECTED)
    cache.set(key, state or MISSING_STATE, timeout=STATE_CACHE_SECONDS)
    return state


def message_body(message: Message, *, business_id: str, media_id: str = "") -> dict:
    """The JSON of `POST /business/message/send/` for one reply (../shared/tiktok/README.md §3.2)."""
    conversation = message.conversation
    body: dict = {
        "business_id": business_id,
        "recipient_type": "CONVERSATION",
        "recipient": conversation.provider_conversation_id or conversation.contact.channel_user_id,
    }
    if message.type == Message.Type.TEXT:
        body.update(message_type="TEXT", text={"body": message.text})
        if message.quoted_provider_message_id:
            body["referenced_message_info"] = {"referenced_message_id": message.quoted_provider_message_id}
    elif message.type == Message.Type.IMAGE:
        body.update(message_type="IMAGE", image={"media_id": media_id})
    elif message.type == Message.Type.SHARE_POST:
        body.update(message_type="SHARE_POST", share_post={"item_id": message.post_id})
    else:
        raise ValueError(f"cannot send a {message.type} message")
    return body


def _unavailable(description: str) -> providers.SendResult:
    return providers.SendResult(
        providers.UNAVAILABLE, error={"name": "CONNECTION_UNAVAILABLE", "description": description, "permanent": True}
    )


def _held(connection: TikTokConnection) -> providers.SendResult:
    return providers.SendResult(
        providers.HELD,
        error={"name": "REAUTHORIZATION_NEEDED", "description": f"TikTok account {connection} must be reconnected"},
    )


def _failure(exc: TikTokError) -> providers.SendResult:
    if exc.kind in (client.THROTTLED, client.RETRYABLE):
        return providers.SendResult(providers.RETRYABLE, error=exc.as_error(), retry_after=exc.retry_after)
    return providers.SendResult(providers.PERMANENT, error=exc.as_error())


# A public reply to a comment: text only, TikTok's 150-character limit (§6.2), no reply window or quota (none is
# documented for comments), no typing or read events.
COMMENT_REPLY_MAX_CHARS = 150
COMMENT_CAPABILITIES = providers.Capabilities(
    content_types=(Message.Type.TEXT,),
    quoting=True,  # the reply answers the quoted comment (default: the user's latest)
    user_initiated=False,
    typing_events=False,
    read_receipts=False,
    conversions=False,
    delivery_reports=False,
    max_text_chars=COMMENT_REPLY_MAX_CHARS,
)


def comment_reply_body(message: Message, *, business_id: str) -> dict | None:
    """The JSON of `POST /business/comment/reply/create/`: the quoted comment, else the user's latest comment in
    this conversation (its video). None when the conversation holds no comment to answer."""
    conversation = message.conversation
    comment_id = message.quoted_provider_message_id
    if not comment_id:
        comment_id = (
            Message.objects.filter(conversation=conversation, direction=Message.Direction.IN)
            .exclude(provider_message_id=None)
            .order_by("-sent_at", "-pk")
            .values_list("provider_message_id", flat=True)
            .first()
        )
    if not comment_id:
        return None
    return {
        "business_id": business_id,
        "video_id": conversation.subject_id,
        "comment_id": comment_id,
        "text": message.text,
    }


class DirectBackend(providers.Backend):
    name = DIRECT_PROVIDER
    channel = CHANNEL
    capabilities = providers.Capabilities(
        content_types=(Message.Type.TEXT, Message.Type.IMAGE, Message.Type.SHARE_POST),
        quoting=True,
        user_initiated=True,
        typing_events=True,
        read_receipts=True,
        conversions=False,
        delivery_reports=False,  # TikTok reports reads only (im_mark_read_msg)
    )

    def capabilities_for(self, conversation: providers.ConversationFacts) -> providers.Capabilities:
        if conversation.kind == Conversation.Kind.COMMENT:
            return COMMENT_CAPABILITIES
        return self.capabilities

    def send_blocked(self, conversation: providers.ConversationFacts) -> tuple[str, str] | None:
        state = connection_state(conversation.endpoint_id)
        if state is None:
            return MISSING
        return BLOCKED.get(state)

    def _connection(self, conversation: Conversation) -> TikTokConnection | None:
        return (
            TikTokConnection.objects.select_related("app").filter(account_id=conversation.contact.endpoint_id).first()
        )

    def _call(self, connection: TikTokConnection, do: Callable[[str], providers.SendResult]) -> providers.SendResult:
        """Run `do(access_token)`; on "invalid/expired token" refresh once and run it again. A connection that
        turns out to need re-authorization holds the message."""
        if not connection.app.active or connection.state == State.DISCONNECTED:
            return _unavailable(f"TikTok account {connection} is not connected")
        token = tokens.usable_access_token(connection)
        if token is None:
            return (
                _held(connection)
                if connection.state == State.REAUTHORIZATION_NEEDED
                else _unavailable(f"TikTok account {connection} is not connected")
            )
        for refreshed in (False, True):
            try:
                return do(token)
            except TikTokError as exc:
                if exc.kind == client.REAUTHORIZE:
                    tokens.mark_reauthorization_needed(connection.pk, f"TikTok refused a call: {exc}")
                    return _held(connection)
                if exc.kind != client.TOKEN_INVALID:
                    return _failure(exc)
                if refreshed:
                    tokens.mark_reauthorization_needed(connection.pk, f"TikTok refused a fresh token: {exc}")
                    return _held(connection)
                if tokens.refresh_connection(connection.pk, stale_access_token=token) == tokens.TRANSIENT:
                    return providers.SendResult(providers.RETRYABLE, error=exc.as_error())
                connection.refresh_from_db()
                if connection.state != State.CONNECTED or not connection.access_token:
                    return (
                        _held(connection)
                        if connection.state == State.REAUTHORIZATION_NEEDED
                        else _unavailable(f"TikTok account {connection} is not connected")
                    )
                token = connection.access_token
        raise AssertionError("unreachable")

    def send(self, message: Message, *, validity_seconds: int) -> providers.SendResult:
        connection = self._connection(message.conversation)
        if connection is None:
            return _unavailable(f"no TikTok connection for account {message.conversation.contact.endpoint_id}")
        if message.conversation.kind == Conversation.Kind.COMMENT:
            return self._send_comment_reply(connection, message)
        image: tuple[bytes, str] | None = None
        if message.type == Message.Type.IMAGE:
            try:
                image = client.image_bytes(message.media_url)
            except TikTokError as exc:
                return _failure(exc)

        def do(token: str) -> providers.SendResult:
            media_id = ""
            if image is not None:
                media_id = client.upload_image(
                    connection.app,
                    access_token=token,
                    business_id=connection.account_id,
                    content=image[0],
                    filename=image[1],
                )
            body = message_body(message, business_id=connection.account_id, media_id=media_id)
            try:
                tiktok_id = client.send_message(connection.app, access_token=token, body=body)
            except TikTokError as exc:
                if exc.kind == client.DUPLICATE:
                    return providers.SendResult(providers.ACCEPTED, duplicate=True)
                raise
            return providers.SendResult(
                providers.ACCEPTED, provider_message_id=tiktok_id, status={"messageId": tiktok_id} if tiktok_id else {}
            )

        return self._call(connection, do)

    def _send_comment_reply(self, connection: TikTokConnection, message: Message) -> providers.SendResult:
        body = comment_reply_body(message, business_id=connection.account_id)
        if body is None or message.type != Message.Type.TEXT:
            return providers.SendResult(
                providers.PERMANENT,
                error={"name": "NO_COMMENT", "description": "no comment to reply to", "permanent": True},
            )

        def do(token: str) -> providers.SendResult:
            comment_id = client.reply_to_comment(connection.app, access_token=token, body=body)
            return providers.SendResult(
                providers.ACCEPTED,
                provider_message_id=comment_id,
                status={"messageId": comment_id, "commentId": comment_id} if comment_id else {},
            )

        return self._call(connection, do)

    def message_actions(self, message: providers.MessageFacts) -> tuple[str, ...]:
        """On a comment conversation: hide / unhide a user's comment; delete one of our own replies once TikTok
        has it (§6.2: the business can delete only comments it wrote)."""
        if message.conversation_kind != Conversation.Kind.COMMENT:
            return ()
        if message.direction == Message.Direction.IN and message.provider_message_id:
            hidden = message.public_state == Message.PublicState.HIDDEN
            return (providers.ACTION_UNHIDE,) if hidden else (providers.ACTION_HIDE,)
        if message.direction == Message.Direction.OUT and (message.provider_status or {}).get("messageId"):
            return (providers.ACTION_DELETE,)
        return ()

    def message_action(self, message: Message, action: str) -> providers.SendResult:
        conversation = message.conversation
        connection = self._connection(conversation)
        if connection is None:
            return _unavailable(f"no TikTok connection for account {conversation.contact.endpoint_id}")

        def do(token: str) -> providers.SendResult:
            if action == providers.ACTION_DELETE:
                client.delete_comment(
                    connection.app,
                    access_token=token,
                    business_id=connection.account_id,
                    comment_id=str(message.provider_status["messageId"]),
                )
            else:
                client.hide_comment(
                    connection.app,
                    access_token=token,
                    business_id=connection.account_id,
                    video_id=conversation.subject_id,
                    comment_id=message.provider_message_id,
                    hide=action == providers.ACTION_HIDE,
                )
            return providers.SendResult(providers.ACCEPTED)

        result = self._call(connection, do)
        said = (result.error or {}).get("tiktok_message", "")
        if said and said not in result.error.get("description", ""):  # TikTok's own reason, for the agent
            error = {**result.error, "description": f"{result.error.get('description')}: {said}"}
            result = providers.SendResult(result.outcome, error=error, retry_after=result.retry_after)
        return result

    def send_event(self, conversation: Conversation, kind: str) -> providers.SendResult:
        connection = self._connection(conversation)
        if connection is None or connection.state != State.CONNECTED:
            return _unavailable("the TikTok account is not connected")
        action = "TYPING" if kind == providers.EVENT_TYPING else "MARK_READ"

        def do(token: str) -> providers.SendResult:
            body = {
                "business_id": connection.account_id,
                "recipient_type": "CONVERSATION",
                "recipient": conversation.provider_conversation_id or conversation.contact.channel_user_id,
                "message_type": "SENDER_ACTION",
                "sender_action": action,
            }
            client.send_message(connection.app, access_token=token, body=body)
            return providers.SendResult(providers.ACCEPTED)

        return self._call(connection, do)

    def process_webhooks(self, events: list[WebhookEvent]) -> None:
        webhooks.process_ledger(events)

    def replay_webhook(self, event: WebhookEvent) -> None:
        webhooks.replay_event(event)
