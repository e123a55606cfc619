"""Automation rules driven through the real ingest (signed Infobip webhooks) and the agents' services: each event
kind, each condition, each action; runs recorded once per event; no loops; messages within the window and quota;
outgoing webhooks signed, retried and recorded against a real local HTTP server."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from inbox.automation import rules
from inbox.automation.models import AgentAvailability, AutomationRun, Team, WebhookDelivery
from inbox.automation.tasks import deliver_webhook
from inbox.models import CannedResponse, Conversation, Label, Message
from inbox.services import conversation_set_status, reply_queue
from tests.inbox.automation.helpers import user_writes
from tests.inbox.automation.receiver import Receiver
from tests.inbox.helpers import api
from tiktok_channel.sandbox import payloads as p

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(django_user_model):
    return django_user_model.objects.create_superuser("boss", password="pw")


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """Run a block with its after-commit work (the domain-event subscribers) executed, as in production."""

    class Runner:
        def __enter__(self):
            self.capture = django_capture_on_commit_callbacks(execute=True)
            return self.capture.__enter__()

        def __exit__(self, *exc):
            return self.capture.__exit__(*exc)

    return Runner


def rule(inbox, event, actions, conditions=(), **fields):
    return rules.rule_create(
        inbox_id=inbox.pk,
        name=f"rule {event}",
        actor=None,
        event=event,
        no_reply_minutes=fields.pop("no_reply_minutes", None),
        conditions=list(conditions),
        actions=list(actions),
        **fields,
    )


def test_message_received_with_text_conditions_labels_prioritises_and_notes_once(client, account, inbox, run):
    Label.objects.create(inbox=inbox, name="refund")
    refund = rule(
        inbox,
        "message_received",
        [
            {"type": "add_label", "label": "refund"},
            {"type": "set_priority", "priority": "high"},
            {"type": "add_note", "text": "Refund request: check the order first."},
        ],
        [
            {"attribute": "message_text", "operator": "contains", "value": "REFUND"},
            {"attribute": "message_text", "operator": "matches", "value": r"order\s+#?\d+"},
        ],
    )
    with run():
        other = user_writes(client, account, "u1", "Do you ship to Berlin?")
        conversation = user_writes(client, account, "u2", "I want a refund for order #123")
    assert not AutomationRun.objects.filter(conversation=other).exists()  # the conditions did not hold
    conversation.refresh_from_db()
    assert conversation.priority == "high"
    assert list(conversation.labels.values_list("name", flat=True)) == ["refund"]
    note = Message.objects.get(conversation=conversation, direction="note")
    assert note.text.startswith("Refund request") and note.author.username == "automation"
    record = AutomationRun.objects.get(rule=refund)
    assert record.outcome == "succeeded" and [r["type"] for r in record.results] == [
        "add_label",
        "set_priority",
        "add_note",
    ]
    # The same event again (a replay, a second processor) is not run twice.
    message_id = Message.objects.get(conversation=conversation, direction="in").pk
    again = rules.run_rules(
        inbox_id=inbox.pk,
        event="message_received",
        conversation_id=conversation.pk,
        event_key=f"message:{message_id}",
        message_id=message_id,
    )
    assert again == [] and AutomationRun.objects.filter(rule=refund).count() == 1


def test_conversation_created_from_an_ad_is_assigned_to_an_agent(client, account, inbox, agent, run):
    ads = rule(
        inbox,
        "conversation_created",
        [{"type": "assign_agent", "agent_id": agent.pk}],
        [{"attribute": "ad_id", "operator": "equals", "value": "1780000000000001"}],
    )
    with run():
        plain = user_writes(client, account, "u1", "hello")
        from_ad = user_writes(client, account, "u2", content=p.referral_ad_content(ad_id="1780000000000001"))
    assert Conversation.objects.get(pk=from_ad.pk).assignee_id == agent.pk
    assert Conversation.objects.get(pk=plain.pk).assignee_id is None
    assert AutomationRun.objects.get(rule=ads).event_key == f"created:{from_ad.pk}"


def test_tiktok_me_ref_hands_the_conversation_to_a_team(client, account, inbox, django_user_model, run, live_events):
    member = django_user_model.objects.create_user("tess", password="pw")
    outsider = django_user_model.objects.create_user("otto", password="pw")
    inbox.members.add(member, outsider)
    for user in (member, outsider):
        AgentAvailability.objects.create(user=user, present=True, open_sockets=1)
    billing = Team.objects.create(inbox=inbox, name="Billing")
    billing.members.add(member)
    rule(
        inbox,
        "conversation_created",
        [{"type": "assign_team", "team_id": billing.pk}],
        [{"attribute": "tiktok_me_ref", "operator": "equals", "value": "billing-page"}],
    )
    with run():
        conversation = user_writes(client, account, "u1", content=p.referral_short_link_content("billing-page"))
    assert Conversation.objects.get(pk=conversation.pk).assignee_id == member.pk
    # The team shows on the conversation (list and filter) and was pushed live to the inbox's agents.
    listed = api(member).get("/api/v1/conversations/", {"team": billing.pk}).json()["results"]
    assert [(c["id"], c["team"]) for c in listed] == [(conversation.pk, {"id": billing.pk, "name": "Billing"})]
    pushed = [e for _, e in live_events if e["type"] == "conversation.team"]
    assert [(e["conversation_id"], e["team"]) for e in pushed] == [
        (conversation.pk, {"id": billing.pk, "name": "Billing"})
    ]


def test_label_priority_and_contact_attribute_conditions(client, account, inbox, run):
    vip = Label.objects.create(inbox=inbox, name="VIP")
    rule(
        inbox,
        "message_received",
        [{"type": "set_priority", "priority": "urgent"}],
        [
            {"attribute": "label", "operator": "has", "value": "vip"},
            {"attribute": "priority", "operator": "not_equals", "value": "urgent"},
            {"attribute": "contact_attribute", "key": "tier", "operator": "equals", "value": "gold"},
        ],
    )
    with run():
        conversation = user_writes(client, account, "u1", "first")
    assert Conversation.objects.get(pk=conversation.pk).priority == "none"  # no label, no attribute yet
    conversation.labels.add(vip)
    contact = conversation.contact
    contact.attributes = {"tier": "Gold"}
    contact.save()
    with run():
        user_writes(client, account, "u1", "second")
    assert Conversation.objects.get(pk=conversation.pk).priority == "urgent"


def test_canned_response_goes_through_the_outbox_or_is_recorded_not_sent(client, account, inbox, run, settings):
    canned = CannedResponse.objects.create(inbox=inbox, short_code="hi", text="Hi {{contact.name}}, we are on it.")
    greet = rule(inbox, "message_received", [{"type": "send_canned_response", "canned_response_id": canned.pk}])
    with run():
        conversation = user_writes(client, account, "u1", "hello")
    reply = Message.objects.get(conversation=conversation, direction="out")
    assert (reply.status, reply.text, reply.author.username) == ("queued", "Hi u1, we are on it.", "automation")
    assert AutomationRun.objects.get(rule=greet).results[0]["outcome"] == "queued"

    settings.REPLY_QUOTA_PER_WINDOW = 1  # used by the reply above
    with run():
        user_writes(client, account, "u2", "hello")  # a new window for u2: it gets its reply
        user_writes(client, account, "u2", "again")  # the quota of u2's window is used now
    last = AutomationRun.objects.filter(rule=greet).order_by("-pk").first()
    assert last.outcome == "failed" and last.results[0]["outcome"] == "not_sent"
    assert "reply_quota_used" in last.results[0]["detail"]
    assert Message.objects.filter(conversation__contact__channel_user_id="u2", direction="out").count() == 1

    old = timezone.now() - timedelta(hours=settings.REPLY_WINDOW_HOURS + 1)
    with run():
        user_writes(client, account, "u3", "from long ago", at=old)  # delivered late: the window is closed
    record = AutomationRun.objects.filter(rule=greet, conversation__contact__channel_user_id="u3").get()
    assert "reply_window_closed" in record.results[0]["detail"]
    assert not Message.objects.filter(conversation__contact__channel_user_id="u3", direction="out").exists()


def test_resolved_rules_run_for_agents_but_never_for_what_automation_did(client, account, inbox, agent, run):
    rule(
        inbox,
        "message_received",
        [{"type": "resolve"}],
        [{"attribute": "message_text", "operator": "contains", "value": "thanks"}],
    )
    after = rule(inbox, "conversation_resolved", [{"type": "add_note", "text": "Resolved: check the follow-up."}])
    with run():
        conversation = user_writes(client, account, "u1", "ok thanks, bye")
    assert Conversation.objects.get(pk=conversation.pk).status == "resolved"  # by the first rule
    assert not AutomationRun.objects.filter(rule=after).exists()  # no loop: automation's resolve triggers nothing

    with run():
        user_writes(client, account, "u1", "one more question")  # reopens
        conversation_set_status(conversation_id=conversation.pk, status="resolved", actor=agent)
    assert AutomationRun.objects.get(rule=after).outcome == "succeeded"


def test_snooze_action_sets_the_conversation_aside(client, account, inbox, run):
    rule(inbox, "conversation_created", [{"type": "snooze", "minutes": 60}])
    with run():
        conversation = user_writes(client, account, "u1", "hello")
    conversation.refresh_from_db()
    assert conversation.status == "pending"
    assert timedelta(minutes=59) < conversation.snoozed_until - timezone.now() <= timedelta(minutes=60)


def test_no_agent_reply_for_n_minutes_runs_once_per_customer_message(client, account, inbox, agent, run):
    Label.objects.create(inbox=inbox, name="waiting")
    waiting = rule(inbox, "no_agent_reply", [{"type": "add_label", "label": "waiting"}], no_reply_minutes=15)
    with run():
        late = user_writes(client, account, "u1", "anyone?", at=timezone.now() - timedelta(minutes=20))
        answered = user_writes(client, account, "u2", "hello?", at=timezone.now() - timedelta(minutes=20))
        recent = user_writes(client, account, "u3", "hi", at=timezone.now() - timedelta(minutes=5))
    reply_queue(conversation_id=answered.pk, author=agent, type="text", text="Here!")
    with run():
        assert rules.no_reply_due() == 1
        assert rules.no_reply_due() == 0  # once per customer message
    assert [r.conversation_id for r in AutomationRun.objects.filter(rule=waiting)] == [late.pk]
    assert list(Conversation.objects.get(pk=late.pk).labels.values_list("name", flat=True)) == ["waiting"]
    assert not Conversation.objects.get(pk=recent.pk).labels.exists()


def test_an_unknown_label_fails_the_action_records_it_and_the_next_action_still_runs(client, account, inbox, run):
    mixed = rule(
        inbox,
        "conversation_created",
        [{"type": "add_label", "label": "no-such-label"}, {"type": "set_priority", "priority": "low"}],
    )
    with run():
        conversation = user_writes(client, account, "u1", "hello")
    record = AutomationRun.objects.get(rule=mixed)
    assert record.outcome == "partial"
    assert [r["outcome"] for r in record.results] == ["failed", "done"]
    assert "unknown_label" in record.results[0]["detail"]
    assert Conversation.objects.get(pk=conversation.pk).priority == "low"


class TestOutgoingWebhook:
    @pytest.fixture
    def receiver(self, settings):
        settings.AUTOMATION_WEBHOOK_ALLOW_HTTP = True
        settings.AUTOMATION_WEBHOOK_ALLOW_PRIVATE = True  # the receiver listens on 127.0.0.1
        server = Receiver([500, 200])
        yield server
        server.close()

    def test_signed_retried_after_a_500_and_recorded(self, client, account, inbox, admin, receiver, run):
        response = api(admin).post(
            "/api/v1/automation-rules/",
            {
                "inbox": inbox.pk,
                "name": "Notify the CRM",
                "event": "message_received",
                "conditions": [{"attribute": "message_text", "operator": "contains", "value": "order"}],
                "actions": [{"type": "webhook", "url": receiver.url}],
            },
            format="json",
        )
        assert response.status_code == 201, response.content
        secret = response.json()["webhook_secret"]
        with run():
            conversation = user_writes(client, account, "u1", "Where is my order?")
        delivery = WebhookDelivery.objects.get()
        assert delivery.status == "pending" and delivery.run.results[0]["outcome"] == "queued"

        # The worker's first try meets a 500; Celery retries the task (run eagerly here: the retry follows at once).
        assert deliver_webhook.apply(args=[delivery.pk]).get() == "delivered"
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 2, 200)
        assert [(t["status_code"], t["error"]) for t in delivery.tries] == [(500, "HTTP 500"), (200, "")]

        request = receiver.requests[-1]
        payload = json.loads(request["body"])
        assert payload["conversation"]["id"] == conversation.pk and payload["message"]["text"] == "Where is my order?"
        assert payload["event"] == "message_received" and payload["contact"]["tiktok_user_id"] == "u1"
        timestamp, given = (
            dict(part.split("=", 1) for part in request["headers"]["X-Inbox-Signature"].split(","))["t"],
            request["headers"]["X-Inbox-Signature"].split("v1=")[1],
        )
        expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + request["body"], hashlib.sha256).hexdigest()
        assert hmac.compare_digest(given, expected)
        assert deliver_webhook.apply(args=[delivery.pk]).get() == "delivered"  # a delivered row is not sent again
        assert len(receiver.requests) == 2

    def test_a_4xx_is_not_retried_and_a_private_address_is_refused(
        self, client, account, inbox, receiver, settings, run
    ):
        receiver.statuses[:] = [404]
        rule(inbox, "conversation_created", [{"type": "webhook", "url": receiver.url}])
        with run():
            user_writes(client, account, "u1", "hello")
        delivery = WebhookDelivery.objects.get()
        assert deliver_webhook.apply(args=[delivery.pk]).get() == "failed"
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 1, 404)

        settings.AUTOMATION_WEBHOOK_ALLOW_PRIVATE = False
        with run():
            user_writes(client, account, "u2", "hello")
        second = WebhookDelivery.objects.exclude(pk=delivery.pk).get()
        assert deliver_webhook.apply(args=[second.pk]).get() == "failed"
        second.refresh_from_db()
        assert "non-public" in second.last_error and len(receiver.requests) == 1


def test_a_webhook_failing_every_try_is_failed_after_the_budget(client, account, inbox, settings, run):
    settings.AUTOMATION_WEBHOOK_ALLOW_HTTP = settings.AUTOMATION_WEBHOOK_ALLOW_PRIVATE = True
    settings.AUTOMATION_WEBHOOK_MAX_TRIES = 3
    server = Receiver([500, 503, 502, 200])
    try:
        rule(inbox, "conversation_created", [{"type": "webhook", "url": server.url}])
        with run():
            conversation = user_writes(client, account, "u1", "hello")
        delivery = WebhookDelivery.objects.get()
        assert deliver_webhook.apply(args=[delivery.pk]).get() == "failed"
    finally:
        server.close()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("failed", 3, "HTTP 502")
    assert Conversation.objects.get(pk=conversation.pk).status == "open"  # the ingest was never affected


def test_rules_api_admins_manage_agents_read_bad_input_is_a_422(inbox, agent, admin):
    body = {
        "inbox": inbox.pk,
        "name": "Urgent words",
        "event": "message_received",
        "conditions": [{"attribute": "message_text", "operator": "matches", "value": "(unclosed"}],
        "actions": [{"type": "set_priority", "priority": "urgent"}],
    }
    assert api(agent).post("/api/v1/automation-rules/", body, format="json").status_code == 403
    response = api(admin).post("/api/v1/automation-rules/", body, format="json")
    assert response.status_code == 422 and "conditions[0]" in response.json()["fields"]
    body["conditions"][0]["value"] = "urgent|asap"
    created = api(admin).post("/api/v1/automation-rules/", body, format="json")
    assert created.status_code == 201
    rule_id = created.json()["id"]
    listed = api(agent).get(f"/api/v1/automation-rules/?inbox={inbox.pk}").json()
    assert [r["id"] for r in listed] == [rule_id] and "webhook_secret" not in listed[0]
    bad = api(admin).patch(f"/api/v1/automation-rules/{rule_id}/", {"actions": [{"type": "explode"}]}, format="json")
    assert bad.status_code == 422
    https_only = api(admin).patch(
        f"/api/v1/automation-rules/{rule_id}/",
        {"actions": [{"type": "webhook", "url": "http://x.test/"}]},
        format="json",
    )
    assert https_only.status_code == 422 and "https" in https_only.json()["message"]
    assert (
        api(admin).patch(f"/api/v1/automation-rules/{rule_id}/", {"active": False}, format="json").json()["active"]
        is False
    )
    assert api(agent).get("/api/v1/automation-runs/").status_code == 200
    schema = api(admin).get("/api/schema/").content.decode()
    assert "/api/v1/automation-rules/" in schema and "/api/v1/automation-runs/" in schema
    assert api(admin).delete(f"/api/v1/automation-rules/{rule_id}/").status_code == 204


def test_the_rules_page_needs_a_login_and_offers_the_form_to_admins_only(client, inbox, agent, admin):
    assert client.get("/automation/").status_code == 302
    client.force_login(agent)
    page = client.get("/automation/")
    assert page.status_code == 200 and b'id="rule-list"' in page.content and b'id="rule-form"' not in page.content
    client.force_login(admin)
    assert b'id="rule-form"' in client.get("/automation/").content


@pytest.mark.parametrize(
    "action",
    [
        {"type": "assign_agent", "agent_id": 10**30},
        {"type": "assign_agent", "agent_id": True},
        {"type": "assign_team", "team_id": -1},
        {"type": "send_canned_response", "canned_response_id": "7"},
        {"type": "snooze", "minutes": 10**9},
        {"type": "add_note", "text": ""},
        {"type": "set_priority"},
    ],
)
def test_a_bad_action_is_a_422_with_the_field_never_a_500(inbox, admin, action):
    body = {"inbox": inbox.pk, "name": "x", "event": "conversation_created", "actions": [action]}
    response = api(admin).post("/api/v1/automation-rules/", body, format="json")
    assert response.status_code == 422 and "actions[0]" in response.json()["fields"]
