"""Availability and auto-assignment, driven by signed Infobip webhooks (the real ingest) and the agents' API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from inbox import domain_events as de
from inbox.automation import assignment
from inbox.automation.models import AgentAvailability, ConversationTeam, InboxRouting, Team
from inbox.models import AuditLog, Conversation
from inbox.services import conversation_set_status
from tests.inbox.automation.helpers import user_writes
from tests.inbox.helpers import api

pytestmark = pytest.mark.django_db


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def agents(django_user_model, inbox):
    made = []
    for name in ("ann", "ben"):
        user = django_user_model.objects.create_user(name, password="pw")
        inbox.members.add(user)
        made.append(user)
    return made


@pytest.fixture
def auto(inbox):
    return InboxRouting.objects.create(inbox=inbox, auto_assign=True)


def online(user, *, capacity: int = 10) -> None:
    assignment.presence_connected(user.pk)
    AgentAvailability.objects.filter(user=user).update(capacity=capacity)
    assignment.availability_set(user=user, status="online")


def test_new_conversations_go_to_the_agent_with_fewest_open_round_robin_among_equals(
    client, account, agents, auto, django_capture_on_commit_callbacks
):
    ann, ben = agents
    online(ann)
    online(ben)
    with django_capture_on_commit_callbacks(execute=True):
        first = user_writes(client, account, "u1")
        second = user_writes(client, account, "u2")
    first.refresh_from_db()
    second.refresh_from_db()
    assert {first.assignee_id, second.assignee_id} == {ann.pk, ben.pk}  # 1 each, never 2 for one
    # Both have one open: round-robin picks the one assigned longest ago, the first one's agent.
    with django_capture_on_commit_callbacks(execute=True):
        third = user_writes(client, account, "u3")
    assert Conversation.objects.get(pk=third.pk).assignee_id == first.assignee_id
    audit = AuditLog.objects.filter(action="conversation.assigned", conversation=third).get()
    assert audit.actor is None and audit.actor_kind == "system"
    # A later message of an assigned conversation keeps its assignee.
    with django_capture_on_commit_callbacks(execute=True):
        user_writes(client, account, "u3", "again")
    assert Conversation.objects.get(pk=third.pk).assignee_id == first.assignee_id


def test_without_auto_assignment_nothing_is_assigned(
    client, account, agents, inbox, django_capture_on_commit_callbacks
):
    online(agents[0])
    InboxRouting.objects.create(inbox=inbox, auto_assign=False)
    with django_capture_on_commit_callbacks(execute=True):
        conversation = user_writes(client, account, "u1")
    assert Conversation.objects.get(pk=conversation.pk).assignee_id is None


def test_capacity_is_never_exceeded_and_a_waiting_conversation_gets_the_freed_place(
    client, account, agents, auto, django_capture_on_commit_callbacks
):
    ann, _ = agents
    online(ann, capacity=1)
    with django_capture_on_commit_callbacks(execute=True):
        first = user_writes(client, account, "u1")
        waiting = user_writes(client, account, "u2")
    assert Conversation.objects.get(pk=first.pk).assignee_id == ann.pk
    assert Conversation.objects.get(pk=waiting.pk).assignee_id is None  # ann is full, ben never connected
    with django_capture_on_commit_callbacks(execute=True):
        conversation_set_status(conversation_id=first.pk, status="resolved", actor=ann)
    assert Conversation.objects.get(pk=waiting.pk).assignee_id == ann.pk


def test_busy_and_offline_agents_get_nothing_until_one_goes_online(
    client, account, agents, auto, django_capture_on_commit_callbacks
):
    ann, ben = agents
    online(ann)
    api(ann).post("/api/v1/availability/", {"status": "busy"}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        conversation = user_writes(client, account, "u1")
    assert Conversation.objects.get(pk=conversation.pk).assignee_id is None  # busy; ben never connected
    with django_capture_on_commit_callbacks(execute=True):
        response = api(ann).post("/api/v1/availability/", {"status": "online"}, format="json")
    assert response.status_code == 200
    assert response.json() == {"status": "online", "effective_status": "online", "capacity": 10}
    assert Conversation.objects.get(pk=conversation.pk).assignee_id == ann.pk


def test_a_reopened_conversation_is_assigned_again(client, account, agents, auto, django_capture_on_commit_callbacks):
    ann, _ = agents
    with django_capture_on_commit_callbacks(execute=True):
        conversation = user_writes(client, account, "u1")
    conversation_set_status(conversation_id=conversation.pk, status="resolved", actor=None)
    assert Conversation.objects.get(pk=conversation.pk).assignee_id is None
    online(ann)
    with django_capture_on_commit_callbacks(execute=True):
        user_writes(client, account, "u1", "one more thing")
    conversation.refresh_from_db()
    assert (conversation.status, conversation.assignee_id) == ("open", ann.pk)


def test_a_team_conversation_goes_to_a_team_member_only(
    client, account, agents, auto, inbox, django_capture_on_commit_callbacks
):
    ann, ben = agents
    billing = Team.objects.create(inbox=inbox, name="Billing")
    billing.members.add(ben)
    with django_capture_on_commit_callbacks(execute=True):
        conversation = user_writes(client, account, "u1")
    ConversationTeam.objects.create(conversation=conversation, team=billing)
    online(ann)  # not in the team: the conversation keeps waiting for billing
    assert Conversation.objects.get(pk=conversation.pk).assignee_id is None
    with django_capture_on_commit_callbacks(execute=True):
        online(ben)
    assert Conversation.objects.get(pk=conversation.pk).assignee_id == ben.pk


def test_last_tab_closed_is_offline_after_the_grace_period_only(agents, settings, domain_events):
    ann, _ = agents
    settings.AGENT_OFFLINE_GRACE_SECONDS = 60
    assignment.presence_connected(ann.pk)
    assignment.presence_connected(ann.pk)  # two tabs
    assignment.presence_disconnected(ann.pk)
    now = timezone.now()
    AgentAvailability.objects.filter(user=ann).update(last_heartbeat_at=now + timedelta(seconds=110))  # it pings
    assert assignment.presence_expire(now=now + timedelta(seconds=120)) == []  # one tab still open
    assignment.presence_disconnected(ann.pk)
    assert assignment.presence_expire(now=now + timedelta(seconds=30)) == []  # within the grace period
    assert AgentAvailability.objects.get(user=ann).effective_status == "online"
    assert assignment.presence_expire(now=now + timedelta(seconds=120)) == [ann.pk]
    row = AgentAvailability.objects.get(user=ann)
    assert (row.status, row.effective_status) == ("online", "offline")  # the choice is kept for the next tab
    changes = [e for e in domain_events if isinstance(e, de.AgentAvailabilityChanged)]
    assert [(e.user_id, e.status) for e in changes][-1] == (ann.pk, "offline")
    assignment.presence_connected(ann.pk)
    assert AgentAvailability.objects.get(user=ann).effective_status == "online"


def test_availability_api_refuses_bad_input_and_lists_members(agents, inbox):
    ann, ben = agents
    online(ann)
    response = api(ann).post("/api/v1/availability/", {"status": "away"}, format="json")
    assert response.status_code == 422 and "status" in response.json()["fields"]
    members = api(ann).get(f"/api/v1/inboxes/{inbox.pk}/availability/").json()
    assert {(m["id"], m["status"]) for m in members} == {(ann.pk, "online"), (ben.pk, "offline")}
    assert api(ann).get("/api/v1/availability/").json()["effective_status"] == "online"


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_the_websocket_makes_an_agent_present_and_closing_it_starts_the_grace_period(django_user_model):
    from asgiref.sync import sync_to_async
    from channels.testing.websocket import WebsocketCommunicator

    from inbox.consumers import InboxConsumer

    user = await sync_to_async(django_user_model.objects.create_user)("cat", password="pw")
    communicator = WebsocketCommunicator(InboxConsumer.as_asgi(), "/ws/inbox/")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected and (await communicator.receive_json_from())["type"] == "hello"
    row = await sync_to_async(AgentAvailability.objects.get)(user=user)
    assert (row.present, row.open_sockets, row.effective_status) == (True, 1, "online")
    await communicator.disconnect()
    row = await sync_to_async(AgentAvailability.objects.get)(user=user)
    assert (row.present, row.open_sockets) == (True, 0) and row.last_disconnect_at is not None
    later = row.last_disconnect_at + timedelta(seconds=61)
    assert await sync_to_async(assignment.presence_expire)(now=later) == [user.pk]


def test_an_agent_whose_sockets_died_with_a_server_goes_offline_when_the_pings_stop(agents, settings):
    ann, ben = agents
    settings.AGENT_OFFLINE_GRACE_SECONDS = 60
    assignment.presence_connected(ann.pk)  # counted open, never closed: the server crashed
    assignment.presence_connected(ben.pk)
    now = timezone.now()
    assert assignment.presence_expire(now=now + timedelta(seconds=60)) == []  # within grace + a ping interval
    assignment.presence_heartbeat(ben.pk)  # ben's page still pings
    later = now + timedelta(seconds=95)
    AgentAvailability.objects.filter(user=ben).update(last_heartbeat_at=now + timedelta(seconds=50))
    assert assignment.presence_expire(now=later) == [ann.pk]
    row = AgentAvailability.objects.get(user=ann)
    assert (row.effective_status, row.open_sockets) == ("offline", 0)
    assert AgentAvailability.objects.get(user=ben).effective_status == "online"


def test_routing_settings_api_admins_change_agents_read_and_turning_on_assigns_the_waiting(
    client, account, agents, inbox, django_user_model, django_capture_on_commit_callbacks
):
    ann, _ = agents
    admin = django_user_model.objects.create_superuser("boss", password="pw")
    with django_capture_on_commit_callbacks(execute=True):
        waiting = user_writes(client, account, "u1")
    online(ann)
    assert Conversation.objects.get(pk=waiting.pk).assignee_id is None  # auto-assignment is off
    url = f"/api/v1/inboxes/{inbox.pk}/routing/"
    assert api(ann).get(url).json()["open_now"] is True
    assert api(ann).patch(url, {"auto_assign": True}, format="json").status_code == 403
    bad = api(admin).patch(url, {"time_zone": "Mars/Olympus"}, format="json")
    assert bad.status_code == 422 and "time_zone" in bad.json()["fields"]
    with django_capture_on_commit_callbacks(execute=True):
        response = api(admin).patch(
            url,
            {"auto_assign": True, "first_response_minutes": 30, "weekly_hours": {"mon": [["09:00", "17:00"]]}},
            format="json",
        )
    assert response.status_code == 200 and response.json()["auto_assign"] is True
    assert response.json()["weekly_hours"] == {"mon": [["09:00", "17:00"]]}
    assert Conversation.objects.get(pk=waiting.pk).assignee_id == ann.pk


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_a_staff_member_with_only_staff_pages_open_is_not_offered_conversations(
    client, account, inbox, django_user_model
):
    """Ads, Uploads and Posts open their own socket (/ws/staff/…): their hints, never presence. Only the inbox
    page's socket makes an online agent a candidate for auto-assignment."""
    from asgiref.sync import sync_to_async
    from channels.routing import URLRouter
    from channels.testing.websocket import WebsocketCommunicator

    from inbox.routing import websocket_urlpatterns

    def setup():
        user = django_user_model.objects.create_user("sam", password="pw", is_staff=True)
        inbox.members.add(user)
        InboxRouting.objects.create(inbox=inbox, auto_assign=True)
        assignment.availability_set(user=user, status="online")  # chosen earlier, in another session
        return user

    sam = await sync_to_async(setup)()

    async def open_socket(path: str) -> tuple[WebsocketCommunicator, dict]:
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
        communicator.scope["user"] = sam
        connected, _ = await communicator.connect()
        assert connected, path
        return communicator, await communicator.receive_json_from()

    ads, hello = await open_socket("/ws/staff/")
    assert hello == {"type": "hello", "inboxes": 0}  # staff's group and their own, no inbox's
    posts, hello = await open_socket("/ws/staff/inboxes/")
    assert hello == {"type": "hello", "inboxes": 1}  # the Posts page hears its inboxes' content changes
    waiting = await sync_to_async(user_writes)(client, account, "u1")
    row = await sync_to_async(AgentAvailability.objects.get)(user=sam)
    assert (row.present, row.open_sockets) == (False, 0)
    assert (await sync_to_async(Conversation.objects.get)(pk=waiting.pk)).assignee_id is None
    await ads.send_json_to({"type": "ping"})  # a staff page's ping is no heartbeat either
    assert await ads.receive_json_from() == {"type": "pong"}
    assert (await sync_to_async(AgentAvailability.objects.get)(user=sam)).last_heartbeat_at is None
    await ads.disconnect()
    await posts.disconnect()
    assert (await sync_to_async(AgentAvailability.objects.get)(user=sam)).last_disconnect_at is None

    # The inbox page's socket is what makes the same member a candidate.
    inbox_page, hello = await open_socket("/ws/inbox/")
    assert hello["type"] == "hello"
    offered = await sync_to_async(user_writes)(client, account, "u2")
    assert (await sync_to_async(Conversation.objects.get)(pk=offered.pk)).assignee_id == sam.pk
    await inbox_page.disconnect()


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_staff_pages_socket_refuses_a_user_who_is_not_staff(django_user_model):
    from asgiref.sync import sync_to_async
    from channels.routing import URLRouter
    from channels.testing.websocket import WebsocketCommunicator

    from inbox.consumers import CLOSE_FORBIDDEN
    from inbox.routing import websocket_urlpatterns

    agent = await sync_to_async(django_user_model.objects.create_user)("ida", password="pw")
    for path in ("/ws/staff/", "/ws/staff/inboxes/"):
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
        communicator.scope["user"] = agent
        connected, code = await communicator.connect()
        assert not connected and code == CLOSE_FORBIDDEN, path
        await communicator.wait()
    assert not await sync_to_async(AgentAvailability.objects.filter(user=agent, present=True).exists)()
