"""Every payload Infobip's own spec allows is accepted with 200 (generated with hypothesis-jsonschema).

One tightening of the spec: `results` is required and non-empty. The spec marks nothing required on the
report bodies, but a body without results carries no event; we answer it 400 (tested in
test_webhook_security.py). A shape the spec allows that we do not understand (a message without `type`) is kept
as unrecognized and answered 200.
"""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from inbox.models import Message
from tests.tiktok_channel.webhooks import post
from tiktok_channel.spec import webhook_schema, webhook_validator

pytestmark = pytest.mark.django_db


def body_schema(kind: str) -> dict:
    schema = webhook_schema(kind)
    schema.setdefault("required", [])
    schema["required"] = sorted({*schema["required"], "results"})
    schema["properties"]["results"]["minItems"] = 1
    schema["properties"]["results"]["maxItems"] = 5
    return schema


def generated(kind: str):
    return from_schema(body_schema(kind), codec="utf-8")


HYPOTHESIS = settings(
    max_examples=30, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)


def test_every_spec_valid_inbound_payload_is_accepted(client, account):
    @HYPOTHESIS
    @given(payload=generated("inbound"), to_our_sender=st.booleans())
    def check(payload, to_our_sender):
        assert not list(webhook_validator("inbound").iter_errors(payload))  # we really post spec-valid bodies
        if to_our_sender:  # most generated ones go to our sender, so they are processed, not just kept
            for item in payload["results"]:
                item["to"] = "biz-1"
        response = post(client, account, payload)
        assert response.status_code == 200, (response.content, json.dumps(payload)[:2000])
        assert "error" not in response.json(), response.json()

    check()
    assert Message.objects.filter(direction="in").exists()


@pytest.mark.parametrize("kind", ["delivery", "seen"])
def test_every_spec_valid_report_is_accepted(client, account, kind):
    @HYPOTHESIS
    @given(payload=generated(kind))
    def check(payload):
        assert not list(webhook_validator(kind).iter_errors(payload))
        response = post(client, account, payload)
        assert response.status_code == 200, (response.content, json.dumps(payload)[:2000])
        assert "error" not in response.json(), response.json()

    check()
