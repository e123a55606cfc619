"""Fuzzing the webhook: arbitrary bytes, JSON of every shape, other encodings, broken signatures.

Never a 5xx; a request that fails authentication stores nothing; an authenticated one is kept in the ledger.
A JSON object with a `results` array is answered 200 whatever its results hold: a bad one is kept with its reason
and never costs the others; 400 is only for bodies that are not such an object.
"""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inbox.models import Message, WebhookEvent
from tests.tiktok_channel.webhooks import fixture, post

pytestmark = pytest.mark.django_db
FUZZ = settings(
    max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)
ACCEPTABLE = {200, 400, 401, 413, 415}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)
# Results that look like Infobip's but with any value in any field.
mangled_results = st.builds(
    lambda base, changes: {**base, **changes},
    st.sampled_from(
        [fixture(name)["results"][0] for name in ("inbound_text", "inbound_reaction", "delivery_delivered", "seen")]
    ),
    st.dictionaries(
        st.sampled_from(
            [
                "messageId",
                "sender",
                "to",
                "message",
                "status",
                "error",
                "seenAt",
                "receivedAt",
                "doneAt",
                "callbackData",
            ]
        ),
        json_values,
        max_size=3,
    ),
)


def test_arbitrary_signed_bytes_never_5xx(client, account):
    @FUZZ
    @given(body=st.binary(max_size=2000))
    def check(body):
        response = post(client, account, body)
        assert response.status_code in ACCEPTABLE, (response.status_code, body[:200])

    check()


def test_arbitrary_signed_json_never_5xx(client, account):
    @FUZZ
    @given(value=json_values | st.builds(lambda r: {"results": r}, st.lists(mangled_results, max_size=4)))
    def check(value):
        response = post(client, account, json.dumps(value).encode())
        assert response.status_code in ACCEPTABLE, (response.status_code, value)
        if isinstance(value, dict) and isinstance(value.get("results"), list):
            assert response.status_code == 200, (response.content, value)

    check()


def test_arbitrary_results_never_cost_the_good_ones(client, account):
    good = fixture("inbound_text")["results"][0]

    @FUZZ
    @given(results=st.lists(mangled_results | json_values, max_size=4), position=st.integers(0, 4))
    def check(results, position):
        Message.objects.filter(provider_message_id="in-text-1").delete()
        results.insert(min(position, len(results)), good)
        response = post(client, account, json.dumps({"results": results}).encode())
        assert response.status_code == 200, (response.content, results)
        assert Message.objects.filter(provider_message_id="in-text-1").exists(), results
        event = WebhookEvent.objects.order_by("-pk").first()
        assert event.verdict in ("processed", "partial") and event.result_count == len(results)

    check()


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "latin-1"])
def test_other_encodings_never_5xx(client, account, encoding):
    payload = fixture("inbound_text")
    payload["results"][0]["message"]["text"] = "Grüße aus Köln"
    body = json.dumps(payload, ensure_ascii=False).encode(encoding)
    response = post(client, account, body)
    assert response.status_code in (200, 400)
    assert WebhookEvent.objects.count() == 1  # authenticated: kept either way


def test_broken_signatures_store_nothing(client, account):
    body = json.dumps(fixture("inbound_text")).encode()

    @FUZZ
    @given(signature=st.text(max_size=200).filter(lambda s: "\n" not in s and "\r" not in s))
    def check(signature):
        response = post(client, account, body, signed=False, headers={"X-Hub-Signature": signature})
        assert response.status_code == 401

    check()
    assert not WebhookEvent.objects.exists() and not Message.objects.exists()
