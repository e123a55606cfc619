"""`POST /saas/tiktok-ads/1/conversions` in the sandbox: authentication, the guide's body shape, fault switches."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import requests

from inbox.models import Contact, Conversation, Conversion
from tests.tiktok_channel.sandbox.conftest import BUSINESS_ID
from tiktok_channel import client

PATH = client.CONVERSIONS_PATH


def conversion_body(**overrides) -> dict:
    conversion = {
        "event": "CompletePayment",
        "event_time": 1_760_000_000,
        "user": {"tiktok_unique_identifier": "user-1"},
        "properties": {"quantity": 2, "price": 5.0, "value": 10.0, "currency": "EUR"},
    }
    return {"sourceId": BUSINESS_ID, "conversions": [conversion], **overrides}


def with_conversion(**fields) -> dict:
    body = conversion_body()
    body["conversions"][0].update(fields)
    return body


def product_body(*, value: Decimal | None, currency: str, event: str) -> dict:
    """The body the product's client builds for a conversion (unsaved rows: no database needed)."""
    conversation = Conversation(contact=Contact(channel_user_id="user-1"))
    conversion = Conversion(
        conversation=conversation,
        event=event,
        value=value,
        currency=currency,
        quantity=3,
        occurred_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    return client.conversion_request(conversion, business_account_id=BUSINESS_ID)


@pytest.mark.parametrize(
    ("value", "currency", "event"),
    [(Decimal("29.97"), "EUR", "CompletePayment"), (None, "", "SubmitForm")],
)
def test_the_products_conversion_body_is_accepted_and_logged_as_sent(running, caplog, value, currency, event):
    caplog.set_level(logging.INFO, logger="tiktok_channel.sandbox.server")
    response = running.post(PATH, product_body(value=value, currency=currency, event=event))

    assert response.status_code == 200, response.text
    (result,) = response.json()["conversions"]
    assert result["event"] == event and result["status"] == "ACCEPTED" and result["id"]
    (logged,) = running.sandbox.state()["conversions"]
    assert logged["id"] == result["id"] and logged["status"] == "sent"
    assert logged["user"] == "user-1" and logged["sourceId"] == BUSINESS_ID and logged["event"] == event
    assert logged["event_time"] == int(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp())
    assert running.sandbox.counters["conversions_sent"] == 1
    assert f"sandbox: conversion {result['id']} sent (event {event}, user user-1" in caplog.text


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_without_a_valid_api_key_it_is_401_and_nothing_is_recorded(running, key):
    response = running.post(PATH, conversion_body(), key=key)
    assert response.status_code == 401 and response.json()["errorCode"] == "E401"
    assert running.sandbox.state()["conversions"] == []


@pytest.mark.parametrize(
    ("body", "prop", "violation"),
    [
        ({"conversions": conversion_body()["conversions"]}, "", "'sourceId' is a required property"),
        (conversion_body(conversions=[]), "conversions", "should be non-empty"),
        (with_conversion(event_time="yesterday"), "conversions[0].event_time", "is not of type 'integer'"),
        (with_conversion(event=""), "conversions[0].event", "should be non-empty"),
        (with_conversion(user={}), "conversions[0].user", "'tiktok_unique_identifier' is a required property"),
        (
            with_conversion(properties={"value": 10.0}),
            "conversions[0].properties",
            "'currency' is a dependency of 'value'",
        ),
        (
            with_conversion(properties={"value": 10.0, "currency": "euro"}),
            "conversions[0].properties.currency",
            "does not match",
        ),
        (with_conversion(properties={"quantity": 0}), "conversions[0].properties.quantity", "less than the minimum"),
        (conversion_body(sourceId="someone-else"), "sourceId", "is not a TikTok business account of this API key"),
    ],
)
def test_a_body_off_the_guides_shape_is_400_with_violations(running, body, prop, violation):
    response = running.post(PATH, body)

    assert response.status_code == 400, response.text
    error = response.json()
    assert error["errorCode"] == "E400"
    assert any(v["property"] == prop and violation in v["violation"] for v in error["violations"]), error
    assert running.sandbox.state()["conversions"] == []


def test_not_json_is_400(running):
    response = running.post(PATH, b"{nope")
    assert response.status_code == 400 and response.json()["violations"][0]["violation"] == (
        "Request body is not valid JSON."
    )


def test_get_is_405(running):
    response = running.get(PATH)
    assert response.status_code == 405 and response.json()["errorCode"] == "E405"


def test_fault_switches_apply_to_conversions(running):
    running.control(fail_next=1, fail_status=502, throttle_next=1, retry_after_s=3, timeout_next=1, timeout_ms=2000)
    with pytest.raises(requests.ReadTimeout):
        running.post(PATH, conversion_body(), timeout=0.3)
    assert running.post(PATH, conversion_body()).status_code == 502
    throttled = running.post(PATH, conversion_body())
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"
    assert running.post(PATH, conversion_body()).status_code == 200
    counters = running.sandbox.counters
    assert counters["fault_timeout"] == counters["fault_http_502"] == counters["fault_http_429"] == 1
    assert counters["conversions_sent"] == 1
