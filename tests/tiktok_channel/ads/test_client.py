"""The Marketing API client's one error path: code != 0 on HTTP 200, HTTP errors, network errors, bad bodies."""

from __future__ import annotations

import hashlib
import json

import pytest
import requests
import responses

from tiktok_channel.ads import client
from tiktok_channel.ads.client import MarketingError

from .conftest import API, TOKEN, envelope


@responses.activate
def test_success_returns_data_and_sends_the_token_as_a_header_never_in_the_url():
    responses.post(f"{API}/campaign/create/", json=envelope({"campaign_id": "1780000000000001"}))
    assert client.campaign_create(TOKEN, {"advertiser_id": "1", "campaign_name": "x"}) == "1780000000000001"
    call = responses.calls[0]
    assert call.request.headers["Access-Token"] == TOKEN
    assert TOKEN not in call.request.url
    assert call.request.url.endswith("/campaign/create/")  # every path ends with /


@responses.activate
def test_a_refusal_with_http_200_raises_with_tiktoks_code_and_message():
    responses.post(f"{API}/campaign/create/", json=envelope(code=40002, message="budget is too low"))
    with pytest.raises(MarketingError) as caught:
        client.campaign_create(TOKEN, {})
    assert caught.value.code == 40002
    assert caught.value.message == "budget is too low"
    assert not caught.value.retryable
    assert "40002" in str(caught.value)


@responses.activate
def test_throttling_40100_is_retryable():
    responses.get(f"{API}/report/integrated/get/", json=envelope(code=40100, message="Too many requests"))
    with pytest.raises(MarketingError) as caught:
        client.ad_report(TOKEN, advertiser_id="1", start_date="2026-11-01", end_date="2026-11-02")
    assert caught.value.throttled and caught.value.retryable


@responses.activate
def test_http_errors_and_non_json_bodies_raise_without_a_code():
    responses.post(f"{API}/ad/create/", status=502, body="<html>bad gateway</html>")
    with pytest.raises(MarketingError) as caught:
        client.ad_create(TOKEN, {})
    assert caught.value.code is None and caught.value.status == 502 and caught.value.retryable
    responses.post(f"{API}/adgroup/create/", status=404, json={"error": "nope"})
    with pytest.raises(MarketingError) as caught:
        client.adgroup_create(TOKEN, {})
    assert caught.value.status == 404 and not caught.value.retryable


@responses.activate
def test_a_network_error_is_retryable_and_names_no_token():
    responses.post(f"{API}/campaign/create/", body=requests.ConnectionError("refused"))
    with pytest.raises(MarketingError) as caught:
        client.campaign_create(TOKEN, {})
    assert caught.value.retryable and TOKEN not in str(caught.value)


@responses.activate
def test_an_answer_without_the_expected_id_raises():
    responses.post(f"{API}/ad/create/", json=envelope({"ad_ids": []}))
    with pytest.raises(MarketingError):
        client.ad_create(TOKEN, {})


@responses.activate
def test_report_query_holds_json_encoded_lists_and_reads_every_page():
    page = {"page_size": 1000, "total_number": 2, "total_page": 2}
    responses.get(
        f"{API}/report/integrated/get/",
        json=envelope({"list": [{"dimensions": {"ad_id": "1"}}], "page_info": {**page, "page": 1}}),
    )
    responses.get(
        f"{API}/report/integrated/get/",
        json=envelope({"list": [{"dimensions": {"ad_id": "2"}}], "page_info": {**page, "page": 2}}),
    )
    rows = client.ad_report(TOKEN, advertiser_id="77", start_date="2026-11-01", end_date="2026-11-07")
    assert [row["dimensions"]["ad_id"] for row in rows] == ["1", "2"]
    params = responses.calls[0].request.params
    assert json.loads(params["dimensions"]) == ["ad_id", "stat_time_day"]
    assert json.loads(params["metrics"]) == ["spend", "impressions", "clicks", "conversion"]
    assert params["data_level"] == "AUCTION_AD" and params["report_type"] == "BASIC"
    assert responses.calls[1].request.params["page"] == "2"


@responses.activate
def test_image_upload_is_multipart_with_the_md5_signature():
    responses.post(f"{API}/file/image/ad/upload/", json=envelope({"image_id": "img-1"}))
    content = b"\x89PNG\r\n\x1a\n" + b"0" * 20
    client.image_upload(TOKEN, advertiser_id="77", content=content, file_name="a.png")
    body = responses.calls[0].request.body
    assert b"multipart/form-data" in responses.calls[0].request.headers["Content-Type"].encode()

    assert hashlib.md5(content).hexdigest().encode() in body  # noqa: S324
    assert b'name="upload_type"' in body and b"UPLOAD_BY_FILE" in body


@responses.activate
def test_duplicate_request_40050_counts_as_done():
    responses.post(f"{API}/campaign/status/update/", json=envelope(code=40050, message="duplicated request"))
    assert client.status_update(TOKEN, advertiser_id="1", level="campaign", ids=["2"], operation_status="ENABLE") == {}
