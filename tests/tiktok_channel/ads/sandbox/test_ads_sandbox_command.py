"""`manage.py tiktok_ads_sandbox`: a real process, configured by flags, stopped by SIGTERM."""

from __future__ import annotations

import pytest
import requests
from django.core.management import CommandError, call_command

from tests.tiktok_channel.sandbox_helpers import serving_command


def test_the_command_serves_until_sigterm():
    with serving_command(
        "tiktok_ads_sandbox",
        "--port",
        "0",
        "--app-id",
        "7300000000000000009",
        "--secret",
        "cmd-secret",
        "--redirect-uri",
        "https://cmd.example/ads/cb/",
        "--advertiser",
        "7012345678900000001:Cmd Shop",
        "--no-sign-review-webhooks",
        "--audience-min-rows",
        "10",
    ) as run:
        state = requests.get(f"{run.url}/sandbox/state", timeout=5).json()
        assert [a["app_id"] for a in state["apps"]] == ["7300000000000000009"]
        assert state["apps"][0]["redirect_uris"] == ["https://cmd.example/ads/cb/"]
        assert [(a["advertiser_id"], a["advertiser_name"]) for a in state["advertisers"]] == [
            ("7012345678900000001", "Cmd Shop")
        ]
        assert state["behaviour"]["sign_review_webhooks"] is False
        assert state["behaviour"]["audience_min_rows"] == 10
        page = requests.get(
            f"{run.url}/portal/auth",
            params={"app_id": "7300000000000000009", "redirect_uri": "https://cmd.example/ads/cb/", "state": "s"},
            timeout=5,
        )
        assert page.status_code == 200 and "Cmd Shop" in page.text
    assert "TikTok ads sandbox stopped" in run.output


def test_bad_flags_fail_loudly():
    with pytest.raises(CommandError, match="one --secret"):
        call_command("tiktok_ads_sandbox", "--port", "0", "--app-id", "1")
    with pytest.raises(CommandError, match="throttle_code"):
        call_command("tiktok_ads_sandbox", "--port", "0", "--throttle-code", "1")
    with pytest.raises(CommandError, match="advertiser_id"):
        call_command("tiktok_ads_sandbox", "--port", "0", "--advertiser", "abc:Nope")
