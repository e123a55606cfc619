"""Ads conversions from the inbox side: the service's checks, the row and audit it writes, the report scheduled
through `inbox.channels` on commit, and the API."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from inbox.errors import ApplicationError
from inbox.models import AuditLog, Conversation, Conversion
from inbox.services import conversion_report, conversion_result_record
from tests.inbox.helpers import api

pytestmark = pytest.mark.django_db


@pytest.fixture
def reported(monkeypatch):
    """Conversion ids the inbox asked the channel to report."""
    asked: list[int] = []
    monkeypatch.setattr("inbox.outbox.schedule_conversion", asked.append)
    return asked


@pytest.fixture
def from_ad(world):
    Conversation.objects.filter(pk=world["bob"].pk).update(referral={"source": "ad", "ad_name": "Winter sale"})
    return world["bob"]


def report(conversation, agent, **kwargs):
    values = {"event": "CompletePayment", "value": Decimal("49.90"), "currency": "EUR", "quantity": 1}
    values.update(kwargs)
    return conversion_report(conversation_id=conversation.pk, author=agent, **values)


class TestService:
    def test_queues_audits_and_schedules_the_report_on_commit(
        self, world, from_ad, reported, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks() as callbacks:
            conversion = report(from_ad, world["agent"], currency="eur", quantity=2)
            assert reported == []  # not before the commit
        for callback in callbacks:
            callback()
        assert reported == [conversion.pk]
        row = Conversion.objects.get()
        assert (row.event, row.value, row.currency, row.quantity) == ("CompletePayment", Decimal("49.9"), "EUR", 2)
        assert (row.status, row.author, row.conversation_id) == ("queued", world["agent"], from_ad.pk)
        audit = AuditLog.objects.get(action="conversion.queued")
        assert audit.actor == world["agent"] and audit.conversation_id == from_ad.pk
        assert audit.after["conversion_id"] == row.pk and audit.after["value"] == "49.9000"

    @pytest.mark.parametrize("referral", [{}, {"source": "tiktok_me", "ref": "x"}])
    def test_refuses_a_conversation_that_did_not_come_from_an_ad(self, world, reported, referral):
        Conversation.objects.filter(pk=world["bob"].pk).update(referral=referral)
        with pytest.raises(ApplicationError) as error:
            report(world["bob"], world["agent"])
        assert (error.value.code, error.value.status) == ("not_from_ad", 409)
        assert not Conversion.objects.exists() and reported == []

    @pytest.mark.parametrize(
        ("kwargs", "code", "field"),
        [
            ({"event": "Purchase"}, "invalid_event", "event"),
            ({"value": Decimal("-0.01")}, "invalid_value", "value"),
            ({"value": Decimal("NaN")}, "invalid_value", "value"),
            ({"value": Decimal(10) ** 12}, "invalid_value", "value"),
            ({"currency": "EURO"}, "invalid_currency", "currency"),
            ({"currency": "E1R"}, "invalid_currency", "currency"),
            ({"currency": ""}, "currency_required", "currency"),
            ({"quantity": 0}, "invalid_quantity", "quantity"),
        ],
    )
    def test_refuses_invalid_input(self, world, from_ad, reported, kwargs, code, field):
        with pytest.raises(ApplicationError) as error:
            report(from_ad, world["agent"], **kwargs)
        assert (error.value.code, error.value.status) == (code, 422)
        assert field in error.value.fields
        assert not Conversion.objects.exists() and reported == []

    def test_value_is_optional(self, world, from_ad, reported):
        conversion = report(from_ad, world["agent"], event="SubmitForm", value=None, currency="")
        assert (conversion.value, conversion.currency, conversion.quantity) == (None, "", 1)

    def test_unknown_conversation_is_404(self, world, reported):
        with pytest.raises(ApplicationError) as error:
            conversion_report(conversation_id=10**9, author=world["agent"], event="Contact")
        assert error.value.status == 404

    def test_result_is_recorded_once(self, world, from_ad, reported, live_events, django_capture_on_commit_callbacks):
        conversion = report(from_ad, world["agent"])
        with django_capture_on_commit_callbacks(execute=True):
            assert conversion_result_record(conversion_id=conversion.pk, sent=True, tries=1, response={"ok": 1})
            assert not conversion_result_record(
                conversion_id=conversion.pk, sent=False, tries=2, error={"name": "LATE"}
            )
        conversion.refresh_from_db()
        assert (conversion.status, conversion.provider_response, conversion.error) == ("sent", {"ok": 1}, {})
        assert [event for _, event in live_events] == [
            {
                "type": "conversion.updated",
                "conversation_id": from_ad.pk,
                "conversion_id": conversion.pk,
                "status": "sent",
                "version": 2,
            }
        ]


class TestApi:
    def url(self, conversation):
        return f"/api/v1/conversations/{conversation.pk}/conversions/"

    def test_report_answers_202_with_the_queued_row_and_lists_it(self, world, from_ad, reported):
        client = api(world["agent"])
        response = client.post(
            self.url(from_ad),
            {"event": "PlaceAnOrder", "value": "19.5", "currency": "usd", "quantity": 3},
            format="json",
        )
        assert response.status_code == 202, response.content
        body = response.json()
        assert body["event"] == "PlaceAnOrder"
        assert (body["value"], body["currency"], body["quantity"]) == ("19.5000", "USD", 3)
        assert (body["status"], body["error"], body["author"]["username"]) == ("queued", None, "agent")

        listed = client.get(self.url(from_ad))
        assert listed.status_code == 200
        assert [item["id"] for item in listed.json()] == [body["id"]]
        detail = client.get(f"/api/v1/conversations/{from_ad.pk}/").json()
        assert [item["id"] for item in detail["conversions"]] == [body["id"]]

    def test_more_than_the_hourly_limit_per_conversation_is_429_with_a_reason(self, world, from_ad, reported, settings):
        """30 reports of 999,999,999 in a row were accepted; now the limit per conversation and hour holds."""
        settings.CONVERSIONS_PER_CONVERSATION_PER_HOUR = 3
        client = api(world["agent"])
        body = {"event": "CompletePayment", "value": "999999999", "currency": "EUR"}
        answers = [client.post(self.url(from_ad), body, format="json") for _ in range(4)]
        assert [a.status_code for a in answers] == [202, 202, 202, 429]
        assert answers[-1].json()["code"] == "conversion_rate_limited" and "3" in answers[-1].json()["message"]
        assert Conversion.objects.filter(conversation=from_ad).count() == 3
        Conversion.objects.update(occurred_at=timezone.now() - timedelta(hours=1, seconds=1))
        assert client.post(self.url(from_ad), body, format="json").status_code == 202  # an hour later

    def test_not_from_ad_is_409(self, world, reported):
        response = api(world["agent"]).post(self.url(world["alice"]), {"event": "Contact"}, format="json")
        assert response.status_code == 409
        assert response.json()["code"] == "not_from_ad"

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"event": "Purchase"}, "event"),
            ({"event": "CompletePayment", "value": "-1", "currency": "EUR"}, "value"),
            ({"event": "CompletePayment", "value": "1", "currency": "EURO"}, "currency"),
            ({"event": "CompletePayment", "value": "1", "currency": "EUR", "quantity": 0}, "quantity"),
        ],
    )
    def test_invalid_input_is_422(self, world, from_ad, reported, body, field):
        response = api(world["agent"]).post(self.url(from_ad), body, format="json")
        assert response.status_code == 422
        assert field in response.json()["fields"]
        assert not Conversion.objects.exists()

    def test_failed_result_shows_infobips_description(self, world, from_ad, reported):
        conversion = report(from_ad, world["agent"])
        conversion_result_record(
            conversion_id=conversion.pk,
            sent=False,
            tries=1,
            error={"name": "E400", "description": "Invalid sourceId.", "permanent": True, "http_status": 400},
        )
        (item,) = api(world["agent"]).get(self.url(from_ad)).json()
        assert item["status"] == "failed"
        assert item["error"] == {"name": "E400", "description": "Invalid sourceId.", "permanent": True}

    @pytest.mark.parametrize("method", ["get", "post"])
    def test_outsider_gets_404(self, world, from_ad, reported, method):
        response = getattr(api(world["outsider"]), method)(self.url(from_ad), {"event": "Contact"}, format="json")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
        assert not Conversion.objects.exists()

    @pytest.mark.parametrize("method", ["get", "post"])
    def test_anonymous_is_refused(self, world, from_ad, method):
        response = getattr(APIClient(), method)(self.url(from_ad))
        assert response.status_code in (401, 403)
        assert response.json()["code"] == "not_authenticated"
