"""simulate_tiktok_user and the sandbox reading accounts from the project database."""

from __future__ import annotations

import json

import pytest
import requests
from django.core.management import CommandError, call_command

from tests.tiktok_channel.sandbox.conftest import text_message
from tiktok_channel import spec
from tiktok_channel.sandbox.accounts import DatabaseAccounts
from tiktok_channel.sandbox.behaviour import Behaviour
from tiktok_channel.sandbox.server import Sandbox, SandboxServer
from tiktok_channel.webhook_auth import verify


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--text", "Hi"], {"type": "TEXT", "text": "Hi"}),
        (["--image", "https://x.test/a.png"], {"type": "IMAGE", "mediaUrl": "https://x.test/a.png"}),
        (["--share-post"], {"type": "SHARE_POST"}),
        (["--reaction", "❤️", "--context", "out-9"], {"type": "REACTION", "emoji": "❤️", "context": {"id": "out-9"}}),
        (["--referral-ad"], {"type": "REFERRAL_AD"}),
        (["--tiktok-me", "summer_sale", "--prefilled", "Hello"], {"type": "REFERRAL_SHORT_LINK", "ref": "summer_sale"}),
    ],
    ids=["text", "image", "share-post", "reaction", "referral-ad", "tiktok-me"],
)
def test_simulate_tiktok_user_posts_a_signed_spec_valid_inbound_event(make_account, receiver, capsys, args, expected):
    account = make_account(sender_id="biz-sim", webhook_auth="basic", basic_username="ib", basic_password="pw")

    call_command(
        "simulate_tiktok_user", "--sender", "biz-sim", "--user", "tt-42", *args, "--webhook-url", f"{receiver.url}/in/"
    )

    (captured,) = receiver.requests
    verify(account.webhook_auth_settings(), captured.headers, captured.body)
    body = captured.json
    assert not spec.violations(spec.webhook_validator("inbound"), body)
    (result,) = body["results"]
    assert result["sender"] == "tt-42" and result["to"] == "biz-sim" and result["integrationType"] == "TIKTOK"
    assert result["message"]["conversationId"] == "tt-42"
    assert expected.items() <= result["message"].items()
    assert body["messageCount"] == 1 and body["pendingMessageCount"] == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"url": f"{receiver.url}/in/", "messageId": result["messageId"], "status": 200}


def test_simulate_tiktok_user_goes_to_the_account_webhook_url_by_default(make_account, settings, receiver):
    settings.PUBLIC_BASE_URL = receiver.url
    account = make_account(sender_id="biz-default")
    call_command("simulate_tiktok_user", "--sender", "biz-default", "--user", "u", "--text", "Hi")
    (captured,) = receiver.requests
    assert captured.path == f"/webhooks/infobip/tiktok/{account.webhook_token}/"
    verify(account.webhook_auth_settings(), captured.headers, captured.body)


@pytest.mark.django_db
def test_the_demo_account_keeps_the_runs_webhook_base_for_simulate_tiktok_user_in_another_shell(
    settings, receiver, capsys
):
    """`PORT=18800 make run` sets PUBLIC_BASE_URL for its own processes only; a shell without it still posts there."""
    from tiktok_channel.models import InfobipAccount

    settings.DEBUG = True
    settings.PUBLIC_BASE_URL = receiver.url  # what make run exported for its processes
    call_command("sandbox_demo_setup", "--sandbox-url", "http://127.0.0.1:9")
    account = InfobipAccount.objects.get(name="Demo (Infobip sandbox)")
    printed = capsys.readouterr().out
    assert f"Webhook: {receiver.url}/webhooks/infobip/tiktok/{account.webhook_token}/" in printed

    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"  # another shell: the default
    call_command("simulate_tiktok_user", "--sender", "demo-business", "--user", "u1", "--text", "hi")
    (captured,) = receiver.requests
    assert captured.path == f"/webhooks/infobip/tiktok/{account.webhook_token}/"
    assert json.loads(capsys.readouterr().out)["url"] == account.webhook_url

    # The next run listens elsewhere: the account follows.
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:18801"
    call_command("sandbox_demo_setup", "--sandbox-url", "http://127.0.0.1:10")
    account.refresh_from_db()
    assert account.webhook_url.startswith("http://127.0.0.1:18801/webhooks/infobip/tiktok/")
    assert account.base_url == "http://127.0.0.1:10"


def test_simulate_tiktok_user_fails_loudly(make_account, receiver):
    with pytest.raises(CommandError, match="no active sender"):
        call_command("simulate_tiktok_user", "--sender", "nope", "--user", "u", "--text", "Hi")
    make_account(sender_id="biz-x")
    receiver.statuses.append(401)
    with pytest.raises(CommandError, match="401"):
        call_command(
            "simulate_tiktok_user", "--sender", "biz-x", "--user", "u", "--text", "Hi", "--webhook-url", receiver.url
        )


@pytest.mark.django_db(transaction=True)
def test_sandbox_finds_accounts_by_api_key_in_the_database(make_account, settings, receiver):
    settings.PUBLIC_BASE_URL = receiver.url
    server = SandboxServer(Sandbox(DatabaseAccounts(), Behaviour(delivery_delay_ms=10, send_seen=False)))
    server.start()
    try:
        headers = {"Authorization": "App late-key-0123456789"}
        url = f"{server.url}/tiktok/1/messages"
        assert requests.post(url, json=text_message("db-1"), headers=headers, timeout=5).status_code == 401
        # Created after the sandbox cached the accounts: found on the miss.
        account = make_account(api_key="late-key-0123456789", sender_id="biz-db")
        assert requests.post(url, json=text_message("db-1"), headers=headers, timeout=5).status_code == 200
        (captured,) = receiver.wait_for(1)
        assert captured.path == f"/webhooks/infobip/tiktok/{account.webhook_token}/"
        verify(account.webhook_auth_settings(), captured.headers, captured.body)
    finally:
        server.stop()
