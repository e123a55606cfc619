"""Custom audiences from a customer file (§7.6): what the sandbox received is inspectable, raw PII is refused."""

from __future__ import annotations

import hashlib
import io
import json
import re

import requests

from tests.tiktok_channel.ads.sandbox.conftest import ADVERTISER, SECRET, sha256_rows

HEX64 = re.compile(r"[0-9a-f]{64}")


def _files(running) -> list[dict]:
    return requests.get(f"{running.url}/sandbox/audience_files", timeout=10).json()["files"]


def test_ten_thousand_hashed_rows_upload_create_and_get(connected):
    rows = sha256_rows(10_000)
    upload = connected.audience_file(rows)
    assert upload["code"] == 0, upload
    file_path = upload["data"]["file_path"]

    (received,) = _files(connected.running)
    assert received["file_path"] == file_path and received["accepted"] is True
    assert received["header"] == "email_sha256"
    assert received["rows"] == rows
    assert all(HEX64.fullmatch(r) for r in received["rows"])

    body = {
        "advertiser_id": ADVERTISER,
        "custom_audience_name": "CRM buyers 2026-11",
        "file_paths": [file_path],
        "calculate_type": "EMAIL_SHA256",
        "retention_in_days": 180,
    }
    created = connected.running.post("/dmp/custom_audience/create/", body, token=connected.token)
    assert created["code"] == 0, created
    audience_id = created["data"]["custom_audience_id"]
    got = connected.running.get(
        "/dmp/custom_audience/get/",
        {"advertiser_id": ADVERTISER, "custom_audience_ids": f'["{audience_id}"]'},
        token=connected.token,
    )
    (item,) = got["data"]["list"]
    assert item["audience_details"]["audience_id"] == audience_id
    assert item["audience_details"]["cover_num"] == 10_000
    assert item["audience_details"]["calculate_type"] == "EMAIL_SHA256"
    assert item["audience_history"][0]["action"] == "CREATE"


def test_raw_identifiers_are_refused_40062_and_still_recorded(connected):
    rows = sha256_rows(1500)
    rows[7] = "jane.doe@example.com"
    rows[9] = "+37493828222"
    answer = connected.audience_file(rows)
    assert answer["code"] == 40062
    assert "2 of 1500 entries are not EMAIL_SHA256 hashes" in answer["message"]
    (received,) = _files(connected.running)
    assert received["accepted"] is False and received["not_hashed"] == 2
    assert [r for r in received["rows"] if not HEX64.fullmatch(r)] == ["jane.doe@example.com", "+37493828222"]
    # the raw bytes were received: the request log shows them too, which is what a product test looks for
    log = requests.get(
        f"{connected.running.url}/sandbox/requests", params={"path_contains": "/file/upload/"}, timeout=10
    ).json()
    (upload,) = log["requests"]
    assert upload["path"] == "/open_api/v1.3/dmp/custom_audience/file/upload/"
    assert "jane.doe@example.com" in upload["body"]


def test_the_request_log_holds_every_call_with_secrets_masked(connected):
    connected.audience_file(sha256_rows(1000))
    log = requests.get(f"{connected.running.url}/sandbox/requests", timeout=10).json()
    assert log["received"] == len(log["requests"]) == 2  # the token exchange and the upload
    exchange, upload = log["requests"]
    assert exchange["path"] == "/open_api/v1.3/oauth2/access_token/"
    assert json.loads(exchange["body"])["secret"] == "***" and SECRET not in exchange["body"]
    assert upload["content_type"].startswith("multipart/form-data")


def test_file_refusals(connected):
    data = ("email_sha256\n" + "\n".join(sha256_rows(1000))).encode()
    fields = {"advertiser_id": ADVERTISER, "calculate_type": "EMAIL_SHA256", "file_signature": "0" * 32}
    answer = connected.running.upload(
        "/dmp/custom_audience/file/upload/", fields, {"file": ("a.csv", io.BytesIO(data))}, token=connected.token
    )
    assert answer["code"] == 40900
    assert "at least 1000" in connected.audience_file(sha256_rows(999))["message"]
    assert connected.audience_file(sha256_rows(1000), calculate_type="SHA256")["code"] == 40002  # the spec's enum
    md5_rows = [hashlib.md5(r.encode()).hexdigest() for r in sha256_rows(1000)]
    assert connected.audience_file(md5_rows)["code"] == 40062  # MD5 digests are not SHA-256 ones
    upper = connected.audience_file([r.upper() for r in sha256_rows(1000)], header="")  # lowercase hex only
    assert upper["code"] == 40062 and "1000 of 1000 entries" in upper["message"]  # no row taken for a header


def test_append_replace_remove_and_the_minimum(connected):
    first = connected.audience_file(sha256_rows(1000))["data"]["file_path"]
    more = connected.audience_file(sha256_rows(500, start=1000) + sha256_rows(500))["data"]["file_path"]
    body = {
        "advertiser_id": ADVERTISER,
        "custom_audience_name": "CRM",
        "file_paths": [first],
        "calculate_type": "EMAIL_SHA256",
    }
    audience_id = connected.running.post("/dmp/custom_audience/create/", body, token=connected.token)["data"][
        "custom_audience_id"
    ]

    def update(**extra) -> dict:
        body = {"advertiser_id": ADVERTISER, "custom_audience_id": audience_id, "file_paths": [more], **extra}
        return connected.running.post("/dmp/custom_audience/update/", body, token=connected.token)

    def size() -> int:
        return [a for a in connected.running.state()["audiences"] if a["custom_audience_id"] == audience_id][0]["size"]

    assert update(action="APPEND")["code"] == 0 and size() == 1500
    assert update()["code"] == 0 and size() == 1000  # REPLACE is the default
    refused = update(action="REMOVE")
    assert refused["code"] == 40002 and "at least 1000" in refused["message"] and size() == 1000


def test_create_checks_the_files(connected):
    path = connected.audience_file(sha256_rows(1000))["data"]["file_path"]
    body = {
        "advertiser_id": ADVERTISER,
        "custom_audience_name": "CRM",
        "file_paths": [path],
        "calculate_type": "PHONE_SHA256",
    }
    assert connected.running.post("/dmp/custom_audience/create/", body, token=connected.token)["code"] == 40909
    body.update(calculate_type="EMAIL_SHA256", file_paths=["dmp/nope.csv"])
    assert connected.running.post("/dmp/custom_audience/create/", body, token=connected.token)["code"] == 40905
    del body["custom_audience_name"]
    answer = connected.running.post("/dmp/custom_audience/create/", body, token=connected.token)
    assert answer["code"] == 40002 and "custom_audience_name is required" in answer["message"]


def test_subscription_tokens_are_masked_in_the_request_log(connected):
    body = {
        "app_id": "x",
        "secret": "y",
        "subscribe_entity": "AD",
        "callback_url": "https://h.example/",
        "subscription_detail": {"access_token": connected.token, "advertiser_id": ADVERTISER, "ad_id": "1"},
    }
    connected.running.post("/subscription/subscribe/", body)
    log = requests.get(f"{connected.running.url}/sandbox/requests", timeout=10).json()["requests"]
    assert connected.token not in log[-1]["body"]
    assert json.loads(log[-1]["body"])["subscription_detail"]["access_token"] == "***"


def test_a_new_audience_is_valid_once_built(connected):
    connected.running.control(set={"audience_build_s": 3600})
    path = connected.audience_file(sha256_rows(1000))["data"]["file_path"]
    body = {
        "advertiser_id": ADVERTISER,
        "custom_audience_name": "CRM",
        "file_paths": [path],
        "calculate_type": "EMAIL_SHA256",
    }
    audience_id = connected.running.post("/dmp/custom_audience/create/", body, token=connected.token)["data"][
        "custom_audience_id"
    ]
    query = {"advertiser_id": ADVERTISER, "custom_audience_ids": f'["{audience_id}"]'}
    details = connected.running.get("/dmp/custom_audience/get/", query, token=connected.token)["data"]["list"][0]
    assert details["audience_details"]["is_valid"] is False
    assert details["audience_details"]["msg"] == "Audience is being built"
