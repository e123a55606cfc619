"""Campaigns, ad groups, ads and images (§7.1-7.4) against the ads sandbox over real HTTP."""

from __future__ import annotations

import hashlib
import io
import json

import requests

from tests.tiktok_channel.ads.sandbox.conftest import ADVERTISER, png


def test_campaign_create_answers_the_campaign_with_its_id(connected):
    answer = connected.campaign(operation_status="DISABLE")
    assert answer["code"] == 0
    data = answer["data"]
    assert data["campaign_id"].isdigit() and len(data["campaign_id"]) == 19
    assert data["campaign_name"] == "Spring leads"
    assert data["operation_status"] == "DISABLE"
    assert data["secondary_status"] == "CAMPAIGN_STATUS_DISABLE"


def test_operation_status_defaults_to_enable(connected):
    assert connected.campaign()["data"]["operation_status"] == "ENABLE"


def test_required_campaign_fields_are_refused_with_http_200_and_40002(connected):
    for missing in ("campaign_name", "objective_type", "budget_mode"):
        body = {
            "advertiser_id": ADVERTISER,
            "campaign_name": "x",
            "objective_type": "TRAFFIC",
            "budget_mode": "BUDGET_MODE_DAY",
            "budget": 10,
        }
        del body[missing]
        answer = connected.running.post("/campaign/create/", body, token=connected.token)
        assert answer["code"] == 40002, missing
        assert answer["message"] == f"Param error: {missing} is required"


def test_bad_campaign_values_say_why(connected):
    assert "objective_type must be one of" in connected.campaign(objective_type="SALES")["message"]
    assert "budget is required" in connected.campaign(budget=None)["message"]
    assert "emoji" in connected.campaign(campaign_name="Spring 🌸")["message"]
    assert connected.campaign(campaign_name="x" * 513)["code"] == 40002
    assert connected.campaign(objective_type="RF_REACH", budget_mode=None, budget=None)["code"] == 0


def test_a_retried_request_id_answers_the_first_campaign(connected):
    first = connected.campaign(request_id="8812345678901234")["data"]
    again = connected.campaign(request_id="8812345678901234")["data"]
    assert again["campaign_id"] == first["campaign_id"]
    assert len(connected.running.state()["campaigns"]) == 1


def test_campaign_get_filters_and_pages(connected):
    ids = [connected.campaign(campaign_name=f"Campaign {n}")["data"]["campaign_id"] for n in range(5)]
    running, token = connected.running, connected.token
    page1 = running.get("/campaign/get/", {"advertiser_id": ADVERTISER, "page_size": "2"}, token=token)["data"]
    assert page1["page_info"] == {"page": 1, "page_size": 2, "total_number": 5, "total_page": 3}
    assert [c["campaign_id"] for c in page1["list"]] == ids[::-1][:2]  # newest first
    page3 = running.get("/campaign/get/", {"advertiser_id": ADVERTISER, "page_size": "2", "page": "3"}, token=token)
    assert [c["campaign_id"] for c in page3["data"]["list"]] == [ids[0]]

    params = {
        "advertiser_id": ADVERTISER,
        "filtering": json.dumps({"campaign_ids": ids[1:3]}),
        "fields": '["campaign_id","campaign_name"]',
    }
    picked = running.get("/campaign/get/", params, token=token)["data"]["list"]
    assert sorted(picked, key=lambda c: c["campaign_id"]) == sorted(
        [{"campaign_id": i, "campaign_name": f"Campaign {n + 1}"} for n, i in enumerate(ids[1:3])],
        key=lambda c: c["campaign_id"],
    )
    by_name = {"advertiser_id": ADVERTISER, "filtering": '{"campaign_name": "campaign 4"}'}
    assert [c["campaign_id"] for c in running.get("/campaign/get/", by_name, token=token)["data"]["list"]] == [ids[4]]


def test_bad_paging_and_filtering_are_40002(connected):
    running, token = connected.running, connected.token
    for params in ({"page_size": "1001"}, {"page": "0"}, {"filtering": "{not json"}, {"fields": '"campaign_id"'}):
        answer = running.get("/campaign/get/", {"advertiser_id": ADVERTISER, **params}, token=token)
        assert answer["code"] == 40002, params


def test_the_whole_tree_image_ad_group_ad(connected):
    campaign_id, adgroup_id, ad_id = connected.tree()
    running, token = connected.running, connected.token
    ad = running.get("/ad/get/", {"advertiser_id": ADVERTISER}, token=token)["data"]["list"]
    assert [(a["ad_id"], a["adgroup_id"], a["campaign_id"]) for a in ad] == [(ad_id, adgroup_id, campaign_id)]
    assert ad[0]["secondary_status"] == "AD_STATUS_AUDIT"  # under review
    groups = running.get("/adgroup/get/", {"advertiser_id": ADVERTISER}, token=token)["data"]["list"]
    assert groups[0]["budget"] == 50.0 and groups[0]["location_ids"] == ["2635167"]


def test_required_adgroup_fields(connected):
    campaign_id = connected.campaign()["data"]["campaign_id"]
    for missing in ("adgroup_name", "billing_event", "optimization_goal", "pacing", "schedule_type", "budget"):
        answer = connected.adgroup(campaign_id, **{missing: None})
        assert answer["code"] == 40002, missing
        assert missing in answer["message"]
    answer = connected.adgroup(campaign_id, schedule_type="SCHEDULE_START_END")
    assert "schedule_end_time is required" in answer["message"]
    answer = connected.adgroup(campaign_id, schedule_start_time="2026-12-01T00:00:00Z")
    assert "YYYY-MM-DD HH:MM:SS" in answer["message"]
    assert connected.adgroup("123")["code"] == 40007


def test_ads_need_their_creative_fields_and_existing_images(connected):
    campaign_id = connected.campaign()["data"]["campaign_id"]
    adgroup_id = connected.adgroup(campaign_id)["data"]["adgroup_id"]
    image_id = connected.image()["data"]["image_id"]
    assert "creatives[0].ad_name is required" in connected.ad(adgroup_id, image_id, ad_name=None)["message"]
    assert connected.ad(adgroup_id, "ad-site-i18n-sg/nope")["code"] == 40007
    assert "image_ids is required" in connected.ad(adgroup_id, image_id, image_ids=[])["message"]
    assert "landing_page_url" in connected.ad(adgroup_id, image_id, landing_page_url="ftp://x")["message"]
    body = {"advertiser_id": ADVERTISER, "adgroup_id": adgroup_id}
    assert "creatives is a required" in connected.running.post("/ad/create/", body, token=connected.token)["message"]


def test_an_ad_group_holds_at_most_twenty_ads(connected):
    campaign_id = connected.campaign()["data"]["campaign_id"]
    adgroup_id = connected.adgroup(campaign_id)["data"]["adgroup_id"]
    image_id = connected.image()["data"]["image_id"]
    creative = {"ad_name": "A", "ad_format": "SINGLE_IMAGE", "image_ids": [image_id]}
    body = {"advertiser_id": ADVERTISER, "adgroup_id": adgroup_id, "creatives": [creative] * 20}
    assert len(connected.running.post("/ad/create/", body, token=connected.token)["data"]["ad_ids"]) == 20
    assert connected.ad(adgroup_id, image_id)["code"] == 40502


def test_status_updates_pause_enable_delete(connected):
    campaign_id, adgroup_id, ad_id = connected.tree()
    running, token = connected.running, connected.token

    def update(status: str) -> dict:
        body = {"advertiser_id": ADVERTISER, "ad_ids": [ad_id], "operation_status": status}
        return running.post("/ad/status/update/", body, token=token)

    def ad() -> dict:
        return running.get("/ad/get/", {"advertiser_id": ADVERTISER, "filtering": "{}"}, token=token)["data"]["list"]

    assert update("DISABLE")["data"] == {"ad_ids": [ad_id], "status": "DISABLE"}
    assert ad()[0]["operation_status"] == "DISABLE"
    assert update("ENABLE")["code"] == 0 and ad()[0]["operation_status"] == "ENABLE"
    assert update("DELETE")["code"] == 0
    assert ad() == []  # deleted ones are hidden by default
    everything = {"advertiser_id": ADVERTISER, "filtering": '{"primary_status": "STATUS_ALL"}'}
    assert running.get("/ad/get/", everything, token=token)["data"]["list"][0]["operation_status"] == "DELETE"
    again = update("ENABLE")
    assert again["code"] == 40002 and "deleted" in again["message"]


def test_deleting_a_campaign_deletes_its_ad_groups_and_ads(connected):
    campaign_id, adgroup_id, ad_id = connected.tree()
    body = {"advertiser_id": ADVERTISER, "campaign_ids": [campaign_id], "operation_status": "DELETE"}
    assert connected.running.post("/campaign/status/update/", body, token=connected.token)["code"] == 0
    state = connected.running.state()
    assert state["adgroups"][0]["operation_status"] == "DELETE"
    assert state["ads"][0]["operation_status"] == "DELETE"


def test_status_update_takes_one_to_twenty_ids(connected):
    body = {"advertiser_id": ADVERTISER, "campaign_ids": [], "operation_status": "DISABLE"}
    assert connected.running.post("/campaign/status/update/", body, token=connected.token)["code"] == 40002
    body = {"advertiser_id": ADVERTISER, "campaign_ids": ["1"], "operation_status": "PAUSE"}
    assert connected.running.post("/campaign/status/update/", body, token=connected.token)["code"] == 40002


def test_image_upload_answers_the_documented_fields(connected):
    data = png(40, 30)
    answer = connected.image(data)
    assert answer["code"] == 0
    image = answer["data"]
    assert image["width"] == 40 and image["height"] == 30 and image["format"] == "png"
    assert image["signature"] == hashlib.md5(data).hexdigest() and image["size"] == len(data)
    assert set(image) == {
        "image_id",
        "material_id",
        "width",
        "height",
        "format",
        "image_url",
        "signature",
        "size",
        "file_name",
    }
    served = requests.get(image["image_url"], timeout=5)
    assert served.status_code == 200 and served.content == data


def test_image_upload_refusals(connected):
    running, token = connected.running, connected.token
    data = png()
    fields = {"advertiser_id": ADVERTISER, "image_signature": "0" * 32, "file_name": "a.png"}
    wrong_md5 = running.upload(
        "/file/image/ad/upload/", fields, {"image_file": ("a.png", io.BytesIO(data))}, token=token
    )
    assert wrong_md5["code"] == 40900
    assert connected.image(b"GIF89a....", file_name="b.gif")["code"] == 40908
    assert connected.image(file_name="c.png")["code"] == 0
    assert connected.image(file_name="c.png")["code"] == 40911
    assert "pixels" in connected.image(png(2000, 2000), file_name="big.png")["message"]
