"""The TikTok sandbox's fault switches, routes and control endpoints."""

from __future__ import annotations

import threading

import pytest
import requests

from tests.tiktok_channel.direct.sandbox.conftest import API, BUSINESS
from tests.tiktok_channel.sandbox_helpers import wait_until


def test_throttle_next_answers_http_200_with_tiktoks_code_then_recovers(connected):
    running = connected.running
    running.control(set={"throttle_next": 2})

    answers = [running.send_text(connected.access_token, connected.conversation_id) for _ in range(3)]

    assert [a["code"] for a in answers] == [40100, 40100, 0]
    assert running.counter("fault_throttled") == 2
    running.control(set={"throttle_next": 1, "throttle_code": 40132})
    assert running.send_text(connected.access_token, connected.conversation_id)["code"] == 40132


def test_throttle_is_answered_on_http_200_without_retry_after(connected):
    running = connected.running
    running.control(set={"throttle_next": 1})
    response = running.api("/tt_user/oauth2/refresh_token/", {"refresh_token": "x"})
    assert response.status_code == 200 and "Retry-After" not in response.headers
    assert response.json()["code"] == 40100


def test_fail_next_answers_5xx(connected):
    running = connected.running
    running.control(set={"fail_next": 1, "fail_status": 503})
    body = {"business_id": BUSINESS, "recipient_type": "CONVERSATION", "recipient": connected.conversation_id}
    failed = running.api("/business/message/send/", body, token=connected.access_token)
    assert failed.status_code == 503 and failed.json()["code"] == 50000
    assert running.counter("fault_http_5xx") == 1
    assert running.send_text(connected.access_token, connected.conversation_id)["code"] == 0
    assert len(running.state()["sent"]) == 1


def test_invalid_token_next_answers_40105_once(connected):
    running = connected.running
    running.control(set={"invalid_token_next": 1})
    assert running.send_text(connected.access_token, connected.conversation_id)["code"] == 40105
    assert running.send_text(connected.access_token, connected.conversation_id)["code"] == 0
    assert running.counter("fault_invalid_token") == 1


def test_slow_ms_holds_the_request_and_counts_it(connected):
    running = connected.running
    running.control(set={"slow_ms": 2000})  # wide enough to see the request held on a loaded machine
    answers = []
    thread = threading.Thread(
        target=lambda: answers.append(running.send_text(connected.access_token, connected.conversation_id))
    )
    thread.start()
    wait_until(lambda: running.counter("slow_held") == 1, what="the send held")
    assert answers == []  # held: not answered yet
    thread.join(timeout=10)
    assert answers[0]["code"] == 0


def test_hold_next_closes_the_connection_unanswered(connected):
    running = connected.running
    running.control(set={"hold_next": 1, "hold_ms": 2000})
    with pytest.raises(requests.exceptions.RequestException):
        requests.post(
            f"{running.url}{API}/business/message/send/",
            json={},
            headers={"Access-Token": connected.access_token},
            timeout=0.5,
        )
    assert running.counter("fault_held") == 1
    assert running.state()["sent"] == []


def test_a_path_without_its_trailing_slash_is_not_found(running):
    response = requests.post(f"{running.url}{API}/tt_user/oauth2/token", json={}, timeout=5)
    assert response.status_code == 404 and response.json()["code"] == 40400
    unknown = requests.get(f"{running.url}{API}/nothing/here/", timeout=5)
    assert unknown.status_code == 404 and unknown.json()["code"] == 40400
    running.control(set={"strict_trailing_slash": False})
    lenient = requests.post(f"{running.url}{API}/tt_user/oauth2/token", json={}, timeout=5)
    assert lenient.json()["code"] == 40002


def test_control_validation_and_reset(running):
    for body, reason in [
        ({"set": {"nope": 1}}, "unknown switches"),
        ({"set": {"throttle_next": -1}}, "negative"),
        ({"set": {"send_read": 1}}, "true or false"),
        ({"set": {"fail_status": 404}}, "5xx"),
        ({"expire_access_token": "nobody"}, "open_id"),
        ({"advance_clock_s": -5}, "non-negative"),
        ({"launch": True}, "unknown control keys"),
    ]:
        response = requests.post(f"{running.url}/sandbox/control", json=body, timeout=5)
        assert response.status_code == 400 and reason in response.json()["error"], body
    assert requests.post(f"{running.url}/sandbox/control", data=b"{", timeout=5).status_code == 400
    changed = running.control(set={"throttle_next": 3, "read_delay_ms": 10}, advance_clock_s=60)
    assert changed["behaviour"]["throttle_next"] == 3 and changed["clock_offset_s"] == 60
    reset = running.control(reset=True)
    assert reset["behaviour"]["throttle_next"] == 0 and reset["behaviour"]["read_delay_ms"] == 50
    assert reset["clock_offset_s"] == 0


def test_apps_and_accounts_can_be_added_at_run_time(running, receiver):
    app = {
        "client_key": "second-app",
        "client_secret": "second-secret",
        "name": "Second",
        "redirect_uri": "https://two.example/cb/",
        "webhook_url": f"{receiver.url}/two/",
    }
    assert requests.post(f"{running.url}/sandbox/apps", json=app, timeout=5).json()["name"] == "Second"
    account = {"open_id": "biz-2", "username": "second_shop", "display_name": "Second Shop"}
    assert requests.post(f"{running.url}/sandbox/accounts", json=account, timeout=5).status_code == 200
    state = running.state()
    assert {a["client_key"] for a in state["apps"]} == {"sbx-client-key", "second-app"}
    assert "client_secret" not in str(state["apps"])
    assert {a["open_id"] for a in state["accounts"]} == {BUSINESS, "biz-2"}
    bad = requests.post(f"{running.url}/sandbox/apps", json={"client_key": "x"}, timeout=5)
    assert bad.status_code == 400 and "client_secret" in bad.json()["error"]
    bad_uri = requests.post(f"{running.url}/sandbox/apps", json={**app, "redirect_uri": "ftp://x"}, timeout=5)
    assert bad_uri.status_code == 400


def test_inbound_refusals(connected):
    running = connected.running
    for body, reason in [
        ({"account": "nobody", "user": "u", "text": "x"}, "account"),
        ({"account": BUSINESS, "text": "x"}, "user"),
        ({"account": BUSINESS, "user": "u", "text": "x", "image": True}, "exactly one"),
        ({"account": BUSINESS, "user": "u", "other": "hologram"}, "other must be"),
        ({"account": BUSINESS, "user": "user-1", "text": "x", "reply_to": "404"}, "reply_to"),
    ]:
        response = requests.post(f"{running.url}/sandbox/inbound", json=body, timeout=5)
        assert response.status_code == 400 and reason in response.json()["error"], body


def test_manual_read_event(connected):
    running = connected.running
    running.control(set={"send_read": False})
    sent = running.send_text(connected.access_token, connected.conversation_id)["data"]["message"]["message_id"]
    assert running.state()["sent"][0]["read"] is False
    answer = requests.post(
        f"{running.url}/sandbox/read", json={"conversation_id": connected.conversation_id}, timeout=5
    ).json()
    assert answer["deliveries"][0]["status"] == 200
    ((_, read),) = running.events(1, "im_mark_read_msg")
    assert read["conversation_id"] == connected.conversation_id
    (after,) = running.state()["sent"]
    assert after["message_id"] == sent and after["read"] is True
