"""Fault switches (§8.1, §9): throttling, invalid tokens, refused creates, a per-second limit, HTTP 5xx."""

from __future__ import annotations

import requests

from tests.tiktok_channel.ads.sandbox.conftest import ADVERTISER, API


def test_throttle_next_answers_http_200_with_40100_then_recovers(connected):
    running = connected.running
    running.control(set={"throttle_next": 2})
    params = {"advertiser_id": ADVERTISER}
    answers = [running.get("/campaign/get/", params, token=connected.token) for _ in range(3)]
    assert [a["code"] for a in answers] == [40100, 40100, 0]
    assert answers[0]["message"].startswith("Request too frequent")
    assert running.counter("fault_throttled") == 2


def test_invalid_token_next_refuses_a_good_token_once(connected):
    running = connected.running
    running.control(set={"invalid_token_next": 1})
    params = {"advertiser_id": ADVERTISER}
    assert running.get("/campaign/get/", params, token=connected.token)["code"] == 40105
    assert running.get("/campaign/get/", params, token=connected.token)["code"] == 0


def test_refuse_next_creates_with_a_chosen_code(connected):
    running = connected.running
    running.control(set={"refuse_next_creates": 2, "refuse_code": 40002, "refuse_message": "budget too low"})
    first, second, third = connected.campaign(), connected.campaign(), connected.campaign()
    assert first["code"] == second["code"] == 40002
    assert first["message"] == "Param error: budget too low"
    assert third["code"] == 0
    assert len(running.state()["campaigns"]) == 1
    # reads are not creates
    running.control(set={"refuse_next_creates": 1})
    assert running.get("/campaign/get/", {"advertiser_id": ADVERTISER}, token=connected.token)["code"] == 0
    assert connected.image()["code"] == 40002


def test_rate_limit_per_second(connected):
    running = connected.running
    running.control(set={"rate_limit_qps": 2})
    codes = [
        running.get("/campaign/get/", {"advertiser_id": ADVERTISER}, token=connected.token)["code"] for _ in range(10)
    ]
    # ten calls within at most three seconds: at least four over the limit
    assert codes.count(40100) >= 4 and codes[0] == 0
    assert running.counter("fault_rate_limited") == codes.count(40100)


def test_fail_next_is_an_http_5xx(connected):
    running = connected.running
    running.control(set={"fail_next": 1, "fail_status": 503})
    response = requests.get(
        f"{running.url}{API}/campaign/get/",
        params={"advertiser_id": ADVERTISER},
        headers={"Access-Token": connected.token},
        timeout=5,
    )
    assert response.status_code == 503 and response.json()["code"] == 50000


def test_reset_and_bad_switches(connected):
    running = connected.running
    running.control(set={"throttle_next": 5})
    assert running.control(reset=True)["behaviour"]["throttle_next"] == 0
    for body in ({"set": {"throttle_code": 1}}, {"set": {"nope": 1}}, {"set": {"throttle_next": True}}, {"x": 1}):
        response = requests.post(f"{running.url}/sandbox/control", json=body, timeout=5)
        assert response.status_code == 400, body
        assert response.json()["error"]


def test_control_endpoints_answer_loopback_clients_only():
    from tiktok_channel.ads.sandbox.server import is_loopback  # the sandboxes' shared check

    assert is_loopback("127.0.0.1") and is_loopback("::1")
    assert not is_loopback("192.168.1.20") and not is_loopback("not an address")
