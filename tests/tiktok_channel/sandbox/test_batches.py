"""The sandbox takes many messages in one `POST /tiktok/1/messages` as the spec documents (`messages[]`, each with
its destinations), answers each with its own fate, and its HTTP fault switches apply to such a request whole."""

from __future__ import annotations

from tests.tiktok_channel.sandbox.conftest import text_message
from tests.tiktok_channel.sandbox_helpers import wait_until
from tiktok_channel import spec


def batch(*ids: str) -> dict:
    return {"messages": [text_message(message_id, to=f"user-{message_id}")["messages"][0] for message_id in ids]}


def fates(response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {m["messageId"]: m["status"]["name"] for m in response.json()["messages"]}


def test_a_batch_is_validated_against_the_spec_and_each_message_answered(running, receiver):
    body = batch("b-1", "b-2", "b-3")
    assert spec.violations(spec.request_validator("/tiktok/1/messages"), body) == []

    response = running.post("/tiktok/1/messages", body)

    assert fates(response) == dict.fromkeys(["b-1", "b-2", "b-3"], "PENDING_ACCEPTED")
    assert [m["destination"] for m in response.json()["messages"]] == ["user-b-1", "user-b-2", "user-b-3"]
    assert running.sandbox.counters["messages_accepted"] == 3
    reports = receiver.wait_for(6)  # a delivery and a seen report per message
    assert {r.json["results"][0]["messageId"] for r in reports} == {"b-1", "b-2", "b-3"}


def test_some_messages_of_a_batch_refused_the_others_accepted(running, receiver):
    running.control(refuse_next_messages=1, send_seen=False)

    response = running.post("/tiktok/1/messages", batch("r-1", "r-2", "r-3"))

    assert fates(response) == {"r-1": "REJECTED_DESTINATION", "r-2": "PENDING_ACCEPTED", "r-3": "PENDING_ACCEPTED"}
    refused = response.json()["messages"][0]["status"]
    assert (refused["groupName"], refused["groupId"]) == ("REJECTED", 5)
    receiver.wait_for(2)
    assert running.sandbox.scheduler.wait_idle()
    assert {r.json["results"][0]["messageId"] for r in receiver.requests} == {"r-2", "r-3"}  # none for the refused
    logs = running.get("/tiktok/1/logs", limit=1000).json()["results"]
    assert {entry["messageId"] for entry in logs} == {"r-2", "r-3"}
    counters = running.sandbox.counters
    assert (counters["messages_refused"], counters["messages_accepted"]) == (1, 2)


def test_a_refused_id_may_be_sent_again_and_a_repeated_one_is_a_duplicate(running):
    running.control(refuse_next_messages=1, send_seen=False)
    assert fates(running.post("/tiktok/1/messages", batch("x-1", "x-2"))) == {
        "x-1": "REJECTED_DESTINATION",
        "x-2": "PENDING_ACCEPTED",
    }
    assert fates(running.post("/tiktok/1/messages", batch("x-1", "x-2"))) == {
        "x-1": "PENDING_ACCEPTED",
        "x-2": "REJECTED_DUPLICATE_MESSAGE_ID",
    }


def test_the_refuse_rate_is_reproducible_with_a_seed(running):
    def run(prefix: str) -> list[str]:
        running.control(refuse_rate=0.5, seed=3, send_seen=False)
        answer = fates(running.post("/tiktok/1/messages", batch(*(f"{prefix}{n}" for n in range(10)))))
        return [key[1:] for key, name in answer.items() if name == "REJECTED_DESTINATION"]

    first = run("a")
    assert 0 < len(first) < 10
    assert run("b") == first


def test_http_faults_apply_to_a_batch_whole(running):
    running.control(fail_next=1, fail_status=503, throttle_next=1, retry_after_s=3, send_seen=False)
    assert running.post("/tiktok/1/messages", batch("f-1", "f-2")).status_code == 503
    throttled = running.post("/tiktok/1/messages", batch("f-1", "f-2"))
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"
    assert "messages_accepted" not in running.sandbox.counters  # neither message was taken
    assert fates(running.post("/tiktok/1/messages", batch("f-1", "f-2"))) == dict.fromkeys(
        ["f-1", "f-2"], "PENDING_ACCEPTED"
    )
    wait_until(lambda: running.sandbox.counters.get("messages_accepted") == 2, what="both accepted")
