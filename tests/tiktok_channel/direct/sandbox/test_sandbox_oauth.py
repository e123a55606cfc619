"""The TikTok sandbox's OAuth (README §2.1): consent page, code exchange, refresh with rotation, revoke."""

from __future__ import annotations

import threading

import requests

from tests.tiktok_channel.direct.sandbox.conftest import (
    BUSINESS,
    CLIENT_KEY,
    CLIENT_SECRET,
    REDIRECT_URI,
    SCOPES,
)


def test_consent_page_names_the_app_the_scopes_and_has_authorize_and_deny(running):
    page = requests.get(running.authorize_url(), timeout=5)

    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "Acme Inbox would like to access your TikTok account" in page.text
    for scope in SCOPES.split(","):
        assert f'name="scope" value="{scope}" checked' in page.text
    assert 'value="authorize">Authorize</button>' in page.text
    assert 'value="deny">Deny</button>' in page.text
    assert "Acme Shop (@acme_shop)" in page.text
    assert 'name="viewport"' in page.text


def test_full_dance_authorize_exchange_then_the_token_works(running):
    callback = running.consent(state="csrf-42")
    assert set(callback) == {"code", "state"} and callback["state"] == "csrf-42"

    answer = running.exchange(callback["code"]).json()

    assert answer["code"] == 0 and answer["message"] == "OK" and answer["request_id"]
    data = answer["data"]
    assert data["open_id"] == BUSINESS and data["scope"] == SCOPES and data["token_type"] == "Bearer"
    assert data["access_token"].startswith("act.") and data["refresh_token"].startswith("rft.")
    assert data["expires_in"] == 86_400 and data["refresh_token_expires_in"] == 31_536_000
    info = running.api("/tt_user/token_info/get/", {"app_id": CLIENT_KEY, "access_token": data["access_token"]})
    assert info.json()["data"] == {"app_id": CLIENT_KEY, "scope": SCOPES, "creator_id": BUSINESS}
    fields = '["username","display_name","profile_image"]'
    business = running.api(f"/business/get/?business_id={BUSINESS}&fields={fields}", token=data["access_token"])
    profile = business.json()["data"]
    assert profile["username"] == "acme_shop" and profile["display_name"] == "Acme Shop"
    assert "x-expires=" in profile["profile_image"]
    assert running.counter("tokens_issued") == 1


def test_lifetimes_come_from_the_switches(running):
    running.control(set={"access_token_ttl_s": 7200, "refresh_token_ttl_s": 180 * 86400})
    data = running.connect()
    assert data["expires_in"] == 7200 and data["refresh_token_expires_in"] == 180 * 86400


def test_deny_redirects_with_the_documented_error_params_and_no_code(running):
    callback = running.consent("deny", state="csrf-9")

    assert callback["error"] == "access_denied"
    assert callback["error_code"] == "10001" and callback["error_description"]
    assert callback["state"] == "csrf-9" and "code" not in callback
    assert running.counter("oauth_denied") == 1
    assert running.state()["tokens"] == []


def test_a_code_is_single_use(running):
    code = running.consent()["code"]
    assert running.exchange(code).json()["code"] == 0

    again = running.exchange(code).json()

    assert again["code"] == 40110 and "already used" in again["message"]
    assert len(running.state()["tokens"]) == 2  # one access, one refresh: nothing more was issued


def test_a_code_expires(running):
    code = running.consent()["code"]
    running.control(advance_clock_s=601)
    answer = running.exchange(code).json()
    assert answer["code"] == 40110 and "expired" in answer["message"]


def test_exchange_refusals_have_tiktoks_codes_and_a_reason(running):
    code = running.consent()["code"]
    cases = [
        ({"client_secret": "wrong"}, 40001, "client_secret"),
        ({"grant_type": "password"}, 40108, "grant_type"),
        ({"redirect_uri": "https://elsewhere.example/cb/"}, 40110, "redirect_uri"),
        ({"auth_code": "made-up"}, 40110, "not valid"),
        ({"auth_code": 7}, 40002, "auth_code"),
    ]
    for overrides, code_expected, reason in cases:
        answer = running.exchange(code, **overrides)
        assert answer.status_code == 200
        body = answer.json()
        assert body["code"] == code_expected and reason in body["message"], (overrides, body)
    assert running.exchange(code).json()["code"] == 0  # none of the refusals used the code up


def test_callback_parameter_can_be_auth_code(running):
    running.control(set={"callback_code_param": "auth_code"})
    callback = running.consent()
    assert "code" not in callback
    assert running.exchange(callback["auth_code"]).json()["code"] == 0


def test_bad_authorize_requests(running):
    unknown = requests.get(running.authorize_url(client_key="nope"), timeout=5, allow_redirects=False)
    assert unknown.status_code == 400 and "not a registered app" in unknown.text
    elsewhere = requests.get(
        running.authorize_url(redirect_uri="https://evil.example/"), timeout=5, allow_redirects=False
    )
    assert elsewhere.status_code == 400 and "Location" not in elsewhere.headers
    bad_scope = requests.get(running.authorize_url(scope="user.info.basic,root"), timeout=5, allow_redirects=False)
    assert bad_scope.status_code == 302
    assert bad_scope.headers["Location"].startswith(REDIRECT_URI + "?error=invalid_scope")
    assert "state=st-1" in bad_scope.headers["Location"]


def test_a_subset_granted_shows_in_scope_and_limits_the_token(connected):
    running = connected.running
    data = running.connect(granted=["user.info.basic", "message.list.read"])
    assert data["scope"] == "user.info.basic,message.list.read"
    answer = running.send_text(data["access_token"], connected.conversation_id)
    assert answer["code"] == 40001 and "message.list.send" in answer["message"]


def test_refresh_rotates_and_the_old_refresh_token_stops_working(connected):
    running, old = connected.running, connected.tokens

    first = running.refresh(old["refresh_token"])

    assert first["code"] == 0
    new = first["data"]
    assert new["refresh_token"] != old["refresh_token"] and new["access_token"] != old["access_token"]
    assert new["open_id"] == BUSINESS and new["scope"] == SCOPES
    reused = running.refresh(old["refresh_token"])
    assert reused["code"] == 40107 and "replaced" in reused["message"]
    assert running.send_text(new["access_token"], connected.conversation_id)["code"] == 0
    assert running.refresh(new["refresh_token"])["code"] == 0
    statuses = {t["token"]: t["status"] for t in running.state()["tokens"]}
    assert statuses[old["refresh_token"]] == "rotated" and statuses[new["refresh_token"]] == "rotated"
    assert running.counter("tokens_refreshed") == 2 and running.counter("refresh_rejected") == 1


def test_refresh_without_rotation_keeps_the_refresh_token(running):
    running.control(set={"refresh_rotates": False})
    old = running.connect()
    data = running.refresh(old["refresh_token"])["data"]
    assert data["refresh_token"] == old["refresh_token"]
    assert running.refresh(old["refresh_token"])["code"] == 0


def test_expired_access_token_answers_40102_until_refreshed(connected):
    running = connected.running
    running.control(expire_access_token=BUSINESS)

    expired = running.send_text(connected.access_token, connected.conversation_id)

    assert expired["code"] == 40102 and "expired" in expired["message"]
    fresh = running.refresh(connected.tokens["refresh_token"])["data"]
    assert running.send_text(fresh["access_token"], connected.conversation_id)["code"] == 0
    assert running.counter("token_rejected_40102") == 1


def test_access_token_expires_with_the_clock(connected):
    running = connected.running
    running.control(advance_clock_s=86_401)
    assert running.send_text(connected.access_token, connected.conversation_id)["code"] == 40102


def test_refresh_token_expired_answers_40103(connected):
    running = connected.running
    running.control(advance_clock_s=31_536_001)
    assert running.refresh(connected.tokens["refresh_token"])["code"] == 40103


def test_revoked_refresh_token_answers_40107_and_the_access_token_still_works(connected):
    running = connected.running
    running.control(revoke_refresh_token="*")

    answer = running.refresh(connected.tokens["refresh_token"])

    assert answer["code"] == 40107 and "revoked" in answer["message"]
    assert running.send_text(connected.access_token, connected.conversation_id)["code"] == 0


def test_revoke_ends_the_grant(connected):
    running = connected.running
    body = {"client_id": CLIENT_KEY, "client_secret": CLIENT_SECRET, "access_token": connected.access_token}

    answer = running.api("/tt_user/oauth2/revoke/", body).json()

    assert answer["code"] == 0 and answer["data"] == {}
    assert running.send_text(connected.access_token, connected.conversation_id)["code"] == 40105
    assert running.refresh(connected.tokens["refresh_token"])["code"] == 40107
    # No app is authorized any more: a user's message has nowhere to go.
    refused = requests.post(
        f"{running.url}/sandbox/inbound", json={"account": BUSINESS, "user": "u", "text": "hi"}, timeout=5
    )
    assert refused.status_code == 400 and "has not authorized" in refused.json()["error"]


def test_access_token_checks(connected):
    running = connected.running
    missing = running.send_text("", connected.conversation_id)
    assert missing["code"] == 40104
    made_up = running.send_text("act.made-up", connected.conversation_id)
    assert made_up["code"] == 40105
    other_business = running.send_text(connected.access_token, connected.conversation_id, business_id="someone-else")
    assert other_business["code"] == 40001 and "business_id" in other_business["message"]


def test_two_refreshes_racing_with_one_refresh_token_one_wins(connected):
    running = connected.running
    answers: list[dict] = []
    barrier = threading.Barrier(2)

    def refresh() -> None:
        barrier.wait()
        answers.append(running.refresh(connected.tokens["refresh_token"]))

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)

    assert sorted(a["code"] for a in answers) == [0, 40107]


def test_the_consent_page_escapes_the_app_name(running):
    requests.post(
        f"{running.url}/sandbox/apps",
        json={"client_key": "evil", "client_secret": "s", "name": "<script>alert(1)</script>"},
        timeout=5,
    )
    page = requests.get(running.authorize_url(client_key="evil"), timeout=5)
    assert page.status_code == 200
    assert "<script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
