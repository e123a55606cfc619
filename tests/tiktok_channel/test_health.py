"""Connection health: what the webhook and the send path record, the verdict, the admin page and the staff page."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import responses
from django.core.cache import cache
from django.utils import timezone

from inbox.models import Contact, Conversation, Message
from tiktok_channel import health
from tiktok_channel.models import InfobipAccount

from .webhooks import fixture, post

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    """A key prefix of this test's own: timestamps of an earlier test must not count, and nothing else in the
    shared Redis (a running stack's queues and leases) is touched."""
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-health-{uuid.uuid4().hex}"}}


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("lead", password="pw-123456789", is_staff=True)


def sent_message(account, *, accepted_ago: timedelta, status: str = Message.Status.ACCEPTED) -> Message:
    sender = account.senders.get()
    contact, _ = Contact.objects.get_or_create(
        channel="tiktok", endpoint_id=sender.business_account_id, channel_user_id="user-1"
    )
    conversation, _ = Conversation.objects.get_or_create(
        provider="infobip", inbox=sender.inbox, contact=contact, defaults={"last_activity_at": timezone.now()}
    )
    accepted_at = timezone.now() - accepted_ago
    return Message.objects.create(
        conversation=conversation,
        direction=Message.Direction.OUT,
        type=Message.Type.TEXT,
        text="hello",
        channel="tiktok",
        status=status,
        queued_at=accepted_at,
        sent_at=accepted_at,
        accepted_at=accepted_at,
    )


def test_nothing_yet_is_waiting(account):
    assert health.account_health(account)["state"] == health.WAITING


def test_webhooks_record_their_kind_and_make_it_green(client, account):
    assert post(client, account, fixture("inbound_text")).status_code == 200
    assert post(client, account, fixture("seen")).status_code == 200

    found = health.account_health(account)

    assert found["state"] == health.GREEN, found
    assert found["last_webhook"]["inbound"] and found["last_webhook"]["seen"]
    assert found["last_webhook"]["delivery"] is None
    assert found["last_webhook"]["any"] >= found["last_webhook"]["inbound"]


def test_one_kind_writes_one_key_and_any_is_the_latest_kind_or_an_unknown_one(client, account):
    assert post(client, account, fixture("inbound_text")).status_code == 200
    assert cache.get(health._key(account.pk, "webhook:inbound")) is not None
    assert cache.get(health._key(account.pk, "webhook:any")) is None  # computed when read, not written per request
    assert (
        health.account_health(account)["last_webhook"]["any"]
        == health.account_health(account)["last_webhook"]["inbound"]
    )
    before = health.account_health(account)["last_webhook"]["inbound"]
    assert post(client, account, {"results": [{"something": "new"}]}).status_code == 200  # no kind we know
    found = health.account_health(account)["last_webhook"]
    assert found["inbound"] == before
    assert found["any"] > before  # a result of no known kind is still an arrival


def test_an_accepted_send_with_no_webhook_since_turns_red_after_the_silence(client, account, settings):
    settings.INFOBIP_HEALTH_SILENCE_SECONDS = 60
    assert post(client, account, fixture("inbound_text")).status_code == 200
    sent_message(account, accepted_ago=timedelta(seconds=10))
    assert health.account_health(account)["state"] == health.GREEN  # not silent for long yet

    sent_message(account, accepted_ago=timedelta(seconds=61))
    # Accepted before the last webhook arrived, so not a silence; but stuck in accepted: a warning.
    assert health.account_health(account)["state"] == health.WARNING

    health.forget(account.pk)  # no webhook at all since either send
    found = health.account_health(account)
    assert found["state"] == health.RED
    assert "no webhook has arrived since" in found["problems"][0]
    assert found["stuck_in_accepted"] == 1


def test_a_webhook_after_the_send_clears_red(client, account, settings):
    settings.INFOBIP_HEALTH_SILENCE_SECONDS = 60
    sent_message(account, accepted_ago=timedelta(seconds=120), status=Message.Status.DELIVERED)
    assert health.account_health(account)["state"] == health.RED
    assert post(client, account, fixture("delivery_delivered")).status_code == 200
    assert health.account_health(account)["state"] == health.GREEN


def test_our_own_empty_test_request_is_not_an_arrival(client, account):
    assert post(client, account, {"results": []}).status_code == 200
    assert health.account_health(account)["last_webhook"]["any"] is None


def test_failed_signature_checks_are_counted(client, account):
    for _ in range(3):
        assert post(client, account, fixture("inbound_text"), signed=False).status_code == 401
    found = health.account_health(account)
    assert found["bad_signatures_last_hour"] == 3
    assert found["state"] == health.WARNING


def test_a_refused_send_is_the_last_error(account):
    from tiktok_channel.backend import InfobipBackend

    message = sent_message(account, accepted_ago=timedelta(0), status=Message.Status.QUEUED)
    message.provider_message_id = "m-1"
    with responses.RequestsMock() as mock:
        mock.post(
            f"{account.base_url}/tiktok/1/messages",
            status=400,
            json={"errorCode": "E400", "description": "Bad sender", "violations": []},
        )
        InfobipBackend().send(message, validity_seconds=60)
    error = health.account_health(account)["last_error"]
    assert (error["where"], error["name"], error["description"]) == ("send", "E400", "Bad sender")


def test_staff_page_and_admin_show_the_health(client, admin_client, account, staff, django_user_model):
    post(client, account, fixture("inbound_text"))
    agent = django_user_model.objects.create_user("plain", password="pw-123456789")
    client.force_login(agent)
    assert client.get("/connections/infobip/").status_code == 403
    assert client.post(f"/connections/infobip/{account.pk}/test/").status_code == 403
    client.force_login(staff)
    page = client.get("/connections/infobip/").content.decode()
    assert f'data-account="{account.pk}" data-state="green"' in page
    assert "Test the webhook" in page
    inbox_page = client.get("/").content.decode()
    assert 'id="connections-link"' in inbox_page

    admin_page = admin_client.get(f"/admin/tiktok_channel/infobipaccount/{account.pk}/change/").content.decode()
    assert 'data-state="green"' in admin_page


def test_partial_setup_is_a_warning_with_the_portal_step(account):
    InfobipAccount.objects.filter(pk=account.pk).update(
        setup_state=InfobipAccount.SetupState.PARTIAL, setup_message="Finish in Infobip's portal: …"
    )
    account.refresh_from_db()
    found = health.account_health(account)
    assert found["state"] == health.WARNING
    assert found["warnings"] == ["Finish in Infobip's portal: …"]


def test_test_button_of_an_unknown_account_is_404(client, staff):
    client.force_login(staff)
    assert client.post("/connections/infobip/999999/test/").status_code == 404
    assert client.get("/connections/infobip/999999/test/").status_code == 405


def test_partial_setup_is_confirmed_once_events_arrive(client, account):
    InfobipAccount.objects.filter(pk=account.pk).update(
        setup_state=InfobipAccount.SetupState.PARTIAL,
        setup_message="Finish in Infobip's portal: …",
        setup_at=timezone.now() - timedelta(minutes=5),
    )
    account.refresh_from_db()
    assert post(client, account, fixture("inbound_text")).status_code == 200
    found = health.account_health(account)
    assert found["state"] == health.GREEN and found["partial_confirmed"]


def test_arrivals_are_written_at_most_once_a_second_per_kind_and_process(client, account, settings):
    settings.INFOBIP_HEALTH_RECORD_EVERY_SECONDS = 1.0
    assert post(client, account, fixture("inbound_text")).status_code == 200
    first = health.account_health(account)["last_webhook"]["inbound"]
    assert post(client, account, fixture("inbound_text")).status_code == 200
    assert health.account_health(account)["last_webhook"]["inbound"] == first  # within the second: not written

    settings.INFOBIP_HEALTH_RECORD_EVERY_SECONDS = 0.0  # the default: every arrival
    assert post(client, account, fixture("inbound_text")).status_code == 200
    assert health.account_health(account)["last_webhook"]["inbound"] > first


def test_forget_lets_the_next_arrival_be_written_at_once(client, account, settings):
    settings.INFOBIP_HEALTH_RECORD_EVERY_SECONDS = 1.0
    assert post(client, account, fixture("inbound_text")).status_code == 200
    health.forget(account.pk)
    assert post(client, account, fixture("inbound_text")).status_code == 200
    assert health.account_health(account)["last_webhook"]["inbound"] is not None


def test_a_send_accepted_within_the_recording_interval_after_a_webhook_is_not_a_silence(account, settings):
    settings.INFOBIP_HEALTH_SILENCE_SECONDS = 60
    settings.INFOBIP_HEALTH_RECORD_EVERY_SECONDS = 1.0
    arrived = time.time() - 300
    cache.set(health._key(account.pk, "webhook:any"), arrived, 600)
    recorded = datetime.fromtimestamp(arrived, tz=UTC)
    message = sent_message(account, accepted_ago=timedelta(seconds=120))
    # Accepted just after the recorded time: a later webhook of that second may not have been written.
    Message.objects.filter(pk=message.pk).update(
        accepted_at=recorded + timedelta(seconds=settings.INFOBIP_HEALTH_RECORD_EVERY_SECONDS / 2)
    )
    assert health.account_health(account)["state"] != health.RED
    Message.objects.filter(pk=message.pk).update(
        accepted_at=recorded + timedelta(seconds=settings.INFOBIP_HEALTH_RECORD_EVERY_SECONDS * 2)
    )
    assert health.account_health(account)["state"] == health.RED


def test_by_default_every_arrival_is_written_and_a_send_just_after_one_can_turn_red(client, account, settings):
    settings.INFOBIP_HEALTH_SILENCE_SECONDS = 60
    assert post(client, account, fixture("inbound_text")).status_code == 200
    first = health.account_health(account)["last_webhook"]["inbound"]
    assert post(client, account, fixture("inbound_text")).status_code == 200
    assert health.account_health(account)["last_webhook"]["inbound"] > first
    arrived = time.time() - 300
    cache.set(health._key(account.pk, "webhook:inbound"), arrived, 600)  # the last arrival, moved back
    message = sent_message(account, accepted_ago=timedelta(seconds=120))
    Message.objects.filter(pk=message.pk).update(
        accepted_at=datetime.fromtimestamp(arrived, tz=UTC) + timedelta(milliseconds=500)
    )
    assert health.account_health(account)["state"] == health.RED


def test_requests_the_processor_has_not_applied_for_the_silence_turn_red(account, settings):
    """Arrivals are recorded by the processor: with it stopped, the page says so instead of only "no webhook"."""
    from inbox.models import WebhookEvent

    settings.INFOBIP_HEALTH_SILENCE_SECONDS = 60

    def stored(ago: timedelta, verdict=WebhookEvent.Verdict.PENDING, connection_id=None):
        return WebhookEvent.objects.create(
            provider="infobip",
            connection_id=connection_id or account.pk,
            path_kind="any",
            received_at=timezone.now() - ago,
            body="{}",
            result_count=1,
            verdict=verdict,
        )

    stored(timedelta(seconds=10))  # pending, but not for long
    stored(timedelta(seconds=120), verdict=WebhookEvent.Verdict.PROCESSED)
    stored(timedelta(seconds=120), connection_id=account.pk + 1000)  # another account's
    assert health.account_health(account)["waiting_to_be_applied"] == 0

    stored(timedelta(seconds=61))
    found = health.account_health(account)
    assert found["state"] == health.RED
    assert found["waiting_to_be_applied"] == 1
    assert "process_webhooks" in found["problems"][0]
