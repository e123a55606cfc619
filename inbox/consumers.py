"""The agents' websocket: live hints for the inboxes an agent belongs to (REST stays the truth).

Two sockets: `/ws/inbox/` (the inbox page: an open tab makes its agent present for auto-assignment) and
`/ws/staff/` (staff pages outside the inbox — Ads, Posts, Uploads: their hints only, never presence)."""

from __future__ import annotations

import json
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from inbox.automation import assignment as routing
from inbox.automation.tasks import schedule_presence_expiry
from inbox.live import SESSION_REVOKED, inbox_group, staff_group, user_group
from inbox.selectors import inbox_ids_visible_to

# Close codes in the 4000 range are the application's own.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403  # a staff page's socket opened by a user who is not staff
CLOSE_BAD_FRAME = 4400  # a frame that is not JSON text (binary, malformed, nested past the parser's limit)
CLOSE_REVOKED = 4003  # logout, deactivation or a membership change: reconnect to be authorized afresh

logger = logging.getLogger(__name__)


class InboxConsumer(AsyncJsonWebsocketConsumer):
    """Joins the groups of the user's inboxes (all inboxes for admins), the user's own group, and staff's;
    an open socket makes the user present (routing: online agents with a tab open get conversations)."""

    marks_presence = True

    def may_connect(self, user) -> bool:
        return True

    async def groups_for(self, user) -> tuple[list[str], int]:
        """The groups to join, and how many of them are inboxes' (the hello says so)."""
        inbox_groups = [inbox_group(pk) for pk in await database_sync_to_async(inbox_ids_visible_to)(user)]
        # Staff also hear what concerns no inbox (ad reviews, for the Ads page).
        return [user_group(user.pk), *([staff_group()] if user.is_staff else []), *inbox_groups], len(inbox_groups)

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not self.may_connect(user):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.groups_joined, inboxes = await self.groups_for(user)
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        if self.marks_presence:
            # Present before the hello: the page reloads its own availability on hello and must see this tab counted.
            self.present_user_id = user.pk
            await self._presence(routing.presence_connected, user.pk)
        await self.accept()
        await self.send_json({"type": "hello", "inboxes": inboxes})

    async def disconnect(self, code: int) -> None:
        await self._leave_groups()
        user_id, self.present_user_id = getattr(self, "present_user_id", None), None
        if user_id is not None:
            await self._presence(routing.presence_disconnected, user_id)
            await database_sync_to_async(schedule_presence_expiry)()

    async def _presence(self, change, user_id: int) -> None:
        """Availability follows open tabs; a database hiccup must not close or refuse the socket."""
        try:
            await database_sync_to_async(change)(user_id)
        except Exception:  # noqa: BLE001
            logger.warning("presence of user %s not recorded", user_id, exc_info=True)

    async def _leave_groups(self) -> None:
        groups, self.groups_joined = getattr(self, "groups_joined", []), []
        for group in groups:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        """Our page sends small JSON text frames; anything else closes this socket (one warning, no traceback)."""
        try:
            if not text_data:
                raise ValueError("binary or empty frame")
            content = json.loads(text_data)
        except (ValueError, RecursionError) as exc:
            user = self.scope.get("user")
            logger.warning(
                "websocket of user %s closed: frame is not JSON text (%s)",
                getattr(user, "pk", None),
                type(exc).__name__,
            )
            await self.close(code=CLOSE_BAD_FRAME)
            return
        await self.receive_json(content, **kwargs)

    async def receive_json(self, content, **kwargs) -> None:
        # Clients only listen; a ping keeps proxies from closing an idle socket.
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})
            if getattr(self, "present_user_id", None) is not None:
                await self._presence(routing.presence_heartbeat, self.present_user_id)

    async def dispatch(self, message: dict) -> None:
        """Live events go straight to their handler: channels' own dispatch first runs `close_old_connections` in
        the one thread-sensitive executor, a thread hop per frame per socket although these handlers touch no
        database (the largest part of a tick's fan-out to 100 sockets, bench/README.md "Ticks"), and one socket's
        slow database call would hold every socket's frames. Everything else goes the usual way."""
        handler = self._live_handlers.get(message.get("type"))
        if handler is not None:
            await handler(self, message)
        else:
            await super().dispatch(message)

    async def inbox_event(self, message: dict) -> None:
        await self._deliver(message["event"])

    async def inbox_events(self, message: dict) -> None:
        """Events published together (a webhook batch): still one frame each, in order."""
        for event in message["events"]:
            await self._deliver(event)

    async def _deliver(self, event: dict) -> None:
        if getattr(self, "revoked", False):
            return  # closing: nothing more reaches this socket
        if event.get("type") == SESSION_REVOKED:
            self.revoked = True
            await self._leave_groups()
            await self.close(code=CLOSE_REVOKED)
            return
        if event.get("type") == "agent.availability" and event.get("user_id") == getattr(self, "present_user_id", 0):
            return  # the agent's own tabs know their status from REST; the hint is for their colleagues
        await self.send_json(event)


class StaffPageConsumer(InboxConsumer):
    """Staff pages outside the inbox (`/ws/staff/`: Ads, Uploads): the user's own group (post progress, revocation)
    and staff's (ad reviews); with `with_inboxes` (`/ws/staff/inboxes/`, Posts) the user's inboxes' too. Such a page
    open is not an agent at the inbox: it never makes the user present, so auto-assignment offers them nothing."""

    marks_presence = False

    def __init__(self, *args, with_inboxes: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.with_inboxes = with_inboxes

    def may_connect(self, user) -> bool:
        return user.is_staff

    async def groups_for(self, user) -> tuple[list[str], int]:
        if self.with_inboxes:
            return await super().groups_for(user)
        return [user_group(user.pk), staff_group()], 0


InboxConsumer._live_handlers = {"inbox.event": InboxConsumer.inbox_event, "inbox.events": InboxConsumer.inbox_events}
