"""Every Infobip endpoint the product calls, end to end through the sandbox (a real HTTP server), no mock:
the REST API, Redis, a real Celery worker, the client's real HTTP call and the sandbox's checks of the body.

`POST /tiktok/1/messages` is `test_outbound_e2e.py::test_reply_is_accepted_then_delivered_then_seen`; the events and
the ads conversions are here. `tests/tiktok_channel/sandbox/test_endpoint_coverage.py` fails when the client calls
an endpoint the sandbox lacks.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache

from inbox.models import Conversation, Conversion
from inbox.services.conversations import typing_throttle_key

pytestmark = [pytest.mark.e2e]


def counter(stack, name: str) -> int:
    return stack.sandbox.counters().get(name, 0)


def ad_conversation(stack, user: str) -> Conversation:
    stack.simulate_inbound(user, referral_ad=True)
    conversation = stack.conversation(user)
    assert conversation.referral["source"] == "ad", conversation.referral
    return conversation


def report_conversion(stack, conversation: Conversation, **fields) -> int:
    response = stack.api.post(
        f"{stack.web_url}/api/v1/conversations/{conversation.pk}/conversions/", json=fields, timeout=30
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    return response.json()["id"]


def conversion_status(conversion_id: int) -> str:
    return Conversion.objects.get(pk=conversion_id).status


def test_typing_indicator_and_mark_as_read_reach_the_sandbox(stack):
    stack.simulate_inbound("tt-events-user", "Anyone there?")
    conversation = stack.conversation("tt-events-user")
    cache.delete(typing_throttle_key(conversation.pk))
    url = f"{stack.web_url}/api/v1/conversations/{conversation.pk}"

    typing = stack.api.post(f"{url}/typing/", timeout=10)
    assert typing.status_code == 202 and typing.json() == {"queued": True}, typing.text
    stack.wait_for(lambda: counter(stack, "events_typing_indicator") == 1, 15, "the typing indicator in the sandbox")

    read = stack.api.post(f"{url}/read/", timeout=10)
    assert read.status_code < 300, read.text
    stack.wait_for(lambda: counter(stack, "events_mark_as_read") == 1, 15, "MARK_AS_READ in the sandbox")


def test_conversion_from_an_ad_conversation_ends_sent_with_the_guides_body(stack):
    conversation = ad_conversation(stack, "tt-ad-user")
    conversion_id = report_conversion(
        stack, conversation, event="CompletePayment", value="49.90", currency="EUR", quantity=2
    )

    stack.wait_for(lambda: conversion_status(conversion_id) == "sent", 15, "the conversion to be sent")
    (received,) = stack.sandbox.state()["conversions"]
    assert received["status"] == "sent" and received["event"] == "CompletePayment"
    assert received["user"] == "tt-ad-user" and received["sourceId"] == stack.business_id
    assert received["properties"] == {"quantity": 2, "price": 24.95, "value": 49.9, "currency": "EUR"}
    conversion = Conversion.objects.get(pk=conversion_id)
    assert received["event_time"] == int(conversion.occurred_at.timestamp())
    # What Infobip answered is kept on the row.
    assert conversion.provider_response["conversions"][0]["id"] == received["id"]


def test_conversion_after_a_sandbox_fault_is_retried_and_sent_once(stack):
    conversation = ad_conversation(stack, "tt-ad-retry")
    stack.sandbox.control(fail_next=1, fail_status=503)
    conversion_id = report_conversion(stack, conversation, event="SubmitForm")

    stack.wait_for(lambda: conversion_status(conversion_id) == "sent", 20, "the conversion to be sent after the 503")
    assert counter(stack, "fault_http_503") == 1
    assert counter(stack, "conversions_sent") == 1
    assert Conversion.objects.get(pk=conversion_id).tries == 2
    (received,) = stack.sandbox.state()["conversions"]
    assert received["event"] == "SubmitForm" and received["properties"] == {"quantity": 1}
