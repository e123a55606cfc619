"""Advertiser authorization (§2.2) against the ads sandbox over real HTTP."""

from __future__ import annotations

import requests

from tests.tiktok_channel.ads.sandbox.conftest import ADVERTISER, API, APP_ID, OTHER_ADVERTISER, REDIRECT_URI, SECRET


def test_consent_redirects_with_an_auth_code_and_the_state(running):
    query = running.consent(state="xyz-42")
    assert query["state"] == "xyz-42"
    assert len(query["auth_code"]) >= 20


def test_the_code_becomes_a_long_term_token_for_the_chosen_advertisers(running):
    code = running.consent(advertisers=[ADVERTISER])["auth_code"]
    answer = running.post("/oauth2/access_token/", {"app_id": APP_ID, "secret": SECRET, "auth_code": code})
    assert answer["code"] == 0 and answer["message"] == "OK" and answer["request_id"]
    data = answer["data"]
    assert data["advertiser_ids"] == [ADVERTISER]
    assert data["scope"] == [4, 5, 6]
    assert "expires_in" not in data  # advertiser tokens have no timer

    listed = running.get("/oauth2/advertiser/get/", {"app_id": APP_ID, "secret": SECRET}, token=data["access_token"])
    assert listed["code"] == 0
    assert listed["data"]["list"] == [{"advertiser_id": ADVERTISER, "advertiser_name": "Acme Shop"}]


def test_the_code_is_single_use(running):
    code = running.consent()["auth_code"]
    body = {"app_id": APP_ID, "secret": SECRET, "auth_code": code}
    assert running.post("/oauth2/access_token/", body)["code"] == 0
    again = running.post("/oauth2/access_token/", body)
    assert again["code"] == 40110
    assert "used" in again["message"]


def test_a_wrong_secret_is_refused_with_http_200_and_40001(running):
    code = running.consent()["auth_code"]
    answer = running.post("/oauth2/access_token/", {"app_id": APP_ID, "secret": "nope", "auth_code": code})
    assert answer["code"] == 40001 and answer["data"] == {}


def test_missing_fields_are_refused_by_name(running):
    answer = running.post("/oauth2/access_token/", {"app_id": APP_ID, "secret": SECRET})
    assert answer["code"] == 40002
    assert "auth_code is required" in answer["message"]


def test_deny_redirects_with_access_denied(running):
    query = running.consent(decision="deny")
    assert query == {"error": "access_denied", "state": "st-1"}


def test_an_unregistered_redirect_uri_gets_an_error_page_not_a_redirect(running):
    params = {"app_id": APP_ID, "state": "s", "redirect_uri": "https://evil.example/"}
    page = requests.get(f"{running.url}/portal/auth", params=params, allow_redirects=False, timeout=5)
    assert page.status_code == 400
    assert "not registered" in page.text


def test_token_checks(connected):
    running = connected.running
    params = {"advertiser_id": ADVERTISER}
    assert running.get("/campaign/get/", params)["code"] == 40104
    assert running.get("/campaign/get/", params, token="forged")["code"] == 40105
    assert running.get("/campaign/get/", {"advertiser_id": "1"}, token=connected.token)["code"] == 40300
    assert running.get("/campaign/get/", params, token=connected.token)["code"] == 0


def test_a_token_reaches_only_the_advertisers_granted(running):
    token = running.connect(advertisers=[OTHER_ADVERTISER])
    answer = running.get("/campaign/get/", {"advertiser_id": ADVERTISER}, token=token)
    assert answer["code"] == 40001
    assert ADVERTISER in answer["message"]


def test_revoked_tokens_stop_working(connected):
    running = connected.running
    answer = running.post(
        "/oauth2/revoke_token/", {"app_id": APP_ID, "secret": SECRET, "access_token": connected.token}
    )
    assert answer["code"] == 0 and ADVERTISER in answer["data"]["advertiser_ids"]
    assert running.get("/campaign/get/", {"advertiser_id": ADVERTISER}, token=connected.token)["code"] == 40105


def test_advertiser_info(connected):
    answer = connected.running.get(
        "/advertiser/info/",
        {"advertiser_ids": f'["{OTHER_ADVERTISER}"]', "fields": '["name","currency","timezone"]'},
        token=connected.token,
    )
    assert answer["code"] == 0
    assert answer["data"]["list"] == [
        {"advertiser_id": OTHER_ADVERTISER, "name": "Acme Outlet", "currency": "EUR", "timezone": "UTC"}
    ]


def test_paths_without_the_trailing_slash_are_404_40400(connected):
    response = requests.get(
        f"{connected.running.url}{API}/campaign/get",
        params={"advertiser_id": ADVERTISER},
        headers={"Access-Token": connected.token},
        timeout=5,
    )
    assert response.status_code == 404
    assert response.json()["code"] == 40400


def test_redirect_uri_is_the_registered_one(running):
    assert running.consent()["auth_code"]
    assert running.state()["apps"][0]["redirect_uris"] == [REDIRECT_URI]
