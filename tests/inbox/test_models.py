from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from inbox.models import Contact, Conversation, Inbox, Message


def make_contact(**kw) -> Contact:
    values = {"channel": "tiktok", "endpoint_id": "biz-1", "channel_user_id": "user-1"}
    values.update(kw)
    return Contact.objects.create(**values)


def make_conversation(inbox, contact, **kw) -> Conversation:
    return Conversation.objects.create(inbox=inbox, contact=contact, last_activity_at=timezone.now(), **kw)


def make_message(conversation, **kw) -> Message:
    values = {"direction": "in", "type": "text", "text": "hi", "channel": "tiktok", "sent_at": timezone.now()}
    values.update(kw)
    return Message.objects.create(conversation=conversation, **values)


@pytest.mark.django_db
class TestContactConstraints:
    def test_one_contact_per_user_per_sender(self):
        make_contact()
        with pytest.raises(IntegrityError), transaction.atomic():
            make_contact()

    def test_same_user_through_another_sender_is_another_contact(self):
        make_contact()
        make_contact(endpoint_id="biz-2")
        assert Contact.objects.count() == 2


@pytest.mark.django_db
class TestMessageConstraints:
    def test_provider_message_id_is_unique_per_channel(self, inbox):
        conversation = make_conversation(inbox, make_contact())
        make_message(conversation, provider_message_id="m-1")
        with pytest.raises(IntegrityError), transaction.atomic():
            make_message(conversation, provider_message_id="m-1")

    def test_same_provider_id_on_another_channel_is_allowed(self, inbox):
        conversation = make_conversation(inbox, make_contact())
        make_message(conversation, provider_message_id="m-1")
        make_message(conversation, provider_message_id="m-1", channel="other")
        assert Message.objects.filter(provider_message_id="m-1").count() == 2

    def test_same_provider_id_on_another_endpoint_is_allowed(self, inbox):
        """Issue 21, item 5: ids are unique per (channel, endpoint), so another account cannot pre-empt ours."""
        conversation = make_conversation(inbox, make_contact())
        make_message(conversation, provider_message_id="m-1", endpoint_id="biz-1")
        make_message(conversation, provider_message_id="m-1", endpoint_id="biz-2")
        with pytest.raises(IntegrityError), transaction.atomic():
            make_message(conversation, provider_message_id="m-1", endpoint_id="biz-2")

    def test_messages_without_provider_id_do_not_collide(self, inbox):
        conversation = make_conversation(inbox, make_contact())
        make_message(conversation, direction="out", status="queued")
        make_message(conversation, direction="out", status="queued")
        assert Message.objects.filter(provider_message_id__isnull=True).count() == 2


@pytest.mark.django_db
class TestConversation:
    def test_one_conversation_per_contact_per_inbox(self, inbox):
        contact = make_contact()
        make_conversation(inbox, contact)
        with pytest.raises(IntegrityError), transaction.atomic():
            make_conversation(inbox, contact)
        make_conversation(Inbox.objects.create(name="Other"), contact)

    def test_reply_window_closes_48_hours_after_last_inbound(self, inbox, settings):
        settings.REPLY_WINDOW_HOURS = 48
        last = timezone.now() - timedelta(hours=5)
        conversation = make_conversation(inbox, make_contact(), last_inbound_at=last)
        assert conversation.reply_window_closes_at() == last + timedelta(hours=48)
        assert make_conversation(inbox, make_contact(channel_user_id="u2")).reply_window_closes_at() is None
