from datetime import UTC, datetime

import pytest
from django.utils import timezone

from inbox.models import AuditLog, Contact, Conversation, Message, WebhookEvent
from tests.tiktok_channel.webhooks import fixture, post, with_message_id
from tiktok_channel.models import TikTokSender

pytestmark = pytest.mark.django_db
RECEIVED = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("inbound_text", {"type": "text", "text": "Hello!\nDo you ship to Berlin? 🚚"}),
        ("inbound_text_quote", {"type": "text", "text": "this one", "quoted_provider_message_id": "out-1"}),
        ("inbound_image", {"type": "image", "media_url": "https://cdn.example.com/photo.jpg"}),
        ("inbound_share_post", {"type": "share_post", "embed_url": "https://www.tiktok.com/embed/v2/7301"}),
        (
            "inbound_reaction",
            {
                "type": "reaction",
                "reaction_emoji": "❤️",
                "reaction_action": "ADDED",
                "quoted_provider_message_id": "out-1",
            },
        ),
        ("inbound_referral_ad", {"type": "referral", "embed_url": "https://www.tiktok.com/embed/v2/7302"}),
        ("inbound_referral_short_link", {"type": "referral"}),
    ],
)
def test_each_inbound_type_is_stored_with_its_fields(client, account, inbox, name, expected):
    payload = fixture(name)
    response = post(client, account, payload)
    assert response.status_code == 200, response.content
    assert response.json()["inbound"] == 1

    message = Message.objects.get()
    assert {key: getattr(message, key) for key in expected} == expected
    assert message.direction == "in" and message.channel == "tiktok"
    assert message.provider_message_id == payload["results"][0]["messageId"]
    assert message.provider_conversation_id == "user-1"
    assert message.sent_at == RECEIVED
    assert message.payload == payload["results"][0]

    conversation = message.conversation
    assert conversation.inbox == inbox and conversation.status == "open"
    assert conversation.last_inbound_at == RECEIVED and conversation.last_activity_at == RECEIVED
    assert conversation.provider_conversation_id == "user-1"
    contact = conversation.contact
    assert (contact.channel_user_id, contact.endpoint_id, contact.first_seen_at) == ("user-1", "biz-1", RECEIVED)

    ledger = WebhookEvent.objects.get()
    assert ledger.verdict == "processed" and ledger.result_count == 1 and ledger.summary == {"inbound": 1}


def test_referral_ad_is_recorded_on_the_conversation(client, account):
    post(client, account, fixture("inbound_referral_ad"))
    referral = Conversation.objects.get().referral
    assert {k: referral[k] for k in ("source", "ad_id", "ad_name", "advertiser_id", "message_material_id")} == {
        "source": "ad",
        "ad_id": "ad-777",
        "ad_name": "Winter sale",
        "advertiser_id": "adv-9",
        "message_material_id": "mm-5",
    }


def test_tiktok_me_referral_is_recorded_on_the_conversation(client, account):
    post(client, account, fixture("inbound_referral_short_link"))
    referral = Conversation.objects.get().referral
    assert referral["source"] == "tiktok_me" and referral["ref"] == "promo_2026-winter"
    assert referral["prefilled_message"] == "Hi, I want the discount"
    assert referral["prefilled_message_audit_status"] == "PASS"


def test_referral_inside_a_text_message_is_recorded(client, account):
    post(client, account, fixture("inbound_text_referral"))
    referral = Conversation.objects.get().referral
    assert referral["source"] == "ad" and referral["source_id"] == "ad-777" and referral["creative_id"] == "cr-1"
    assert Message.objects.get().text == "I saw your ad"


def test_message_without_referral_keeps_the_existing_referral(client, account):
    post(client, account, fixture("inbound_referral_ad"))
    post(client, account, fixture("inbound_text"))
    assert Conversation.objects.get().referral["ad_id"] == "ad-777"


def test_second_message_joins_the_conversation_and_moves_the_window(client, account):
    post(client, account, fixture("inbound_text"))
    later = fixture("inbound_image")
    later["results"][0]["receivedAt"] = "2026-11-23T11:30:00.000+0000"
    post(client, account, later)
    conversation = Conversation.objects.get()
    assert conversation.messages.count() == 2
    assert conversation.last_inbound_at == datetime(2026, 11, 23, 11, 30, tzinfo=UTC)
    assert Contact.objects.count() == 1


def test_an_older_message_arriving_late_does_not_move_the_window_back(client, account):
    later = fixture("inbound_image")
    later["results"][0]["receivedAt"] = "2026-11-23T11:30:00.000+0000"
    post(client, account, later)
    post(client, account, fixture("inbound_text"))
    assert Conversation.objects.get().last_inbound_at == datetime(2026, 11, 23, 11, 30, tzinfo=UTC)


def test_new_message_reopens_a_resolved_conversation_and_is_audited(client, account):
    post(client, account, fixture("inbound_text"))
    Conversation.objects.update(status="resolved")
    post(client, account, fixture("inbound_image"))
    assert Conversation.objects.get().status == "open"
    audit = AuditLog.objects.get(action="conversation.reopened")
    assert (audit.actor_kind, audit.before, audit.after) == ("provider", {"status": "resolved"}, {"status": "open"})


def test_unknown_message_type_is_kept_as_unsupported(client, account):
    payload = fixture("inbound_text")
    payload["results"][0]["message"] = {"type": "VOICE_NOTE", "conversationId": "user-1", "url": "https://x"}
    response = post(client, account, payload)
    assert response.status_code == 200
    message = Message.objects.get()
    assert message.type == "unsupported" and message.payload["message"]["type"] == "VOICE_NOTE"


@pytest.mark.parametrize("case", ["unknown", "inactive", "other_account"])
def test_inbound_for_a_sender_we_cannot_use_is_kept_but_not_processed(client, account, make_account, case):
    payload = fixture("inbound_text")
    if case == "unknown":
        payload["results"][0]["to"] = "biz-unknown"
    elif case == "inactive":
        TikTokSender.objects.filter(business_account_id="biz-1").update(active=False)
    else:
        make_account(sender_id="biz-other")
        payload["results"][0]["to"] = "biz-other"
    response = post(client, account, payload)
    assert response.status_code == 200
    assert response.json()["ignored_unknown_sender"] == 1
    assert not Message.objects.exists()
    assert WebhookEvent.objects.get().summary == {"ignored_unknown_sender": 1}


def test_redelivered_event_is_stored_once(client, account):
    payload = fixture("inbound_text")
    assert post(client, account, payload).json()["inbound"] == 1
    second = post(client, account, payload)
    assert second.status_code == 200 and second.json()["duplicate"] == 1
    assert Message.objects.count() == 1
    assert Conversation.objects.get().version == 2  # created at 1, bumped once by the one message
    assert WebhookEvent.objects.count() == 2  # the ledger records every request


def test_batch_of_150_results_in_one_request(client, account):
    items = []
    for n in range(150):
        item = fixture("inbound_text")["results"][0]
        item.update(messageId=f"batch-{n}", sender=f"user-{n % 30}")
        item["message"]["conversationId"] = item["sender"]
        items.append(item)
    response = post(client, account, {"results": items, "messageCount": 150, "pendingMessageCount": 0})
    assert response.status_code == 200 and response.json()["inbound"] == 150
    assert Message.objects.count() == 150
    assert Conversation.objects.count() == 30 and Contact.objects.count() == 30


def test_mixed_batch_of_inbound_delivery_seen_and_unrecognized(client, account):
    post(client, account, fixture("inbound_text"))
    conversation = Conversation.objects.get()
    Message.objects.create(
        conversation=conversation,
        direction="out",
        type="text",
        text="hi",
        channel="tiktok",
        provider_message_id="out-1",
        status="accepted",
        sent_at=RECEIVED,
    )
    results = (
        with_message_id(fixture("inbound_image"), "in-2")["results"]
        + fixture("delivery_delivered")["results"]
        + fixture("seen")["results"]
        + [{"something": "new"}]
    )
    response = post(client, account, {"results": results})
    assert response.status_code == 200
    body = response.json()
    assert (body["inbound"], body["delivery_applied"], body["seen_applied"], body["unrecognized"]) == (1, 1, 1, 1)
    assert Message.objects.get(provider_message_id="out-1").status == "seen"


@pytest.mark.parametrize("kind", ["inbound", "delivery", "seen"])
def test_kind_specific_urls_accept_events(client, account, kind):
    response = post(client, account, fixture("inbound_text"), kind=kind)
    assert response.status_code == 200
    assert WebhookEvent.objects.get().path_kind == kind


def test_live_events_for_a_new_conversation_and_message(
    client, account, inbox, live_events, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post(client, account, fixture("inbound_text"))
    message = Message.objects.get()
    assert [(group, event["type"]) for group, event in live_events] == [
        (f"inbox.{inbox.pk}", "conversation.created"),
        (f"inbox.{inbox.pk}", "message.created"),
    ]
    assert live_events[1][1]["message_id"] == message.pk
    assert live_events[1][1]["conversation_id"] == message.conversation_id


def test_duplicate_publishes_nothing(client, account, live_events, django_capture_on_commit_callbacks):
    post(client, account, fixture("inbound_text"))
    with django_capture_on_commit_callbacks(execute=True):
        post(client, account, fixture("inbound_text"))
    assert live_events == []


def test_nul_characters_are_stored_as_replacement_characters(client, account):
    payload = fixture("inbound_text")
    payload["results"][0]["message"]["text"] = "before\u0000after"
    response = post(client, account, payload)
    assert response.status_code == 200
    assert Message.objects.get().text == "before\ufffdafter"


@pytest.mark.parametrize(
    ("received_at", "expected"),
    [
        ("2026-11-23T10:00:00.000+2138", datetime(2026, 11, 22, 12, 22, tzinfo=UTC)),  # beyond PostgreSQL's ±15:59
        ("2026-11-23T10:00:00.000+0000", RECEIVED),
    ],
)
def test_received_at_is_stored_in_utc(client, account, received_at, expected):
    payload = fixture("inbound_text")
    payload["results"][0]["receivedAt"] = received_at
    assert post(client, account, payload).status_code == 200
    assert Message.objects.get().sent_at == expected


def test_a_future_received_at_cannot_hold_the_window_open(client, account):
    payload = fixture("inbound_text")
    payload["results"][0]["receivedAt"] = "2099-01-01T00:00:00.000+0000"
    assert post(client, account, payload).status_code == 200
    assert Conversation.objects.get().last_inbound_at <= timezone.now()


def test_the_same_message_id_on_two_accounts_webhooks_stores_two_messages(client, account, make_account):
    """Issue 21, item 5: de-duplication is per account's endpoint, not global across accounts."""
    other = make_account(sender_id="biz-2")
    first = fixture("inbound_text")
    second = fixture("inbound_text")
    second["results"][0]["to"] = "biz-2"
    second["results"][0]["message"]["text"] = "A genuine message of the other account"
    assert post(client, account, first).json()["inbound"] == 1
    response = post(client, other, second)
    assert response.json()["inbound"] == 1, response.json()
    assert post(client, other, second).json()["duplicate"] == 1  # a redelivery on the same account still is one
    messages = Message.objects.select_related("conversation__contact")
    texts = {m.conversation.contact.endpoint_id: m.text for m in messages}
    assert texts == {"biz-1": first["results"][0]["message"]["text"], "biz-2": "A genuine message of the other account"}
    assert set(Message.objects.values_list("endpoint_id", flat=True)) == {"biz-1", "biz-2"}
