"""The sandbox as a real HTTP server: the API, the signed reports it sends, and its fault switches."""

from __future__ import annotations

import re
import socket
import time

import psutil
import pytest
import requests

from tests.tiktok_channel.sandbox.conftest import API_KEY, BUSINESS_ID, text_message
from tests.tiktok_channel.sandbox_helpers import wait_until
from tiktok_channel import spec
from tiktok_channel.sandbox.accounts import StaticAccounts
from tiktok_channel.sandbox.behaviour import Behaviour
from tiktok_channel.sandbox.server import Sandbox, SandboxServer, is_loopback
from tiktok_channel.webhook_auth import WebhookAuth, verify

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")


def verified(captured, auth) -> dict:
    verify(auth, {k.lower(): v for k, v in captured.headers.items()} | captured.headers, captured.body)
    return captured.json


def test_send_answers_like_infobip_and_reports_delivery_then_seen_signed(running, receiver, auth):
    response = running.post("/tiktok/1/messages", text_message("out-1", webhooks={"callbackData": "cb-7"}))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["bulkId"]
    assert body["messages"] == [
        {
            "messageId": "out-1",
            "destination": "user-1",
            "status": {
                "groupId": 1,
                "groupName": "PENDING",
                "id": 26,
                "name": "PENDING_ACCEPTED",
                "description": "Message sent to next instance",
            },
        }
    ]

    delivery, seen = receiver.wait_for(2)
    assert delivery.path == seen.path == "/hook/"
    delivery_body, seen_body = verified(delivery, auth), verified(seen, auth)
    assert not spec.violations(spec.webhook_validator("delivery"), delivery_body)
    assert not spec.violations(spec.webhook_validator("seen"), seen_body)
    (report,) = delivery_body["results"]
    assert report["messageId"] == "out-1" and report["bulkId"] == body["bulkId"]
    assert report["status"]["name"] == "DELIVERED_TO_HANDSET" and report["error"]["name"] == "NO_ERROR"
    assert report["to"] == "user-1" and report["sender"] == BUSINESS_ID and report["callbackData"] == "cb-7"
    assert TIMESTAMP.match(report["sentAt"]) and TIMESTAMP.match(report["doneAt"])
    (seen_report,) = seen_body["results"]
    assert seen_report["messageId"] == "out-1"
    assert seen_report["from"] == BUSINESS_ID and seen_report["to"] == "user-1"
    assert TIMESTAMP.match(seen_report["seenAt"])


def test_without_our_message_id_the_sandbox_makes_one(running, receiver):
    body = running.post("/tiktok/1/messages", text_message()).json()
    (message,) = body["messages"]
    assert re.fullmatch(r"[0-9a-f-]{36}", message["messageId"])
    assert receiver.wait_for(1)[0].json["results"][0]["messageId"] == message["messageId"]


def test_per_message_webhook_urls_win_over_the_account_url(running, receiver):
    webhooks = {"delivery": {"url": f"{receiver.url}/dlr/"}, "seen": {"url": f"{receiver.url}/seen/"}}
    running.post("/tiktok/1/messages", text_message("out-2", webhooks=webhooks))
    assert sorted(r.path for r in receiver.wait_for(2)) == ["/dlr/", "/seen/"]


def test_delivery_notify_false_posts_no_delivery_report(running, receiver):
    running.control(send_seen=False)
    running.post("/tiktok/1/messages", text_message("quiet", webhooks={"delivery": {"notify": False}}))
    wait_until(lambda: running.get("/tiktok/1/reports").json()["results"] or None, what="pullable report")
    assert receiver.requests == []


@pytest.mark.parametrize(
    "auth",
    [
        WebhookAuth(mode="basic", username="infobip", password="pw:with:colons"),
        WebhookAuth(mode="header", signature_header="X-Static-Secret", secret="static-value"),
        WebhookAuth(mode="hmac", secret="k", hmac_algorithm="HMAC_MD5", signature_encoding="hex"),
    ],
    ids=["basic", "header", "hmac-md5-hex"],
)
def test_reports_are_signed_the_way_the_account_is_configured(running, receiver, auth):
    running.post("/tiktok/1/messages", text_message("signed"))
    for captured in receiver.wait_for(2):
        verified(captured, auth)


def test_duplicate_message_id_is_rejected_in_the_answer(running, receiver):
    assert running.post("/tiktok/1/messages", text_message("dup-1")).json()["messages"][0]["status"]["id"] == 26

    second = running.post("/tiktok/1/messages", text_message("dup-1"))

    assert second.status_code == 200
    (message,) = second.json()["messages"]
    assert message["messageId"] == "dup-1"
    assert message["status"] == {
        "groupId": 5,
        "groupName": "REJECTED",
        "id": 23,
        "name": "REJECTED_DUPLICATE_MESSAGE_ID",
        "description": "Rejected due to a duplicate message ID",
    }
    # The first send still gets delivered and seen; the duplicate gets its own rejection report.
    captured = receiver.wait_for(3)
    names = sorted(r.json["results"][0].get("status", {}).get("name", "seen") for r in captured)
    assert names == ["DELIVERED_TO_HANDSET", "REJECTED_DUPLICATE_MESSAGE_ID", "seen"]
    (log,) = running.get("/tiktok/1/logs", messageId="dup-1").json()["results"]
    assert log["status"]["name"] == "DELIVERED_TO_HANDSET"


@pytest.mark.parametrize(
    ("body", "prop", "violation"),
    [
        (
            {"messages": [{"sender": "b", "destinations": [{"to": "u"}], "content": {"type": "TEXT"}}]},
            "messages[0].content",
            "'text' is a required property",
        ),
        (
            {"messages": [{"sender": "b", "destinations": [{"to": "u"}], "content": {"type": "IMAGE", "text": "x"}}]},
            "messages[0].content",
            "'mediaUrl' is a required property",
        ),
        (
            {"messages": [{"sender": "b", "destinations": [{"to": "u"}], "content": {"type": "VIDEO"}}]},
            "messages[0].content.type",
            "'VIDEO' is not one of ['TEXT', 'IMAGE', 'SHARE_POST']",
        ),
        (
            {"messages": [{"sender": "b", "destinations": [{"messageId": "x" * 201, "to": "u"}], "content": {}}]},
            "messages[0].destinations[0].messageId",
            None,
        ),
        ({"message": []}, "", "'messages' is a required property"),
    ],
    ids=["text-without-text", "image-without-url", "unknown-type", "long-message-id", "no-messages"],
)
def test_invalid_send_is_400_with_infobip_violations(running, receiver, body, prop, violation):
    response = running.post("/tiktok/1/messages", body)

    assert response.status_code == 400
    error = response.json()
    assert error["errorCode"] == "E400" and error["description"] and error["action"]
    assert prop in [v["property"] for v in error["violations"]]
    if violation:
        assert {"property": prop, "violation": violation} in error["violations"]
    assert running.sandbox.state()["messages"] == 0


def test_not_json_is_400(running):
    response = running.post("/tiktok/1/messages", b"{nope")
    assert response.status_code == 400 and response.json()["errorCode"] == "E400"


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_unknown_or_missing_api_key_is_401(running, key):
    response = running.post("/tiktok/1/messages", text_message(), key=key)
    assert response.status_code == 401 and response.json()["errorCode"] == "E401"


def test_events_are_validated_and_accepted(running, receiver):
    good = {"events": [{"sender": BUSINESS_ID, "destinations": [{"to": "u"}], "content": {"type": "MARK_AS_READ"}}]}
    response = running.post("/tiktok/1/events", good)
    assert response.status_code == 200
    assert response.json()["messages"][0]["status"]["name"] == "PENDING_ACCEPTED"

    bad = {"events": [{"sender": BUSINESS_ID, "destinations": [{"to": "u"}], "content": {"type": "WAVE"}}]}
    assert running.post("/tiktok/1/events", bad).status_code == 400
    assert receiver.requests == []


def test_reports_are_pulled_once_within_the_limit(running, receiver):
    running.control(send_seen=False)
    for n in range(3):
        running.post("/tiktok/1/messages", text_message(f"pull-{n}"))
    receiver.wait_for(3)

    first = running.get("/tiktok/1/reports", limit=2).json()["results"]
    rest = running.get("/tiktok/1/reports").json()["results"]

    assert len(first) == 2 and len(rest) == 1
    assert sorted(r["messageId"] for r in first + rest) == ["pull-0", "pull-1", "pull-2"]
    assert running.get("/tiktok/1/reports").json()["results"] == []
    assert running.get("/tiktok/1/reports", limit=1001).status_code == 400


def test_logs_show_what_was_sent_with_filters(running, receiver):
    running.post("/tiktok/1/messages", text_message("log-1", to="user-a"))
    running.post("/tiktok/1/messages", text_message("log-2", to="user-b"))

    logs = running.get("/tiktok/1/logs").json()["results"]
    assert {entry["messageId"] for entry in logs} == {"log-1", "log-2"}
    (only,) = running.get("/tiktok/1/logs", destination="user-b").json()["results"]
    assert only["messageId"] == "log-2" and only["content"] == {"type": "TEXT", "text": "Hello"}
    assert len(running.get("/tiktok/1/logs", messageId="log-1,log-2").json()["results"]) == 2
    receiver.wait_for(4)
    assert running.get("/tiktok/1/logs", generalStatus="DELIVERED").json()["results"]


# --- fault switches ------------------------------------------------------------------------------------------


def test_fail_next_n_requests_with_a_status(running):
    running.control(fail_next=2, fail_status=503)
    statuses = [running.post("/tiktok/1/messages", text_message()).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]


def test_http_error_rate_is_reproducible_with_a_seed(running):
    def run() -> list[int]:
        running.control(http_error_rate=0.5, seed=42, fail_status=500)
        return [running.post("/tiktok/1/messages", text_message()).status_code for _ in range(8)]

    first = run()
    assert set(first) == {200, 500}
    assert run() == first


def test_throttle_answers_429_with_retry_after(running):
    running.control(throttle_next=1, retry_after_s=7)
    throttled = running.post("/tiktok/1/messages", text_message())
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"
    assert throttled.json()["errorCode"] == "E429"
    assert running.post("/tiktok/1/messages", text_message()).status_code == 200


def test_timeout_holds_the_connection_past_the_client_read_timeout(running):
    running.control(timeout_next=1, timeout_ms=2000)
    with pytest.raises(requests.ReadTimeout):
        running.post("/tiktok/1/messages", text_message("held"), timeout=0.3)
    assert running.post("/tiktok/1/messages", text_message("after")).status_code == 200
    assert running.sandbox.state()["counters"]["fault_timeout"] == 1


def test_each_request_takes_one_fault_so_every_next_n_counter_is_honoured(running):
    running.control(timeout_next=1, timeout_ms=2000, fail_next=1, throttle_next=1)
    with pytest.raises(requests.ReadTimeout):
        running.post("/tiktok/1/messages", text_message("held"), timeout=0.3)
    assert running.post("/tiktok/1/messages", text_message()).status_code == 503
    assert running.post("/tiktok/1/messages", text_message()).status_code == 429
    assert running.post("/tiktok/1/messages", text_message()).status_code == 200


def test_slow_answers(running):
    running.control(slow_ms=300)
    started = time.monotonic()
    assert running.post("/tiktok/1/messages", text_message()).status_code == 200
    assert time.monotonic() - started >= 0.3
    assert running.sandbox.counters["slow_held"] == 1


@pytest.mark.parametrize(
    ("kind", "status", "error", "permanent"),
    [
        ("REJECTED", "REJECTED", "EC_NO_SESSION", True),
        ("UNDELIVERABLE", "UNDELIVERABLE", "EC_TOO_MANY_REQUESTS", False),
        ("EXPIRED", "EXPIRED", "EC_ABSENT_SUBSCRIBER", False),
    ],
)
def test_failing_messages_report_their_status_and_error(running, receiver, kind, status, error, permanent):
    running.control(fail_next_messages=1, failure_kinds=[kind])
    assert running.post("/tiktok/1/messages", text_message("fails")).json()["messages"][0]["status"]["id"] == 26
    running.post("/tiktok/1/messages", text_message("works"))

    captured = receiver.wait_for(3)
    # A failed message must get no seen report: once the sandbox has nothing scheduled or running, none can come.
    assert running.sandbox.scheduler.wait_idle()
    by_id = {}
    for request in receiver.requests:
        for result in request.json["results"]:
            by_id.setdefault(result["messageId"], []).append(result)
    (report,) = by_id["fails"]
    assert report["status"]["groupName"] == status
    assert report["error"]["name"] == error and report["error"]["permanent"] is permanent
    assert not spec.violations(spec.webhook_validator("delivery"), captured[0].json)
    assert len(by_id["works"]) == 2


def test_failure_rate_is_reproducible_with_a_seed(running, receiver):
    def run(prefix: str) -> list[str]:
        running.control(failure_rate=0.5, seed=2, send_seen=False)
        for n in range(10):
            running.post("/tiktok/1/messages", text_message(f"{prefix}-{n}"))
        receiver.wait_for(10 if prefix == "a" else 20)
        logs = running.get("/tiktok/1/logs", limit=1000).json()["results"]
        return sorted(
            e["messageId"].split("-")[1]
            for e in logs
            if e["messageId"].startswith(prefix) and e["status"]["groupName"] != "DELIVERED"
        )

    failed_first = run("a")
    assert 0 < len(failed_first) < 10
    assert run("b") == failed_first


def test_duplicated_reports(running, receiver):
    running.control(duplicate_reports=True)
    running.post("/tiktok/1/messages", text_message("twice"))
    captured = receiver.wait_for(4)
    bodies = [c.body for c in captured]
    assert bodies[0] == bodies[1] and bodies[2] == bodies[3]


def test_reordered_reports_send_seen_before_delivery(running, receiver):
    running.control(reorder_reports=True)
    running.post("/tiktok/1/messages", text_message("reordered"))
    first, second = receiver.wait_for(2)
    assert "seenAt" in first.json["results"][0] and "status" in second.json["results"][0]


def test_failed_webhook_posts_are_retried(running, receiver):
    receiver.statuses.extend([500, 503])
    running.control(send_seen=False, webhook_retries=3, webhook_retry_ms=20)
    running.post("/tiktok/1/messages", text_message("retried"))
    captured = receiver.wait_for(3)
    assert len({c.body for c in captured}) == 1
    # The sandbox records an attempt once its answer is in, a moment after the receiver has seen it.
    assert running.sandbox.scheduler.wait_idle()
    attempts = [d["attempt"] for d in running.sandbox.state()["webhooks"]]
    assert attempts == [1, 2, 3]


def test_control_rejects_unknown_or_bad_switches_and_resets(running):
    bad = requests.post(f"{running.url}/sandbox/control", json={"set": {"explode": True}}, timeout=5)
    assert bad.status_code == 400 and "explode" in bad.json()["error"]
    wrong_type = requests.post(f"{running.url}/sandbox/control", json={"set": {"fail_next": "2"}}, timeout=5)
    assert wrong_type.status_code == 400
    assert running.control(fail_next=5)["behaviour"]["fail_next"] == 5
    reset = requests.post(f"{running.url}/sandbox/control", json={"reset": True}, timeout=5).json()
    assert reset["behaviour"]["fail_next"] == 0


# --- simulated users through the control endpoint -------------------------------------------------------------


def test_control_inbound_posts_a_signed_spec_valid_inbound_event(running, receiver, auth):
    response = requests.post(
        f"{running.url}/sandbox/inbound",
        json={"sender": BUSINESS_ID, "user": "tt-user-9", "text": "Hi there"},
        timeout=5,
    )
    assert response.status_code == 200 and response.json()["status"] == 200
    (captured,) = receiver.wait_for(1)
    body = verified(captured, auth)
    assert not spec.violations(spec.webhook_validator("inbound"), body)
    (result,) = body["results"]
    assert result["sender"] == "tt-user-9" and result["to"] == BUSINESS_ID
    assert result["message"] == {"type": "TEXT", "text": "Hi there", "conversationId": "tt-user-9"}
    assert body["messageCount"] == 1 and body["pendingMessageCount"] == 0


def test_control_inbound_for_an_unknown_sender_is_400(running):
    response = requests.post(f"{running.url}/sandbox/inbound", json={"sender": "nobody", "user": "u"}, timeout=5)
    assert response.status_code == 400


def test_control_inbound_over_http_cannot_choose_where_the_signed_body_goes(running, receiver):
    elsewhere = "http://127.0.0.1:9/collect/"
    response = requests.post(
        f"{running.url}/sandbox/inbound",
        json={"sender": BUSINESS_ID, "user": "u", "text": "hi", "webhook_url": elsewhere},
        timeout=5,
    )
    assert response.status_code == 400 and "webhook_url" in response.json()["error"]
    assert receiver.requests == [] and list(running.sandbox.deliveries) == []


def non_loopback_address() -> str | None:
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not is_loopback(address.address):
                return address.address
    return None


def test_control_endpoints_refuse_clients_off_loopback(receiver, auth):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("192.0.2.2") and not is_loopback("not an address")
    address = non_loopback_address()
    if address is None:  # a machine with loopback only: the rule above is all there is to check
        return
    sandbox = Sandbox(StaticAccounts([]), Behaviour())
    server = SandboxServer(sandbox, "0.0.0.0", 0)
    server.start()
    try:
        port = server.server_address[1]
        for method, path in [("GET", "/sandbox/state"), ("POST", "/sandbox/control"), ("POST", "/sandbox/inbound")]:
            answer = requests.request(method, f"http://{address}:{port}{path}", json={"reset": True}, timeout=5)
            assert answer.status_code == 403, (path, answer.text)
        assert requests.get(f"http://127.0.0.1:{port}/sandbox/state", timeout=5).status_code == 200
    finally:
        server.stop()


def test_scripted_conversation_of_several_users(running, receiver):
    response = requests.post(
        f"{running.url}/sandbox/conversation",
        json={"sender": BUSINESS_ID, "users": 3, "messages": 2, "interval_ms": 5},
        timeout=5,
    )
    assert response.json() == {"scheduled": 6}
    captured = receiver.wait_for(6)
    senders = [c.json["results"][0]["sender"] for c in captured]
    assert sorted(set(senders)) == ["sim-user-1", "sim-user-2", "sim-user-3"]
    assert all(not spec.violations(spec.webhook_validator("inbound"), c.json) for c in captured)


def test_sandbox_listens_on_loopback_only(running):
    assert running.server.server_address[0] == "127.0.0.1"
    assert API_KEY not in repr(running.account)
