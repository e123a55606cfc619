"""Ads conversions to `POST /saas/tiktok-ads/1/conversions`: the body (shape from Infobip's guide, not in the
spec) and the task's outcomes, recorded on the row. Tasks run eagerly: retries re-run at once."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
import responses
from django.utils import timezone

from inbox import providers
from inbox.models import AuditLog, Contact, Conversation, Conversion
from inbox.services import conversion_report
from inbox.tasks import report_conversion
from tiktok_channel.models import TikTokSender

pytestmark = pytest.mark.django_db
URL = "https://xyz.api.infobip.com/saas/tiktok-ads/1/conversions"


@pytest.fixture(autouse=True)
def no_real_enqueue(monkeypatch):
    enqueued: list[int] = []
    monkeypatch.setattr("inbox.outbox.schedule_conversion", enqueued.append)
    return enqueued


@pytest.fixture
def conversion(account, inbox, agent) -> Conversion:
    contact = Contact.objects.create(channel="tiktok", endpoint_id="biz-1", channel_user_id="user-1")
    conversation = Conversation.objects.create(
        provider="infobip",
        inbox=inbox,
        contact=contact,
        provider_conversation_id="user-1",
        last_activity_at=timezone.now(),
        last_inbound_at=timezone.now() - timedelta(hours=1),
        referral={"source": "ad", "ad_id": "ad-7"},
    )
    return conversion_report(
        conversation_id=conversation.pk,
        author=agent,
        event="CompletePayment",
        value=Decimal("59.80"),
        currency="eur",
        quantity=2,
    )


def run(conversion):
    return report_conversion.apply(args=[conversion.pk]).result


@responses.activate
def test_sent_with_the_documented_body(conversion, account, no_real_enqueue):
    responses.post(URL, json={"status": "OK"})
    assert run(conversion) == "sent"

    (call,) = responses.calls
    assert call.request.headers["Authorization"] == f"App {account.api_key}"
    assert json.loads(call.request.body) == {
        "sourceId": "biz-1",
        "conversions": [
            {
                "event": "CompletePayment",
                "event_time": int(conversion.occurred_at.timestamp()),
                "user": {"tiktok_unique_identifier": "user-1"},
                "properties": {"quantity": 2, "price": 29.9, "currency": "EUR", "value": 59.8},
            }
        ],
    }
    conversion.refresh_from_db()
    assert (conversion.status, conversion.tries, conversion.error) == ("sent", 1, {})
    assert conversion.provider_response == {"status": "OK"}
    assert conversion.sent_at is not None
    assert AuditLog.objects.filter(action="conversion.sent", conversation=conversion.conversation).exists()


@responses.activate
def test_without_value_only_the_quantity_is_sent(account, inbox, agent):
    contact = Contact.objects.create(channel="tiktok", endpoint_id="biz-1", channel_user_id="user-2")
    conversation = Conversation.objects.create(
        provider="infobip", inbox=inbox, contact=contact, last_activity_at=timezone.now(), referral={"source": "ad"}
    )
    conversion = conversion_report(conversation_id=conversation.pk, author=agent, event="SubmitForm")
    responses.post(URL, json={})
    assert run(conversion) == "sent"
    assert json.loads(responses.calls[0].request.body)["conversions"][0]["properties"] == {"quantity": 1}


@responses.activate
def test_refused_request_fails_at_once_with_infobips_description(conversion):
    responses.post(
        URL,
        status=400,
        json={"errorCode": "E400", "description": "Invalid sourceId.", "violations": [{"property": "sourceId"}]},
    )
    assert run(conversion) == "failed"
    assert len(responses.calls) == 1
    conversion.refresh_from_db()
    assert conversion.status == "failed" and conversion.failed_at is not None
    assert conversion.error["name"] == "E400"
    assert conversion.error["description"] == "Invalid sourceId."
    assert conversion.error["permanent"] is True
    assert AuditLog.objects.filter(action="conversion.failed", after__error__name="E400").exists()


@responses.activate
def test_503_is_retried_once_then_sent(conversion, monkeypatch):
    countdowns = []
    original = report_conversion.retry
    monkeypatch.setattr(
        report_conversion, "retry", lambda *a, **kw: countdowns.append(kw["countdown"]) or original(*a, **kw)
    )
    responses.post(URL, status=503, json={"errorCode": "E500", "description": "Something went wrong."})
    responses.post(URL, json={"status": "OK"})
    assert run(conversion) == "sent"
    assert len(responses.calls) == 2
    assert len(countdowns) == 1 and countdowns[0] > 0
    conversion.refresh_from_db()
    assert (conversion.status, conversion.tries) == ("sent", 2)


@responses.activate
def test_429_honours_retry_after(conversion, monkeypatch):
    countdowns = []
    original = report_conversion.retry
    monkeypatch.setattr(
        report_conversion, "retry", lambda *a, **kw: countdowns.append(kw["countdown"]) or original(*a, **kw)
    )
    responses.post(URL, status=429, headers={"Retry-After": "42"}, json={"errorCode": "E429"})
    responses.post(URL, json={})
    assert run(conversion) == "sent"
    assert countdowns == [42.0]


@responses.activate
def test_retries_are_bounded_then_failed_with_the_reason(conversion, settings):
    settings.OUTBOX_SEND_MAX_TRIES = 3
    responses.post(URL, status=503, json={"errorCode": "E500", "description": "Something went wrong."})
    assert run(conversion) == "failed"
    assert len(responses.calls) == 3
    conversion.refresh_from_db()
    assert conversion.status == "failed" and conversion.tries == 3
    assert conversion.error["retries_exhausted"] is True
    assert conversion.error["description"] == "Something went wrong."


@responses.activate
def test_no_active_sender_fails_without_a_call(conversion):
    TikTokSender.objects.filter(business_account_id="biz-1").update(active=False)
    assert run(conversion) == "failed"
    assert len(responses.calls) == 0
    conversion.refresh_from_db()
    assert conversion.error["name"] == "SENDER_UNAVAILABLE"


@responses.activate
def test_a_recorded_result_is_never_overwritten(conversion):
    responses.post(URL, json={})
    assert run(conversion) == "sent"
    assert run(conversion) == "skipped"
    assert len(responses.calls) == 1


def test_channel_registers_its_conversion_hook(monkeypatch):
    from django.apps import apps

    from tiktok_channel.apps import TikTokChannelConfig

    monkeypatch.setattr(providers, "_backends", {})
    TikTokChannelConfig.ready(apps.get_app_config("tiktok_channel"))
    assert providers.get("infobip").capabilities.conversions
