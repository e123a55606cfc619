"""The sandbox against TikTok's own OpenAPI files (§12) where they cover an endpoint: requests the spec refuses
are refused, and answers have the spec's envelope and only the fields its response rules name."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from jsonschema import Draft202012Validator

from tests.tiktok_channel.ads.sandbox.conftest import ADVERTISER, sha256_rows
from tiktok_channel.ads.sandbox import openapi

API = "/open_api/v1.3"


def _check(method: str, path: str, answer: dict) -> None:
    """The envelope validates against the file's 200 schema; every `data` field is one the response rule names."""
    Draft202012Validator(openapi.envelope_schema(method, f"{API}{path}")).validate(answer)
    assert answer["code"] == 0, answer
    _subset(answer["data"], openapi.response_fields(method, f"{API}{path}"), path)


def _subset(data, names, where: str) -> None:
    if isinstance(data, list):
        for item in data:
            _subset(item, names, where)
        return
    if not isinstance(data, dict) or names is None:
        return
    unknown = set(data) - set(names)
    assert not unknown, f"{where}: fields the spec does not name: {unknown}"
    for key, value in data.items():
        _subset(value, names[key], f"{where}.{key}")


def test_the_vendored_files_cover_the_expected_operations():
    assert set(openapi.operations()) == {
        ("GET", f"{API}/advertiser/info/"),
        ("GET", f"{API}/report/integrated/get/"),
        ("POST", f"{API}/dmp/custom_audience/file/upload/"),
        ("POST", f"{API}/dmp/custom_audience/create/"),
        ("POST", f"{API}/dmp/custom_audience/update/"),
        ("GET", f"{API}/dmp/custom_audience/get/"),
    }
    assert "EMAIL_SHA256" in openapi.enum_values("POST", f"{API}/dmp/custom_audience/file/upload/", "calculate_type")


def test_answers_have_the_specs_shape(connected):
    running, token = connected.running, connected.token
    connected.tree()
    upload = connected.audience_file(sha256_rows(1000))
    _check("POST", "/dmp/custom_audience/file/upload/", upload)
    body = {
        "advertiser_id": ADVERTISER,
        "custom_audience_name": "CRM",
        "file_paths": [upload["data"]["file_path"]],
        "calculate_type": "EMAIL_SHA256",
    }
    created = running.post("/dmp/custom_audience/create/", body, token=token)
    _check("POST", "/dmp/custom_audience/create/", created)
    audience_id = created["data"]["custom_audience_id"]
    appended = running.post(
        "/dmp/custom_audience/update/",
        {**body, "custom_audience_id": audience_id, "action": "APPEND"},
        token=token,
    )
    _check("POST", "/dmp/custom_audience/update/", appended)
    got = running.get(
        "/dmp/custom_audience/get/",
        {"advertiser_id": ADVERTISER, "custom_audience_ids": f'["{audience_id}"]'},
        token=token,
    )
    _check("GET", "/dmp/custom_audience/get/", got)
    today = datetime.now(UTC).date().isoformat()
    report = running.get(
        "/report/integrated/get/",
        {
            "advertiser_id": ADVERTISER,
            "report_type": "BASIC",
            "data_level": "AUCTION_AD",
            "dimensions": '["ad_id","stat_time_day"]',
            "start_date": today,
            "end_date": today,
            "enable_total_metrics": "true",
        },
        token=token,
    )
    _check("GET", "/report/integrated/get/", report)
    assert report["data"]["list"]
    info = running.get("/advertiser/info/", {"advertiser_ids": f'["{ADVERTISER}"]'}, token=token)
    Draft202012Validator(openapi.envelope_schema("GET", f"{API}/advertiser/info/")).validate(info)
    assert set(info["data"]) == set(openapi.response_fields("GET", f"{API}/advertiser/info/"))


@pytest.mark.parametrize(
    ("method", "path", "values", "reason"),
    [
        ("GET", "/report/integrated/get/", {"advertiser_id": ADVERTISER}, "report_type is required"),
        ("GET", "/report/integrated/get/", {"report_type": "BASIC", "order_type": "UP"}, "order_type must be one of"),
        ("GET", "/dmp/custom_audience/get/", {"advertiser_id": ADVERTISER}, "custom_audience_ids is required"),
        ("POST", "/dmp/custom_audience/create/", {"advertiser_id": ADVERTISER}, "file_paths is required"),
        ("POST", "/dmp/custom_audience/update/", {"advertiser_id": ADVERTISER}, "custom_audience_id is required"),
        (
            "POST",
            "/dmp/custom_audience/update/",
            {"advertiser_id": ADVERTISER, "custom_audience_id": "1", "action": "ADD"},
            "action must be one of REPLACE, APPEND, REMOVE",
        ),
    ],
)
def test_requests_the_spec_refuses_are_40002(connected, method, path, values, reason):
    if method == "GET":
        answer = connected.running.get(path, values, token=connected.token)
    else:
        answer = connected.running.post(path, values, token=connected.token)
    assert answer["code"] == 40002
    assert reason in answer["message"]
