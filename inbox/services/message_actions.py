"""Hide, unhide and delete public messages (comments) at the provider, and what the provider reports of them.

An agent's request is written first (`Message.action` pending, an audit row), then a task of the core asks the
conversation's backend (`Backend.message_action`) and records the answer here: the new `public_state`, or the
provider's refusal with its reason. The provider may also report a change made elsewhere (TikTok's app, another
tool): `messages_public_state_apply`. Both end in one `MessagePublicStateChanged` event per changed message.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q

from inbox import domain_events, providers
from inbox.errors import ApplicationError
from inbox.models import AuditLog, Message
from inbox.services.common import invalid_input

PublicState = Message.PublicState
PENDING, FAILED, DONE = "pending", "failed", "done"
DONE_WORDS = {
    providers.ACTION_HIDE: "hidden",
    providers.ACTION_UNHIDE: "shown again",
    providers.ACTION_DELETE: "deleted",
}
STATE_AFTER = {
    providers.ACTION_HIDE: PublicState.HIDDEN,
    providers.ACTION_UNHIDE: PublicState.VISIBLE,
    providers.ACTION_DELETE: PublicState.DELETED,
}


def message_actions_allowed(message: Message) -> tuple[str, ...]:
    """The actions an agent may ask for on this message now: `message_actions_allowed_for` of the model."""
    return message_actions_allowed_for(providers.MessageFacts.of(message), action=message.action)


def message_actions_allowed_for(facts: providers.MessageFacts, *, action: dict) -> tuple[str, ...]:
    """The actions an agent may ask for on a message now, from plain values (a thread row from `.values()`): the
    provider decides; none while one is pending (`action`, the message's last request) or once deleted."""
    if (action or {}).get("state") == PENDING or facts.public_state == PublicState.DELETED:
        return ()
    backend = providers.for_conversation(facts)
    return backend.message_actions(facts) if backend is not None else ()


def _event(message: Message, *, action: str, state: str, actor_id: int | None) -> domain_events.DomainEvent:
    return domain_events.MessagePublicStateChanged(
        inbox_id=message.conversation.inbox_id,
        conversation_id=message.conversation_id,
        message_id=message.pk,
        public_state=message.public_state,
        action=action,
        action_state=state,
        actor_id=actor_id,
    )


def message_action_request(*, message_id: int, action: str, author) -> Message:
    """Ask the provider to hide, unhide or delete a message: refused (422/409 with the reason) unless the
    conversation's backend offers that action on this message now; else marked pending and handed to a task
    after commit. The message row is locked, so two agents cannot queue two actions at once."""
    from inbox.tasks import perform_message_action

    if action not in providers.MESSAGE_ACTIONS:
        raise invalid_input("invalid_action", f"action is one of {', '.join(providers.MESSAGE_ACTIONS)}", "action")
    with transaction.atomic():
        message = Message.objects.select_for_update(of=("self",)).select_related("conversation").get(pk=message_id)
        if message.action.get("state") == PENDING:
            raise ApplicationError(
                "action_pending", f"a {message.action.get('action')} of this message is already under way", status=409
            )
        backend = providers.for_conversation(message.conversation)
        if backend is None or not (offered := backend.message_actions(providers.MessageFacts.of(message))):
            raise ApplicationError(
                "action_unsupported",
                "this conversation's provider cannot hide or delete messages (only public comments can be)",
                status=422,
            )
        if action not in offered or message.public_state == PublicState.DELETED:
            raise ApplicationError(
                "action_not_allowed",
                f"this message cannot be {DONE_WORDS[action]} now "
                f"(it is {message.public_state}; possible: {', '.join(offered) or 'nothing'})",
                status=409,
            )
        before = {"public_state": message.public_state, "action": message.action}
        message.action = {"action": action, "state": PENDING, "requested_by": author.pk}
        message.save(update_fields=["action"])
        AuditLog.objects.create(
            actor=author,
            actor_kind=AuditLog.ActorKind.AGENT,
            action=f"message.{action}_requested",
            conversation_id=message.conversation_id,
            message=message,
            before=before,
            after={"action": message.action},
        )
        domain_events.emit(_event(message, action=action, state=PENDING, actor_id=author.pk))
        pk = message.pk
        transaction.on_commit(lambda: perform_message_action.delay(pk, action))
    return message


def message_action_result(*, message_id: int, action: str, error: dict | None = None) -> Message | None:
    """Record the provider's answer to a pending action: done (the public state moves) or failed (the reason is
    kept and shown). A stale answer (no such action pending) changes nothing and returns None."""
    with transaction.atomic():
        message = (
            Message.objects.select_for_update(of=("self",)).select_related("conversation").filter(pk=message_id).first()
        )
        if message is None or message.action.get("state") != PENDING or message.action.get("action") != action:
            return None
        before = {"public_state": message.public_state, "action": message.action}
        if error:
            message.action = {**message.action, "state": FAILED, "error": error}
        else:
            message.action = {**message.action, "state": DONE}
            message.public_state = STATE_AFTER[action]
        message.save(update_fields=["action", "public_state"])
        state = FAILED if error else DONE
        AuditLog.objects.create(
            actor_kind=AuditLog.ActorKind.PROVIDER,
            action=f"message.{action}_{state}",
            conversation_id=message.conversation_id,
            message=message,
            before=before,
            after={"public_state": message.public_state, "action": message.action},
        )
        domain_events.emit(_event(message, action=action, state=state, actor_id=None))
    return message


def messages_public_state_apply(*, channel: str, endpoint_id: str, provider_ids: list[str], public_state: str) -> int:
    """The provider says these messages are now visible / hidden / deleted (its ids: an inbound message's id, or
    the provider's id of our own reply kept in `provider_status.messageId`). Only real changes are written and
    announced; returns how many changed."""
    if public_state not in PublicState.values:
        raise ValueError(f"unknown public state {public_state!r}")
    if not provider_ids:
        return 0
    changed = 0
    with transaction.atomic():
        rows = (
            Message.objects.select_for_update(of=("self",))
            .select_related("conversation")
            .filter(conversation__contact__channel=channel, conversation__contact__endpoint_id=endpoint_id)
            .filter(Q(provider_message_id__in=provider_ids) | Q(provider_status__messageId__in=provider_ids))
            .exclude(public_state=public_state)
            .order_by("pk")
        )
        events, audits = [], []
        for message in rows:
            if message.public_state == PublicState.DELETED:
                continue  # a deleted comment does not come back
            before = message.public_state
            message.public_state = public_state
            if message.action.get("state") == PENDING and STATE_AFTER[message.action["action"]] == public_state:
                message.action = {**message.action, "state": DONE}
            message.save(update_fields=["public_state", "action"])
            audits.append(
                AuditLog(
                    actor_kind=AuditLog.ActorKind.PROVIDER,
                    action="message.public_state_reported",
                    conversation_id=message.conversation_id,
                    message=message,
                    before={"public_state": before},
                    after={"public_state": public_state},
                )
            )
            events.append(_event(message, action="", state=DONE, actor_id=None))
            changed += 1
        if audits:
            AuditLog.objects.bulk_create(audits)
        domain_events.emit(*events)
    return changed
