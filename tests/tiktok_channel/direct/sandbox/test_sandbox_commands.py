"""`manage.py tiktok_sandbox` (a real process) and `manage.py tiktok_sandbox_user`."""

from __future__ import annotations

import json

import pytest
import requests
from django.core.management import CommandError, call_command

from tests.tiktok_channel.direct.sandbox.conftest import BUSINESS
from tests.tiktok_channel.sandbox_helpers import serving_command
from tiktok_channel.direct.sandbox.state import Sandbox
from tiktok_channel.management.commands.tiktok_sandbox import configure


def test_tiktok_sandbox_user_posts_a_signed_message_through_the_running_sandbox(connected, capsys):
    running = connected.running

    call_command("tiktok_sandbox_user", "--url", running.url, "--account", BUSINESS, "--user", "user-7", "--text", "Hi")

    printed = json.loads(capsys.readouterr().out)
    assert printed["deliveries"][0]["status"] == 200
    ((_, content),) = [e for e in running.events(2, "im_receive_msg") if e[1]["from_user"]["id"] == "user-7"]
    assert content["text"] == {"body": "Hi"} and content["message_id"] == printed["message_id"]

    call_command(
        "tiktok_sandbox_user",
        "--url",
        running.url,
        "--account",
        BUSINESS,
        "--user",
        "user-7",
        "--image",
        "--from-business",
    )
    ((_, echo),) = running.events(1, "im_send_msg")
    assert echo["type"] == "image" and echo["message_tag"] == {"source": "APP"}


def test_tiktok_sandbox_user_fails_loudly(connected):
    running = connected.running
    with pytest.raises(CommandError, match="account must be"):
        call_command("tiktok_sandbox_user", "--url", running.url, "--account", "nobody", "--user", "u", "--text", "x")
    running.receiver.statuses.append(401)
    running.control(set={"webhook_retries": 0})
    with pytest.raises(CommandError, match="webhook answered 401"):
        call_command("tiktok_sandbox_user", "--url", running.url, "--account", BUSINESS, "--user", "u", "--text", "x")


def test_configure_from_flags_and_a_file(tmp_path):
    config = tmp_path / "sandbox.json"
    config.write_text(
        json.dumps(
            {
                "apps": [{"client_key": "file-app", "client_secret": "s1", "redirect_uris": ["https://a.example/cb/"]}],
                "accounts": [{"open_id": "file-biz", "username": "file_shop"}],
            }
        )
    )
    sandbox = Sandbox()
    try:
        configure(
            sandbox,
            {
                "config": str(config),
                "client_key": ["flag-app"],
                "client_secret": ["s2"],
                "redirect_uri": ["https://b.example/cb/"],
                "webhook_url": ["https://b.example/hook/"],
                "app_name": ["Flag app"],
                "account": ["flag-biz:flag_shop:Flag Shop"],
            },
        )
        assert sandbox.apps["file-app"].redirect_uris == ["https://a.example/cb/"]
        assert sandbox.apps["flag-app"].name == "Flag app"
        assert sandbox.apps["flag-app"].webhooks == {"DIRECT_MESSAGE": "https://b.example/hook/"}
        assert sandbox.accounts["flag-biz"].display_name == "Flag Shop"
        assert sandbox.accounts["file-biz"].display_name == "file_shop"
        with pytest.raises(CommandError, match="one --client-secret"):
            configure(sandbox, {"client_key": ["a", "b"], "client_secret": ["s"]})
        with pytest.raises(CommandError, match="cannot read"):
            configure(sandbox, {"config": str(tmp_path / "missing.json")})
    finally:
        sandbox.close()


def test_the_command_serves_until_sigterm():
    with serving_command(
        "tiktok_sandbox",
        "--port",
        "0",
        "--client-key",
        "cmd-app",
        "--client-secret",
        "cmd-secret",
        "--redirect-uri",
        "https://cmd.example/cb/",
        "--account",
        "cmd-biz:cmd_shop:Cmd Shop",
        "--no-send-read",
        "--access-token-ttl-s",
        "7200",
    ) as run:
        state = requests.get(f"{run.url}/sandbox/state", timeout=5).json()
        assert [a["client_key"] for a in state["apps"]] == ["cmd-app"]
        assert [a["open_id"] for a in state["accounts"]] == ["cmd-biz"]
        assert state["behaviour"]["send_read"] is False and state["behaviour"]["access_token_ttl_s"] == 7200
    assert "TikTok sandbox stopped" in run.output
