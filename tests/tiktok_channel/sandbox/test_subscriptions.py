"""The one-step setup against the sandbox's Subscriptions Management (a real HTTP server), and the sandbox's routing
of webhooks by the subscriptions it holds."""

from __future__ import annotations

import json

import pytest
import requests

from tiktok_channel import setup
from tiktok_channel.models import InfobipAccount
from tiktok_channel.sandbox.accounts import SandboxAccount, StaticAccounts
from tiktok_channel.sandbox.behaviour import Behaviour
from tiktok_channel.sandbox.server import Sandbox, SandboxServer
from tiktok_channel.webhook_auth import WebhookAuth, verify

from .conftest import API_KEY, BUSINESS_ID

pytestmark = pytest.mark.django_db


@pytest.fixture
def sandbox(receiver, settings):
    # Our webhook URL is the receiver's, so what the sandbox posts through the subscription can be seen.
    settings.PUBLIC_BASE_URL = receiver.url
    legacy = SandboxAccount(
        name="Test",
        api_key=API_KEY,
        webhook_url=f"{receiver.url}/legacy/",
        auth=WebhookAuth(mode="header", secret="legacy", signature_header="X-Legacy"),
        sender_ids=(BUSINESS_ID,),
    )
    server = SandboxServer(Sandbox(StaticAccounts([legacy]), Behaviour(webhook_retries=0)))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def account(make_account, sandbox):
    return make_account(
        sender_id=BUSINESS_ID,
        base_url=sandbox.url,
        api_key=API_KEY,
        webhook_auth="basic",
        basic_username="u",
        basic_password="p",
        webhook_secret="",
    )


def control(sandbox, **switches) -> None:
    response = requests.post(f"{sandbox.url}/sandbox/control", json={"set": switches}, timeout=5)
    assert response.status_code == 200, response.text


def listed(sandbox, path: str) -> list[dict]:
    response = requests.get(f"{sandbox.url}{path}", headers={"Authorization": f"App {API_KEY}"}, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()["results"]


def inbound(sandbox, text: str = "Hi") -> dict:
    return sandbox.sandbox.inbound({"sender": BUSINESS_ID, "user": "user-1", "text": text})


def test_setup_from_nothing_creates_three_objects_and_switches_the_verifier(sandbox, account):
    report = setup.account_setup(account.pk)

    assert report.state == "complete", report.as_dict()
    assert [s["outcome"] for s in report.steps] == ["ok", "created", "created", "created"]
    account.refresh_from_db()
    assert account.setup_state == InfobipAccount.SetupState.COMPLETE
    assert account.webhook_auth == "hmac" and account.hmac_algorithm == "HMAC_SHA_256"
    assert len(account.webhook_secret) >= 64
    security = listed(sandbox, "/subscriptions/1/security")
    profiles = listed(sandbox, "/subscriptions/1/profiles")
    subscriptions = listed(sandbox, "/subscriptions/1/subscription/TIKTOK")
    assert [s["authId"] for s in security] == [account.infobip_security_id]
    assert security[0]["credentials"]["secretKey"] == "*****"  # never handed back
    assert [(p["profileId"], p["webhook"]["notifyUrl"]) for p in profiles] == [
        (account.infobip_profile_id, account.webhook_url)
    ]
    assert [(s["subscriptionId"], sorted(s["events"])) for s in subscriptions] == [
        (account.infobip_subscription_id, ["DELIVERY", "INBOUND_MESSAGE", "SEEN"])
    ]


def test_second_run_changes_nothing_and_duplicates_nothing(sandbox, account):
    setup.account_setup(account.pk)
    account.refresh_from_db()
    first = (account.infobip_security_id, account.infobip_profile_id, account.infobip_subscription_id)
    secret = account.webhook_secret

    report = setup.account_setup(account.pk)

    account.refresh_from_db()
    assert report.state == "complete", report.as_dict()
    assert [s["outcome"] for s in report.steps[1:]] == ["unchanged", "unchanged", "unchanged"]
    assert (account.infobip_security_id, account.infobip_profile_id, account.infobip_subscription_id) == first
    assert account.webhook_secret == secret
    assert len(listed(sandbox, "/subscriptions/1/security")) == 1
    assert len(listed(sandbox, "/subscriptions/1/profiles")) == 1
    assert len(listed(sandbox, "/subscriptions/1/subscription/TIKTOK")) == 1


def test_inbound_goes_through_the_subscription_signed_for_our_verifier(sandbox, account, receiver):
    inbound(sandbox, "before setup")
    assert receiver.wait_for(1)[0].path == "/legacy/"  # set up by hand: the account's own URL and header

    setup.account_setup(account.pk)
    account.refresh_from_db()
    inbound(sandbox, "after setup")

    captured = receiver.wait_for(2)[1]
    assert captured.path == account.webhook_url.removeprefix(receiver.url)
    assert captured.json["results"][0]["message"]["text"] == "after setup"
    verify(account.webhook_auth_settings(), captured.headers, captured.body)  # raises if it would be refused


def test_broken_or_missing_subscription_posts_nothing(sandbox, account, receiver):
    setup.account_setup(account.pk)
    control(sandbox, subscriptions_broken=True)

    result = inbound(sandbox)

    assert result["status"] is None
    assert sandbox.sandbox.counters["webhooks_inbound_unsubscribed"] == 1
    assert receiver.requests == []


def test_refused_channel_keeps_what_was_created_and_names_the_portal_step(sandbox, account, receiver):
    control(sandbox, subscription_fail_status=400)

    report = setup.account_setup(account.pk)

    account.refresh_from_db()
    assert report.state == "partial"
    assert account.setup_state == InfobipAccount.SetupState.PARTIAL
    assert account.infobip_security_id and account.infobip_profile_id and not account.infobip_subscription_id
    assert "Create subscription" in account.setup_message and account.infobip_profile_id in account.setup_message
    assert "TIKTOK is not supported" in account.setup_message
    # A profile without a subscription delivers nothing.
    assert inbound(sandbox)["status"] is None

    control(sandbox, subscription_fail_status=0)
    repaired = setup.account_setup(account.pk)
    assert repaired.state == "complete"
    assert [s["outcome"] for s in repaired.steps[1:]] == ["unchanged", "unchanged", "created"]
    assert len(listed(sandbox, "/subscriptions/1/profiles")) == 1


def test_failing_subscription_call_is_repaired_by_the_next_run(sandbox, account):
    control(sandbox, subscription_fail_status=503)

    report = setup.account_setup(account.pk)

    assert report.state == "failed"
    assert "subscription" in report.message and "503" in report.message
    control(sandbox, subscription_fail_status=0)
    assert setup.account_setup(account.pk).state == "complete"
    assert len(listed(sandbox, "/subscriptions/1/subscription/TIKTOK")) == 1


def test_refused_key_is_reported_as_a_wrong_key_and_nothing_is_created(sandbox, account):
    control(sandbox, refuse_api_key=True)

    report = setup.account_setup(account.pk)

    account.refresh_from_db()
    assert report.state == "failed"
    assert "API key" in report.message and "401" in report.message
    assert account.webhook_auth == "basic"  # the verifier is untouched
    control(sandbox, refuse_api_key=False)
    assert listed(sandbox, "/subscriptions/1/security") == []


def test_teardown_deletes_only_what_setup_created(sandbox, account):
    foreign = {"authId": "made-by-hand", "type": "HMAC", "credentials": {"secretKey": "x", "algorithm": "HMAC_MD5"}}
    response = requests.post(
        f"{sandbox.url}/subscriptions/1/security", json=foreign, headers={"Authorization": f"App {API_KEY}"}, timeout=5
    )
    assert response.status_code == 201, response.text
    setup.account_setup(account.pk)

    report = setup.account_disconnect(account.pk)

    account.refresh_from_db()
    assert [s["outcome"] for s in report.steps] == ["deleted", "deleted", "deleted"]
    assert (account.infobip_security_id, account.infobip_profile_id, account.infobip_subscription_id) == ("", "", "")
    assert not account.active
    assert [s["authId"] for s in listed(sandbox, "/subscriptions/1/security")] == ["made-by-hand"]
    assert listed(sandbox, "/subscriptions/1/profiles") == []


def test_sandbox_validates_subscription_bodies_against_the_spec(sandbox):
    response = requests.post(
        f"{sandbox.url}/subscriptions/1/subscription/TIKTOK",
        json={"subscriptionId": "s", "events": ["CLICK"], "profile": {}},
        headers={"Authorization": f"App {API_KEY}"},
        timeout=5,
    )
    assert response.status_code == 400
    errors = response.json()["requestError"]["serviceException"]["validationErrors"]
    assert "events[0]" in errors and "profile" in errors, json.dumps(errors)


def test_webhook_connection_test_in_the_sandbox(sandbox, receiver):
    response = requests.post(
        f"{sandbox.url}/subscriptions/1/certificates/test/webhook",
        json={"certificateId": "cert-1", "webhookUrl": f"{receiver.url}/hook/"},
        headers={"Authorization": f"App {API_KEY}"},
        timeout=5,
    )
    assert response.status_code == 200
    assert response.json()["result"] == "SUCCESS"


def test_subscription_fail_status_switch_is_checked():
    with pytest.raises(ValueError, match="subscription_fail_status"):
        Behaviour(subscription_fail_status=42)
    assert Behaviour(subscription_fail_status=0).subscription_fail_status == 0
