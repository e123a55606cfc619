"""The setup service's client logic against Infobip's HTTP answers (stood in for by `responses`): the key check's
messages, the request bodies (checked against the vendored Subscriptions spec), matching what exists, repair."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
import requests
import responses
from django.core.management import CommandError, call_command

from tiktok_channel import setup, spec
from tiktok_channel.models import InfobipAccount

pytestmark = pytest.mark.django_db
BASE = "https://xyz.api.infobip.com"
SECURITY = f"{BASE}/subscriptions/1/security"
PROFILES = f"{BASE}/subscriptions/1/profiles"
SUBSCRIPTIONS = f"{BASE}/subscriptions/1/subscription/TIKTOK"
NOT_FOUND = {"requestError": {"serviceException": {"messageId": "NOT_FOUND", "text": "not found"}}}
EMPTY_PAGE = {"results": [], "paging": {"page": 0, "size": 100, "totalPages": 0, "totalResults": 0}}


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{BASE}/tiktok/1/logs", json={"results": []})
        yield mock


def key_ok(api) -> None:
    api.get(SECURITY, json=EMPTY_PAGE)


def nothing_exists(api) -> None:
    for url in (SECURITY, PROFILES, SUBSCRIPTIONS):
        api.get(re.compile(re.escape(url) + "/.+"), status=404, json=NOT_FOUND)
    api.get(PROFILES, json=EMPTY_PAGE)
    api.get(SUBSCRIPTIONS, json=EMPTY_PAGE)
    for url, id_field in ((SECURITY, "authId"), (PROFILES, "profileId"), (SUBSCRIPTIONS, "subscriptionId")):
        api.add_callback(responses.POST, url, callback=echo(id_field))


def echo(id_field: str):
    """Infobip's IdOnly answer: the id the request chose."""

    def answer(request):
        return 201, {}, json.dumps({id_field: json.loads(request.body)[id_field]})

    return answer


def sent(api, method: str, url: str) -> list[dict]:
    return [json.loads(c.request.body) for c in api.calls if c.request.method == method and c.request.url == url]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"status": 401, "json": {"requestError": {"serviceException": {"text": "Invalid login details"}}}}, "API key"),
        ({"status": 403, "json": {}}, "tiktok:manage"),
        ({"status": 404, "body": "<html>nope</html>"}, "check the base URL"),
        ({"status": 200, "body": "<html>a login page</html>"}, "check the base URL"),
        ({"body": requests.ConnectionError("Name or service not known")}, "cannot reach"),
    ],
    ids=["wrong-key", "missing-tiktok-scope", "no-tiktok-api", "not-infobip", "unreachable"],
)
def test_key_check_says_what_to_fix(make_account, answer, expected):
    account = make_account(base_url=BASE)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{BASE}/tiktok/1/logs", **answer)
        report = setup.account_setup(account.pk)
        assert [c.request.method for c in mock.calls] == ["GET"]  # nothing written after a failed check
    account.refresh_from_db()
    assert report.state == account.setup_state == InfobipAccount.SetupState.FAILED
    assert expected in report.message
    assert account.webhook_secret == "hmac-secret-1"  # the verifier is untouched


def test_missing_subscriptions_scope(make_account, api):
    account = make_account(base_url=BASE)
    api.get(SECURITY, status=403)
    report = setup.account_setup(account.pk)
    assert report.state == "failed"
    assert "may not manage subscriptions" in report.message


def test_bodies_sent_match_the_spec(make_account, api):
    account = make_account(base_url=BASE)
    key_ok(api)
    nothing_exists(api)

    report = setup.account_setup(account.pk)

    assert report.state == "complete", report.as_dict()
    account.refresh_from_db()
    [security] = sent(api, "POST", SECURITY)
    [profile] = sent(api, "POST", PROFILES)
    [subscription] = sent(api, "POST", SUBSCRIPTIONS)
    assert spec.violations(spec.subscriptions_validator("SecurityRequest"), security) == []
    assert spec.violations(spec.subscriptions_validator("ProfileRequest"), profile) == []
    assert spec.violations(spec.subscriptions_validator("SubscriptionRequest", "TIKTOK"), subscription) == []
    assert security["credentials"] == {"secretKey": account.webhook_secret, "algorithm": "HMAC_SHA_256"}
    # A manual HMAC account keeps its secret, so webhooks signed the old way still pass.
    assert account.webhook_secret == "hmac-secret-1"
    assert profile["webhook"]["notifyUrl"] == account.webhook_url
    assert profile["security"] == {"authId": security["authId"]} == {"authId": account.infobip_security_id}
    assert subscription["profile"] == {"profileId": profile["profileId"]}
    assert sorted(subscription["events"]) == ["DELIVERY", "INBOUND_MESSAGE", "SEEN"]


def test_a_new_secret_is_strong_when_there_was_none(make_account, api):
    account = make_account(base_url=BASE, webhook_auth="basic", basic_username="u", basic_password="p")
    key_ok(api)
    nothing_exists(api)
    setup.account_setup(account.pk)
    account.refresh_from_db()
    assert account.webhook_auth == "hmac"
    assert len(account.webhook_secret) >= 64 and account.webhook_secret != "hmac-secret-1"


def test_a_static_header_account_gets_the_default_hmac_header(make_account, api):
    account = make_account(base_url=BASE, webhook_auth="header", signature_header="X-Static", webhook_secret="s")
    key_ok(api)
    nothing_exists(api)
    setup.account_setup(account.pk)
    account.refresh_from_db()
    assert (account.webhook_auth, account.signature_header, account.signature_encoding) == (
        "hmac",
        "X-Hub-Signature",
        "hex",
    )
    assert account.webhook_secret != "s"


def test_an_hmac_account_keeps_its_tuned_header(make_account, api):
    account = make_account(base_url=BASE, signature_header="X-Infobip-Signature", signature_encoding="base64")
    key_ok(api)
    nothing_exists(api)
    setup.account_setup(account.pk)
    account.refresh_from_db()
    assert (account.signature_header, account.signature_encoding) == ("X-Infobip-Signature", "base64")


def test_a_profile_of_ours_whose_id_was_lost_is_found_by_its_url_and_reused(make_account, api):
    account = make_account(base_url=BASE)
    key_ok(api)
    lost = {"profileId": "tiktok-inbox-profile-old", "webhook": {"notifyUrl": account.webhook_url}, "security": {}}
    foreign = {"profileId": "someone-elses", "webhook": {"notifyUrl": account.webhook_url}}
    api.get(PROFILES, json={"results": [foreign, lost], "paging": {"totalPages": 1}})
    nothing_exists(api)
    api.put(f"{PROFILES}/tiktok-inbox-profile-old", json={"profileId": "tiktok-inbox-profile-old"})

    report = setup.account_setup(account.pk)

    account.refresh_from_db()
    assert report.state == "complete"
    assert account.infobip_profile_id == "tiktok-inbox-profile-old"
    assert sent(api, "POST", PROFILES) == []
    assert (
        spec.violations(
            spec.subscriptions_validator("NoIdProfileRequest"),
            sent(api, "PUT", f"{PROFILES}/tiktok-inbox-profile-old")[0],
        )
        == []
    )


def test_a_changed_webhook_url_updates_the_profile_in_place(make_account, api, settings):
    account = make_account(base_url=BASE, infobip_security_id="sec-1", infobip_profile_id="prof-1")
    key_ok(api)
    api.get(f"{SECURITY}/sec-1", json={"authId": "sec-1", "type": "HMAC"})
    api.put(f"{SECURITY}/sec-1", json={"authId": "sec-1"})
    api.get(f"{PROFILES}/prof-1", json={"profileId": "prof-1", "webhook": {"notifyUrl": "https://old.example/x/"}})
    api.put(f"{PROFILES}/prof-1", json={"profileId": "prof-1"})
    nothing_exists(api)

    report = setup.account_setup(account.pk)

    assert [s["outcome"] for s in report.steps] == ["ok", "unchanged", "updated", "created"]
    [update] = sent(api, "PUT", f"{PROFILES}/prof-1")
    assert update["webhook"]["notifyUrl"] == account.webhook_url
    assert sent(api, "POST", PROFILES) == []


def test_refused_channel_is_partial_with_portal_instructions(make_account, api):
    account = make_account(base_url=BASE, subscription_channel="TIKTOK")
    key_ok(api)
    nothing_exists(api)
    api.replace(
        responses.POST,
        SUBSCRIPTIONS,
        status=400,
        json={"requestError": {"serviceException": {"messageId": "BAD_REQUEST", "text": "Unknown channel TIKTOK"}}},
    )
    report = setup.account_setup(account.pk)
    account.refresh_from_db()
    assert report.state == "partial"
    assert "Unknown channel TIKTOK" in account.setup_message
    assert "Finish in Infobip's portal" in account.setup_message
    assert account.infobip_profile_id and account.infobip_security_id


def test_channel_is_configurable(make_account, api):
    account = make_account(base_url=BASE)
    key_ok(api)
    other = f"{BASE}/subscriptions/1/subscription/OPEN_CHANNEL"
    nothing_exists(api)
    api.get(re.compile(re.escape(other) + "/.+"), status=404, json=NOT_FOUND)
    api.get(other, json=EMPTY_PAGE)
    api.add_callback(responses.POST, other, callback=echo("subscriptionId"))
    assert setup.account_setup(account.pk, channel="OPEN_CHANNEL").state == "complete"
    account.refresh_from_db()
    assert account.subscription_channel == "OPEN_CHANNEL"
    assert len(sent(api, "POST", other)) == 1 and sent(api, "POST", SUBSCRIPTIONS) == []


def test_teardown_stops_at_a_failure_and_keeps_the_rest_for_the_next_run(make_account, api):
    account = make_account(
        base_url=BASE, infobip_security_id="sec-1", infobip_profile_id="prof-1", infobip_subscription_id="sub-1"
    )
    api.delete(f"{SUBSCRIPTIONS}/sub-1", json={"subscriptionId": "sub-1"})
    api.delete(f"{PROFILES}/prof-1", status=500)
    report = setup.account_teardown(account.pk)
    account.refresh_from_db()
    assert report.state == "failed"
    assert (account.infobip_subscription_id, account.infobip_profile_id, account.infobip_security_id) == (
        "",
        "prof-1",
        "sec-1",
    )
    assert not any(c.request.url.startswith(SECURITY) for c in api.calls)


def test_command_setup_exit_codes(make_account, api):
    account = make_account(base_url=BASE)
    key_ok(api)
    nothing_exists(api)
    out = StringIO()
    call_command("infobip_account", "setup", str(account.pk), stdout=out)
    assert json.loads(out.getvalue())["state"] == "complete"

    api.replace(responses.GET, f"{BASE}/tiktok/1/logs", status=401)
    with pytest.raises(CommandError, match="API key") as failed:
        call_command("infobip_account", "setup", str(account.pk), stdout=StringIO())
    assert failed.value.returncode == 1
    with pytest.raises(CommandError, match="no Infobip account"):
        call_command("infobip_account", "setup", "999999", stdout=StringIO())


def test_a_second_setup_while_one_runs_is_refused(make_account):
    from django.core.cache import cache

    from inbox.errors import ApplicationError

    account = make_account(base_url=BASE)
    cache.add(f"infobip:setup:{account.pk}", 1, 60)
    try:
        with pytest.raises(ApplicationError, match="already running"):
            setup.account_setup(account.pk)
    finally:
        cache.delete(f"infobip:setup:{account.pk}")


def test_admin_actions_set_up_and_disconnect(admin_client, make_account, api):
    account = make_account(base_url=BASE)
    key_ok(api)
    nothing_exists(api)
    changelist = "/admin/tiktok_channel/infobipaccount/"

    response = admin_client.post(changelist, {"action": "set_up", "_selected_action": [account.pk]}, follow=True)

    assert f"{account.name}: complete." in response.content.decode()
    account.refresh_from_db()
    ids = (account.infobip_subscription_id, account.infobip_profile_id, account.infobip_security_id)
    assert all(ids)
    api.delete(f"{SUBSCRIPTIONS}/{ids[0]}", json={})
    api.delete(f"{PROFILES}/{ids[1]}", json={})
    api.delete(f"{SECURITY}/{ids[2]}", json={})

    response = admin_client.post(changelist, {"action": "disconnect", "_selected_action": [account.pk]}, follow=True)

    assert "Removed from Infobip what the setup had created." in response.content.decode()
    account.refresh_from_db()
    assert not account.active and not account.infobip_profile_id


def test_setup_never_logs_the_key_or_the_secret(make_account, api, caplog):
    account = make_account(base_url=BASE, webhook_auth="basic", basic_username="u", basic_password="p")
    key_ok(api)
    nothing_exists(api)
    api.replace(responses.POST, SUBSCRIPTIONS, status=400, json={"requestError": {"serviceException": {"text": "no"}}})
    with caplog.at_level("DEBUG"):
        setup.account_setup(account.pk)
        setup.webhook_test(account.pk)
    account.refresh_from_db()
    assert account.webhook_secret and account.webhook_secret not in caplog.text
    assert account.api_key not in caplog.text


def test_webhook_test_runs_infobips_connection_test_when_a_certificate_is_set(make_account, api):
    account = make_account(base_url=BASE, client_certificate_id="cert-7")
    api.post(
        f"{BASE}/subscriptions/1/certificates/test/webhook",
        json={"certificateId": "cert-7", "result": "FAIL", "failReasons": ["TLS handshake failed"], "hint": "Check"},
    )
    outcome = setup.webhook_test(account.pk)
    [call] = [c for c in api.calls if c.request.url.endswith("/certificates/test/webhook")]
    body = json.loads(call.request.body)
    assert spec.violations(spec.subscriptions_validator("CertificateConnectionTestRequest"), body) == []
    assert body == {"certificateId": "cert-7", "webhookUrl": account.webhook_url}
    assert outcome["infobip"] == {"result": "FAIL", "reasons": ["TLS handshake failed"], "hint": "Check"}
    assert outcome["ok"] is False


def test_webhook_test_without_a_certificate_skips_infobips_part(make_account, api):
    account = make_account(base_url=BASE)
    outcome = setup.webhook_test(account.pk)
    assert outcome["infobip"]["result"] == "SKIPPED"
    assert not any("certificates" in c.request.url for c in api.calls)


def test_the_ids_infobip_returns_are_stored(make_account, api):
    account = make_account(base_url=BASE)
    key_ok(api)
    for url in (SECURITY, PROFILES, SUBSCRIPTIONS):
        api.get(re.compile(re.escape(url) + "/.+"), status=404, json=NOT_FOUND)
    api.get(PROFILES, json=EMPTY_PAGE)
    api.get(SUBSCRIPTIONS, json=EMPTY_PAGE)
    api.post(SECURITY, status=201, json={"authId": "ib-sec"})
    api.post(PROFILES, status=201, json={"profileId": "ib-prof", "security": {"authId": "ib-sec"}})
    api.post(SUBSCRIPTIONS, status=201, json={"subscriptionId": "ib-sub"})
    setup.account_setup(account.pk)
    account.refresh_from_db()
    assert (account.infobip_security_id, account.infobip_profile_id, account.infobip_subscription_id) == (
        "ib-sec",
        "ib-prof",
        "ib-sub",
    )
    assert sent(api, "POST", PROFILES)[0]["security"] == {"authId": "ib-sec"}
    assert sent(api, "POST", SUBSCRIPTIONS)[0]["profile"] == {"profileId": "ib-prof"}
