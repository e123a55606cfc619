"""The set-based inbound batch (inbox/services/inbound.py): what one batch decides and what it gives back."""

from datetime import UTC, datetime, timedelta

import pytest
from django.forms.models import model_to_dict

from inbox.events import InboundMessage
from inbox.models import AuditLog, Contact, Conversation, Message
from inbox.services import messages_receive

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def event(user: str, n: int, minutes: int, **kw) -> InboundMessage:
    return InboundMessage(
        channel="tiktok",
        endpoint_id="biz-1",
        channel_user_id=user,
        provider_message_id=f"m-{n}",
        provider_conversation_id=f"c-{user}",
        sent_at=T0 + timedelta(minutes=minutes),
        type="text",
        text=f"{user} {n}",
        provider="infobip",
        **kw,
    )


def test_one_batch_with_duplicates_inside_and_against_stored_rows_new_and_existing_contacts_and_a_reopen(inbox):
    [(stored, created)] = messages_receive([(inbox.pk, event("old", 1, 0))])
    assert created
    Conversation.objects.filter(pk=stored.conversation_id).update(status="resolved")
    old_contact = Contact.objects.get(channel_user_id="old")

    items = [
        (inbox.pk, event("old", 1, 0)),  # stored before
        (inbox.pk, event("old", 2, 5)),  # new: reopens
        (inbox.pk, event("new", 3, 6, referral={"source": "ad", "ad_id": "ad-1"})),
        (inbox.pk, event("new", 3, 6)),  # the same message again inside the batch
        (inbox.pk, event("new", 4, 2)),  # older than the previous one: the window does not move back
        (inbox.pk, event("sent", 5, 7, sent_outside=True)),
    ]
    received = messages_receive(items)

    assert [created for _, created in received] == [False, True, True, False, True, True]
    assert received[0][0].pk == stored.pk
    assert received[3][0].pk == received[2][0].pk
    assert Message.objects.count() == 5
    # The returned messages are the stored rows, every column (built without the ORM, so compared to it).
    for message, _ in received:
        assert model_to_dict(message) == model_to_dict(Message.objects.get(pk=message.pk))
        assert message.created_at == Message.objects.get(pk=message.pk).created_at
        assert not message._state.adding

    old = Conversation.objects.get(contact=old_contact)
    assert (old.status, old.version, old.unread_count) == ("open", 3, 2)
    assert old.last_inbound_at == T0 + timedelta(minutes=5) and old.last_message_preview == "old 2"
    assert AuditLog.objects.get(action="conversation.reopened").before == {"status": "resolved"}

    new = Conversation.objects.get(contact__channel_user_id="new")
    assert new.last_inbound_at == T0 + timedelta(minutes=6) and new.last_message_preview == "new 3"
    assert new.referral == {"source": "ad", "ad_id": "ad-1"} and new.unread_count == 2 and new.version == 3
    contact = Contact.objects.get(channel_user_id="new")
    assert contact.first_seen_at == T0 + timedelta(minutes=6) and contact.last_seen_at == T0 + timedelta(minutes=6)

    sent = Message.objects.get(provider_message_id="m-5")
    assert (sent.direction, sent.status, sent.accepted_at) == ("out", "accepted", T0 + timedelta(minutes=7))
    outside = Conversation.objects.get(contact__channel_user_id="sent")
    assert outside.last_inbound_at is None and outside.unread_count == 0


def test_last_seen_never_moves_back(inbox):
    messages_receive([(inbox.pk, event("u", 1, 10))])
    messages_receive([(inbox.pk, event("u", 2, 3))])
    assert Contact.objects.get(channel_user_id="u").last_seen_at == T0 + timedelta(minutes=10)
    messages_receive([(inbox.pk, event("u", 3, 12))])
    assert Contact.objects.get(channel_user_id="u").last_seen_at == T0 + timedelta(minutes=12)


def test_a_batch_costs_the_same_statements_for_one_event_and_for_two_hundred(inbox):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        messages_receive([(inbox.pk, event("a", 0, 0))])
    with CaptureQueriesContext(connection) as many:
        messages_receive([(inbox.pk, event(f"b{n}", 100 + n, n)) for n in range(200)])
    assert len(one) == len(many)
    assert Message.objects.count() == 201
