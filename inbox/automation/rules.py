"""Automation rules: when <event> and <conditions> → <actions>, each run recorded, at most once per event.

- **At most once per event:** a run is claimed by inserting `AutomationRun(rule, event_key)` under a unique
  constraint before any action; a redelivered webhook, a replay or a second processor finds the key taken.
- **No loops:** actions are performed as the `automation` user (inactive, cannot log in), and events caused by that
  user trigger no rule. Only "conversation resolved" could be caused by an action (created / message received come
  from customers, "no agent reply" from the clock).
- **Messages** (canned response) go through `reply_queue`, the agents' single write path: the outbox sends them,
  the 48-hour window and the quota apply; when they do not allow it the action is recorded `not_sent` with the
  reason instead.
- **Outgoing webhooks** are rows (`WebhookDelivery`) written with the run; a Celery task posts them, signed, with
  retries (`inbox/automation/tasks.py`). A failing action is recorded and never breaks the ingest.
"""

from __future__ import annotations

import logging
import re
import secrets
from datetime import datetime, timedelta
from functools import partial
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from inbox import services
from inbox.automation.models import AutomationRule, AutomationRun, Team, WebhookDelivery
from inbox.errors import ApplicationError
from inbox.models import CannedResponse, Conversation, Message

logger = logging.getLogger(__name__)

AUTOMATION_USERNAME = "automation"
MAX_CONDITIONS = 20
MAX_ACTIONS = 20
VALUE_MAX_CHARS = 500
NOTE_MAX_CHARS = 2000

# attribute → operators it accepts
CONDITIONS: dict[str, tuple[str, ...]] = {
    "message_text": ("contains", "matches"),
    "ad_id": ("equals",),
    "tiktok_me_ref": ("equals",),
    "label": ("has", "has_not"),
    "priority": ("equals", "not_equals"),
    "business_hours": ("equals",),  # value: open | closed
    "contact_attribute": ("equals", "contains"),  # with "key"
}
ACTIONS = (
    "assign_agent",
    "assign_team",
    "add_label",
    "remove_label",
    "set_priority",
    "send_canned_response",
    "add_note",
    "resolve",
    "snooze",
    "webhook",
)


# --- Validation (API and admin) -------------------------------------------------------------------------------


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError("invalid_rule", message, status=422, fields={field: [message]})


def _text(value, field: str, what: str, max_chars: int = VALUE_MAX_CHARS) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > max_chars:
        raise _invalid(field, f"{what} is a text of 1 to {max_chars} characters")
    return value


def _is_id(value) -> bool:
    """A row id as JSON may carry it: a whole number the database can hold (never a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 2**62


def clean_conditions(conditions, *, inbox_id: int) -> list[dict]:
    if not isinstance(conditions, list) or len(conditions) > MAX_CONDITIONS:
        raise _invalid("conditions", f"conditions are a list of at most {MAX_CONDITIONS}")
    cleaned = []
    for index, condition in enumerate(conditions):
        field = f"conditions[{index}]"
        if not isinstance(condition, dict):
            raise _invalid(field, "a condition is an object with attribute, operator and value")
        attribute, operator = condition.get("attribute"), condition.get("operator")
        if attribute not in CONDITIONS:
            raise _invalid(field, f"attribute is one of {', '.join(CONDITIONS)}")
        if operator not in CONDITIONS[attribute]:
            raise _invalid(field, f"{attribute} takes the operators {', '.join(CONDITIONS[attribute])}")
        value = _text(condition.get("value"), field, "value")
        item = {"attribute": attribute, "operator": operator, "value": value}
        if operator == "matches":
            try:
                re.compile(value)
            except re.error as exc:
                raise _invalid(field, f"value is not a regular expression: {exc}") from None
        if attribute == "priority" and value not in Conversation.Priority.values:
            raise _invalid(field, f"priority is one of {', '.join(Conversation.Priority.values)}")
        if attribute == "business_hours" and value not in ("open", "closed"):
            raise _invalid(field, "business_hours is open or closed")
        if attribute == "contact_attribute":
            item["key"] = _text(condition.get("key"), field, "key", 100)
        cleaned.append(item)
    return cleaned


def clean_actions(actions, *, inbox_id: int) -> list[dict]:
    if not isinstance(actions, list) or not actions or len(actions) > MAX_ACTIONS:
        raise _invalid("actions", f"actions are a list of 1 to {MAX_ACTIONS}")
    cleaned = []
    for index, action in enumerate(actions):
        field = f"actions[{index}]"
        if not isinstance(action, dict) or action.get("type") not in ACTIONS:
            raise _invalid(field, f"an action has a type, one of {', '.join(ACTIONS)}")
        kind = action["type"]
        item: dict = {"type": kind}
        if kind == "assign_agent":
            agent_id = action.get("agent_id")
            user_model = get_user_model()
            if (
                not _is_id(agent_id)
                or not user_model.objects.filter(pk=agent_id, is_active=True, inboxes=inbox_id).exists()
            ):
                raise _invalid(field, "agent_id is an active member of the inbox")
            item["agent_id"] = agent_id
        elif kind == "assign_team":
            team_id = action.get("team_id")
            if not _is_id(team_id) or not Team.objects.filter(pk=team_id, inbox_id=inbox_id).exists():
                raise _invalid(field, "team_id is a team of the inbox")
            item["team_id"] = team_id
        elif kind in ("add_label", "remove_label"):
            item["label"] = _text(action.get("label"), field, "label", 50)
        elif kind == "set_priority":
            if action.get("priority") not in Conversation.Priority.values:
                raise _invalid(field, f"priority is one of {', '.join(Conversation.Priority.values)}")
            item["priority"] = action["priority"]
        elif kind == "send_canned_response":
            canned_id = action.get("canned_response_id")
            if (
                not _is_id(canned_id)
                or not CannedResponse.objects.filter(pk=canned_id, inbox_id=inbox_id, owner__isnull=True).exists()
            ):
                raise _invalid(field, "canned_response_id is a shared canned response of the inbox")
            item["canned_response_id"] = canned_id
        elif kind == "add_note":
            item["text"] = _text(action.get("text"), field, "text", NOTE_MAX_CHARS)
        elif kind == "snooze":
            minutes = action.get("minutes")
            if not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= 60 * 24 * 30:
                raise _invalid(field, "minutes is a whole number from 1 to 43200 (30 days)")
            item["minutes"] = minutes
        elif kind == "webhook":
            url = _text(action.get("url"), field, "url", 2048)
            parts = urlsplit(url)
            allowed = ("https", "http") if settings.AUTOMATION_WEBHOOK_ALLOW_HTTP else ("https",)
            if parts.scheme not in allowed or not parts.hostname:
                raise _invalid(field, "url is an https:// address")
            item["url"] = url
        cleaned.append(item)
    return cleaned


def clean_rule(*, inbox_id: int, event: str, no_reply_minutes, conditions, actions) -> dict:
    if event not in AutomationRule.Event.values:
        raise _invalid("event", f"event is one of {', '.join(AutomationRule.Event.values)}")
    if event == AutomationRule.Event.NO_AGENT_REPLY:
        if not isinstance(no_reply_minutes, int) or not 1 <= no_reply_minutes <= 60 * 48:
            raise _invalid("no_reply_minutes", "no agent reply needs minutes from 1 to 2880 (48 hours)")
    else:
        no_reply_minutes = None
    return {
        "event": event,
        "no_reply_minutes": no_reply_minutes,
        "conditions": clean_conditions(conditions, inbox_id=inbox_id),
        "actions": clean_actions(actions, inbox_id=inbox_id),
    }


def rule_create(*, inbox_id: int, name: str, actor, active: bool = True, position: int = 0, **fields) -> AutomationRule:
    name = _text(name, "name", "name", 120)
    cleaned = clean_rule(inbox_id=inbox_id, **fields)
    return AutomationRule.objects.create(
        inbox_id=inbox_id,
        name=name,
        active=active,
        position=position,
        created_by=actor,
        webhook_secret=secrets.token_urlsafe(32),
        **cleaned,
    )


def rule_update(*, rule_id: int, actor, **changes) -> AutomationRule:
    with transaction.atomic():
        rule = AutomationRule.objects.select_for_update().get(pk=rule_id)
        merged = {
            "event": changes.get("event", rule.event),
            "no_reply_minutes": changes.get("no_reply_minutes", rule.no_reply_minutes),
            "conditions": changes.get("conditions", rule.conditions),
            "actions": changes.get("actions", rule.actions),
        }
        for field, value in clean_rule(inbox_id=rule.inbox_id, **merged).items():
            setattr(rule, field, value)
        if "name" in changes:
            rule.name = _text(changes["name"], "name", "name", 120)
        for field in ("active", "position"):
            if field in changes:
                setattr(rule, field, changes[field])
        rule.save()
    return rule


# --- Running ----------------------------------------------------------------------------------------------------


def automation_user():
    """The actor of every automatic change: inactive (it cannot log in), named "Automation" in the thread."""
    user_model = get_user_model()
    user = user_model.objects.filter(username=AUTOMATION_USERNAME).first()
    if user is None:
        try:
            with transaction.atomic():
                user = user_model(username=AUTOMATION_USERNAME, first_name="Automation", is_active=False)
                user.set_unusable_password()
                user.save()
        except IntegrityError:
            user = user_model.objects.get(username=AUTOMATION_USERNAME)
    return user


def is_automation(user_id: int | None) -> bool:
    if user_id is None:
        return False
    return get_user_model().objects.filter(pk=user_id, username=AUTOMATION_USERNAME).exists()


def _referral_ad_id(referral: dict) -> str:
    if referral.get("ad_id"):
        return str(referral["ad_id"])
    return str(referral.get("source_id") or "") if referral.get("source") == "ad" else ""


def _referral_ref(referral: dict) -> str:
    return str(referral.get("ref") or referral.get("tracking_ref") or "")


def condition_holds(condition: dict, conversation: Conversation, message: Message | None, now: datetime) -> bool:
    attribute, operator, value = condition["attribute"], condition["operator"], condition["value"]
    if attribute == "message_text":
        text = message.text if message is not None else ""
        if operator == "contains":
            return value.casefold() in text.casefold()
        return re.search(value, text, flags=re.IGNORECASE) is not None
    if attribute == "ad_id":
        return _referral_ad_id(conversation.referral or {}) == value
    if attribute == "tiktok_me_ref":
        return _referral_ref(conversation.referral or {}) == value
    if attribute == "label":
        has = conversation.labels.filter(name__iexact=value).exists()
        return has if operator == "has" else not has
    if attribute == "priority":
        return (conversation.priority == value) == (operator == "equals")
    if attribute == "business_hours":
        from inbox.automation.hours import inbox_is_open

        return inbox_is_open(conversation.inbox_id, now) == (value == "open")
    if attribute == "contact_attribute":
        actual = str((conversation.contact.attributes or {}).get(condition["key"], ""))
        if operator == "equals":
            return actual.casefold() == value.casefold()
        return value.casefold() in actual.casefold()
    return False


def webhook_payload(run: AutomationRun, conversation: Conversation, message: Message | None) -> dict:
    contact = conversation.contact
    return {
        "event": run.event,
        "event_key": run.event_key,
        "run_id": run.pk,
        "rule": {"id": run.rule_id, "name": run.rule.name},
        "conversation": {
            "id": conversation.pk,
            "inbox_id": conversation.inbox_id,
            "status": conversation.status,
            "priority": conversation.priority,
            "assignee_id": conversation.assignee_id,
            "labels": sorted(conversation.labels.values_list("name", flat=True)),
            "referral": conversation.referral or {},
        },
        "contact": {
            "id": contact.pk,
            "tiktok_user_id": contact.channel_user_id,
            "display_name": contact.display_name,
            "attributes": contact.attributes or {},
        },
        "message": None
        if message is None
        else {"id": message.pk, "type": message.type, "text": message.text, "sent_at": message.sent_at.isoformat()},
        "occurred_at": run.created_at.isoformat(),
    }


def _perform(action: dict, *, run: AutomationRun, conversation: Conversation, message, actor) -> dict:
    """Perform one action through the core's services; returns {"type", "outcome", "detail"}."""
    kind = action["type"]
    conversation_id = conversation.pk
    if kind == "assign_agent":
        assignee = get_user_model().objects.filter(pk=action["agent_id"]).first()
        services.conversation_assign(conversation_id=conversation_id, assignee=assignee, actor=actor)
        return {"type": kind, "outcome": "done", "detail": f"assigned to user {action['agent_id']}"}
    if kind == "assign_team":
        from inbox.automation import assignment

        team = Team.objects.get(pk=action["team_id"])
        services.conversation_set_team(conversation_id=conversation_id, team=team, actor=actor)
        current = Conversation.objects.values_list("assignee_id", flat=True).get(pk=conversation_id)
        if current is not None and not team.members.filter(pk=current).exists():
            services.conversation_unassign(conversation_id=conversation_id, actor=actor)
        assigned = assignment.assign_one(conversation_id)
        detail = f"team {team.name}: " + (f"assigned to user {assigned}" if assigned else "waiting for a member")
        return {"type": kind, "outcome": "done", "detail": detail}
    if kind in ("add_label", "remove_label"):
        names = list(conversation.labels.values_list("name", flat=True))
        if kind == "add_label":
            names.append(action["label"])
        else:
            names = [name for name in names if name.lower() != action["label"].lower()]
        services.conversation_set_labels(conversation_id=conversation_id, names=names, actor=actor)
        return {"type": kind, "outcome": "done", "detail": action["label"]}
    if kind == "set_priority":
        services.conversation_set_priority(conversation_id=conversation_id, priority=action["priority"], actor=actor)
        return {"type": kind, "outcome": "done", "detail": action["priority"]}
    if kind == "send_canned_response":
        canned = CannedResponse.objects.filter(pk=action["canned_response_id"]).first()
        if canned is None:
            return {"type": kind, "outcome": "failed", "detail": "the canned response was deleted"}
        contact = conversation.contact
        text = services.canned_render(
            canned.text, contact_name=contact.display_name or contact.channel_user_id, agent_name="Automation"
        )
        return send_automatic_message(conversation_id=conversation_id, text=text, actor=actor, kind=kind)
    if kind == "add_note":
        services.note_add(conversation_id=conversation_id, author=actor, text=action["text"])
        return {"type": kind, "outcome": "done", "detail": ""}
    if kind == "resolve":
        services.conversation_set_status(conversation_id=conversation_id, status="resolved", actor=actor)
        return {"type": kind, "outcome": "done", "detail": ""}
    if kind == "snooze":
        until = timezone.now() + timedelta(minutes=action["minutes"])
        services.conversation_snooze(conversation_id=conversation_id, until=until, actor=actor)
        return {"type": kind, "outcome": "done", "detail": until.isoformat()}
    if kind == "webhook":
        conversation = Conversation.objects.select_related("contact").get(pk=conversation_id)
        delivery = WebhookDelivery.objects.create(
            run=run, url=action["url"], payload=webhook_payload(run, conversation, message)
        )
        from inbox.automation.tasks import schedule_webhook

        transaction.on_commit(partial(schedule_webhook, delivery.pk))
        return {"type": kind, "outcome": "queued", "detail": f"delivery {delivery.pk}"}
    return {"type": kind, "outcome": "failed", "detail": "unknown action"}


def send_automatic_message(*, conversation_id: int, text: str, actor, kind: str, reopens: bool = True) -> dict:
    """Queue an automatic text through the agents' reply path (outbox, window, quota). When the channel does not
    allow it now, nothing is queued and the reason is returned as `not_sent`. `reopens=False` leaves a resolved
    conversation resolved (the CSAT question is not a new conversation)."""
    try:
        message = services.reply_queue(
            conversation_id=conversation_id, author=actor, type="text", text=text, reopens=reopens
        )
    except ApplicationError as error:
        return {"type": kind, "outcome": "not_sent", "detail": f"{error.code}: {error.message}"}
    return {"type": kind, "outcome": "queued", "detail": f"message {message.pk}"}


def first_inbound_message_id(conversation_id: int) -> int | None:
    return (
        Message.objects.filter(conversation_id=conversation_id, direction=Message.Direction.IN)
        .order_by("sent_at", "pk")
        .values_list("pk", flat=True)
        .first()
    )


def run_rules(
    *, inbox_id: int, event: str, conversation_id: int, event_key: str, message_id: int | None = None
) -> list:
    """Run the inbox's active rules of `event` whose conditions hold, each at most once for `event_key`."""
    rules = list(AutomationRule.objects.filter(inbox_id=inbox_id, event=event, active=True).order_by("position", "pk"))
    runs = []
    for rule in rules:
        run = run_rule(rule, conversation_id=conversation_id, event_key=event_key, message_id=message_id)
        if run is not None:
            runs.append(run)
    return runs


def run_rule(
    rule: AutomationRule, *, conversation_id: int, event_key: str, message_id: int | None
) -> AutomationRun | None:
    now = timezone.now()
    conversation = Conversation.objects.select_related("contact").filter(pk=conversation_id).first()
    if conversation is None:
        return None
    message = Message.objects.filter(pk=message_id).first() if message_id else None
    if not all(condition_holds(condition, conversation, message, now) for condition in rule.conditions):
        return None
    try:
        with transaction.atomic():
            run = AutomationRun.objects.create(
                rule=rule, conversation=conversation, event=rule.event, event_key=event_key
            )
    except IntegrityError:
        return None  # this rule already ran for this event
    actor = automation_user()
    results = []
    for action in rule.actions:
        try:
            with transaction.atomic():
                conversation = Conversation.objects.select_related("contact").get(pk=conversation_id)
                results.append(_perform(action, run=run, conversation=conversation, message=message, actor=actor))
        except ApplicationError as error:
            results.append({"type": action["type"], "outcome": "failed", "detail": f"{error.code}: {error.message}"})
        except Exception as exc:  # noqa: BLE001 - recorded on the run; the next actions still run
            logger.exception("automation rule %s action %s failed", rule.pk, action.get("type"))
            results.append({"type": action["type"], "outcome": "failed", "detail": type(exc).__name__})
    outcomes = {result["outcome"] for result in results}
    if outcomes <= {"done", "queued"}:
        outcome = AutomationRun.Outcome.SUCCEEDED
    elif outcomes & {"done", "queued"}:
        outcome = AutomationRun.Outcome.PARTIAL
    else:
        outcome = AutomationRun.Outcome.FAILED
    AutomationRun.objects.filter(pk=run.pk).update(results=results, outcome=outcome, finished_at=timezone.now())
    run.results, run.outcome = results, outcome
    return run


def no_reply_due(*, now: datetime | None = None) -> int:
    """Run the "no agent reply for N minutes" rules (beat): open conversations whose customer wrote at least N
    minutes ago (within the reply window) with no reply since. Once per customer message (its time is the key)."""
    now = now or timezone.now()
    count = 0
    rules = AutomationRule.objects.filter(event=AutomationRule.Event.NO_AGENT_REPLY, active=True)
    for rule in rules:
        cutoff = now - timedelta(minutes=rule.no_reply_minutes or 0)
        replied = Message.objects.filter(
            conversation=OuterRef("pk"), direction=Message.Direction.OUT, sent_at__gte=OuterRef("last_inbound_at")
        ).exclude(author__username=AUTOMATION_USERNAME)  # an automatic message is not an agent's reply
        ran = AutomationRun.objects.filter(
            rule=rule, conversation=OuterRef("pk"), created_at__gte=OuterRef("last_inbound_at")
        )
        due = (
            Conversation.objects.filter(
                inbox_id=rule.inbox_id,
                status=Conversation.Status.OPEN,
                last_inbound_at__lte=cutoff,
                last_inbound_at__gt=now - timedelta(hours=settings.REPLY_WINDOW_HOURS),
            )
            .exclude(Exists(replied))
            .exclude(Exists(ran))
            .values_list("pk", "last_inbound_at")[:500]
        )
        for conversation_id, last_inbound_at in due:
            key = f"no_reply:{conversation_id}:{last_inbound_at.isoformat()}"
            last_message_id = (
                Message.objects.filter(conversation_id=conversation_id, direction=Message.Direction.IN)
                .order_by("-sent_at", "-pk")
                .values_list("pk", flat=True)
                .first()
            )
            if run_rule(rule, conversation_id=conversation_id, event_key=key, message_id=last_message_id) is not None:
                count += 1
    return count
