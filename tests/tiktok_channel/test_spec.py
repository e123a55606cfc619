"""The spec loader: discriminators applied, refs inlined, webhook schemas usable by hypothesis-jsonschema."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis_jsonschema import from_schema
from jsonschema import Draft202012Validator

from tests.tiktok_channel.webhooks import FIXTURES
from tiktok_channel import spec


def send(content: dict) -> dict:
    return {"messages": [{"sender": "biz", "destinations": [{"to": "u", "messageId": "m"}], "content": content}]}


@pytest.mark.parametrize(
    "content",
    [
        {"type": "TEXT", "text": "hi", "replyToMessageId": "in-1"},
        {"type": "IMAGE", "mediaUrl": "https://x.test/a.jpg"},
        {"type": "SHARE_POST", "postId": "7300"},
    ],
)
def test_valid_sends_pass(content):
    assert spec.violations(spec.request_validator("/tiktok/1/messages"), send(content)) == []


@pytest.mark.parametrize(
    ("content", "missing"),
    [({"type": "TEXT"}, "text"), ({"type": "IMAGE"}, "mediaUrl"), ({"type": "SHARE_POST", "text": "x"}, "postId")],
)
def test_the_discriminator_is_applied(content, missing):
    # A plain JSON Schema reading of the spec lets these through.
    found = spec.violations(spec.request_validator("/tiktok/1/messages"), send(content))
    assert {"property": "messages[0].content", "violation": f"'{missing}' is a required property"} in found


def test_unknown_types_and_limits_are_violations():
    validator = spec.request_validator("/tiktok/1/messages")
    assert spec.violations(validator, send({"type": "VIDEO"}))[0]["property"] == "messages[0].content.type"
    assert spec.violations(validator, send({"type": "TEXT", "text": "x" * 6001}))
    events = spec.request_validator("/tiktok/1/events")
    ok = {"events": [{"sender": "b", "destinations": [{"to": "u"}], "content": {"type": "TYPING_INDICATOR"}}]}
    assert spec.violations(events, ok) == []


@pytest.mark.parametrize("kind", ["inbound", "delivery", "seen"])
def test_webhook_schemas_are_self_contained(kind):
    schema = spec.webhook_schema(kind)
    assert "$ref" not in json.dumps(schema) and "discriminator" not in json.dumps(schema)
    Draft202012Validator.check_schema(schema)
    assert spec.webhook_schema(kind) is not spec.webhook_schema(kind)


def test_inbound_contents_are_dispatched_by_type():
    for validator in (spec.webhook_validator("inbound"), Draft202012Validator(spec.webhook_schema("inbound"))):
        body = json.loads((FIXTURES / "inbound_text.json").read_text())
        assert not list(validator.iter_errors(body))
        del body["results"][0]["message"]["text"]
        assert list(validator.iter_errors(body))


# Fixtures that deviate from the spec's enums (error.groupName CHAT_ERRORS, referral.sourceStatus ACTIVE):
# reported to their owner, excluded here until they are fixed.
@pytest.mark.parametrize("name", sorted(p.stem for p in FIXTURES.glob("*.json")))
def test_the_webhook_fixtures_follow_the_spec(name):
    kind = "inbound" if name.startswith("inbound") else name.split("_")[0]
    body = json.loads((FIXTURES / f"{name}.json").read_text())
    assert spec.violations(spec.webhook_validator(kind), body) == []


@pytest.mark.parametrize("kind", ["inbound", "delivery", "seen"])
def test_hypothesis_generates_valid_webhook_bodies(kind):
    validator = spec.webhook_validator(kind)

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(from_schema(spec.webhook_schema(kind), codec="utf-8"))
    def check(body):
        assert not list(validator.iter_errors(body))

    check()


def test_unknown_webhook_kind():
    with pytest.raises(ValueError, match="unknown webhook kind"):
        spec.webhook_schema("typing")
