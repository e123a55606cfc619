"""The synchronous integrated report (§7.5) against the ads sandbox over real HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.tiktok_channel.ads.sandbox.conftest import ADVERTISER


def _days_back(n: int) -> tuple[str, str]:
    today = datetime.now(UTC).date()  # the advertiser's time zone is UTC
    return (today - timedelta(days=n - 1)).isoformat(), today.isoformat()


def _report(connected, **params) -> dict:
    start, end = _days_back(7)
    query = {
        "advertiser_id": ADVERTISER,
        "report_type": "BASIC",
        "data_level": "AUCTION_AD",
        "dimensions": '["ad_id","stat_time_day"]',
        "metrics": '["spend","impressions","clicks","conversion","ctr","cost_per_conversion"]',
        "start_date": start,
        "end_date": end,
        "page_size": "100",
        **params,
    }
    return connected.running.get("/report/integrated/get/", query, token=connected.token)


def test_a_row_per_ad_per_day_with_string_metrics_that_grow(connected):
    _, _, ad_id = connected.tree()
    answer = _report(connected)
    assert answer["code"] == 0, answer
    rows = answer["data"]["list"]
    start, _ = _days_back(7)
    assert [r["dimensions"] for r in rows] == [
        {"ad_id": ad_id, "stat_time_day": f"{datetime.fromisoformat(start).date() + timedelta(n)} 00:00:00"}
        for n in range(7)
    ]
    for row in rows:
        assert all(isinstance(v, str) for v in row["metrics"].values())
        assert set(row["metrics"]) == {"spend", "impressions", "clicks", "conversion", "ctr", "cost_per_conversion"}
        Decimal(row["metrics"]["spend"])  # money parses as a decimal
    impressions = [int(r["metrics"]["impressions"]) for r in rows]
    spend = [Decimal(r["metrics"]["spend"]) for r in rows]
    assert impressions == sorted(impressions) and len(set(impressions)) == 7
    assert spend == sorted(spend) and spend[0] > 0
    assert answer["data"]["page_info"] == {"page": 1, "page_size": 100, "total_number": 7, "total_page": 1}


def test_the_figures_are_deterministic(connected):
    connected.tree()
    assert _report(connected)["data"]["list"] == _report(connected)["data"]["list"]


def test_ratios_follow_the_sums(connected):
    connected.tree()
    row = _report(connected)["data"]["list"][0]["metrics"]
    clicks, impressions = Decimal(row["clicks"]), Decimal(row["impressions"])
    assert Decimal(row["ctr"]) == (clicks * 100 / impressions).quantize(Decimal("0.01"))
    conversions = Decimal(row["conversion"])
    assert Decimal(row["cost_per_conversion"]) == (Decimal(row["spend"]) / conversions).quantize(Decimal("0.01"))


def test_campaign_level_sums_its_ads(connected):
    campaign_id, adgroup_id, _ = connected.tree()
    image_id = connected.image(file_name="second.png")["data"]["image_id"]
    assert connected.ad(adgroup_id, image_id, ad_name="Image B")["code"] == 0
    by_ad = _report(connected, dimensions='["ad_id"]', metrics='["impressions","spend"]')["data"]["list"]
    by_campaign = _report(
        connected,
        data_level="AUCTION_CAMPAIGN",
        dimensions='["campaign_id"]',
        metrics='["impressions","spend","campaign_name"]',
    )["data"]["list"]
    assert len(by_ad) == 2
    assert by_campaign == [
        {
            "dimensions": {"campaign_id": campaign_id},
            "metrics": {
                "impressions": str(sum(int(r["metrics"]["impressions"]) for r in by_ad)),
                "spend": str(sum(Decimal(r["metrics"]["spend"]) for r in by_ad)),
                "campaign_name": "Spring leads",
            },
        }
    ]


def test_paging_and_filtering(connected):
    _, adgroup_id, first = connected.tree()
    image_id = connected.image(file_name="second.png")["data"]["image_id"]
    second = connected.ad(adgroup_id, image_id, ad_name="Image B")["data"]["ad_ids"][0]
    page2 = _report(connected, page_size="5", page="2")["data"]
    assert page2["page_info"] == {"page": 2, "page_size": 5, "total_number": 14, "total_page": 3}
    assert len(page2["list"]) == 5
    filtering = json.dumps([{"field_name": "ad_ids", "filter_type": "IN", "filter_value": json.dumps([second])}])
    only = _report(connected, filtering=filtering)["data"]["list"]
    assert {r["dimensions"]["ad_id"] for r in only} == {second} and first != second


def test_default_metrics_and_totals(connected):
    connected.tree()
    answer = _report(connected, metrics="", enable_total_metrics="true")["data"]
    assert set(answer["list"][0]["metrics"]) == {"spend", "impressions"}
    assert answer["total_metrics"]["impressions"] == str(sum(int(r["metrics"]["impressions"]) for r in answer["list"]))


def test_report_refusals_say_why(connected):
    connected.tree()
    start, end = _days_back(31)
    cases = [
        ({"report_type": "WEEKLY"}, "report_type must be one of"),
        ({"report_type": ""}, "report_type is required"),
        ({"data_level": "AD"}, "data_level"),
        ({"dimensions": '["campaign_id"]'}, "dimensions must be"),
        ({"metrics": '["likes"]'}, "unknown metrics: likes"),
        ({"start_date": start, "end_date": end}, "at most 30 days"),
        ({"start_date": "2026/11/01"}, "start_date must be YYYY-MM-DD"),
        ({"page_size": "0"}, "page_size"),
        ({"query_lifetime": "true"}, "query_lifetime cannot be combined with stat_time_day"),
        ({"order_field": "likes"}, "order_field must be a numeric metric"),
    ]
    for params, reason in cases:
        answer = _report(connected, **params)
        assert answer["code"] == 40002, params
        assert reason in answer["message"], (params, answer["message"])


def test_lifetime_totals_and_ordering(connected):
    _, adgroup_id, first = connected.tree()
    image_id = connected.image(file_name="second.png")["data"]["image_id"]
    second = connected.ad(adgroup_id, image_id, ad_name="Image B")["data"]["ad_ids"][0]
    lifetime = _report(connected, dimensions='["ad_id"]', query_lifetime="true", start_date="", end_date="")
    assert {r["dimensions"]["ad_id"] for r in lifetime["data"]["list"]} == {first, second}
    week = _report(connected, dimensions='["ad_id"]')["data"]["list"]
    assert int(lifetime["data"]["list"][0]["metrics"]["impressions"]) > int(week[0]["metrics"]["impressions"])
    for order in ("ASC", "DESC"):
        rows = _report(connected, order_field="spend", order_type=order)["data"]["list"]
        spend = [Decimal(r["metrics"]["spend"]) for r in rows]
        assert spend == sorted(spend, reverse=order == "DESC")
