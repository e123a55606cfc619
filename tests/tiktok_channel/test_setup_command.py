import json
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tiktok_channel.models import InfobipAccount, TikTokSender

ADD = [
    "infobip_account",
    "add",
    "--name",
    "Shop",
    "--base-url",
    "https://abc.api.infobip.com",
    "--api-key",
    "KEY-1234567890",
]


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
class TestAdd:
    def test_hmac_account_with_two_senders(self):
        out = json.loads(
            run(
                *ADD,
                "--sender",
                "biz-1",
                "--sender",
                "biz-2",
                "--auth",
                "hmac",
                "--secret",
                "sek",
                "--hmac-algorithm",
                "HMAC_SHA_512",
                "--signature-header",
                "X-Sig",
                "--signature-encoding",
                "base64",
                "--inbox",
                "Sales",
            )
        )
        account = InfobipAccount.objects.get(pk=out["id"])
        assert out["webhook_url"] == f"https://inbox.example.test/webhooks/infobip/tiktok/{account.webhook_token}/"
        assert (account.hmac_algorithm, account.signature_header, account.signature_encoding) == (
            "HMAC_SHA_512",
            "X-Sig",
            "base64",
        )
        assert account.webhook_secret == "sek" and account.api_key == "KEY-1234567890"
        assert sorted(TikTokSender.objects.values_list("business_account_id", "inbox__name")) == [
            ("biz-1", "Sales"),
            ("biz-2", "Sales"),
        ]
        assert len(account.webhook_token) >= 32

    def test_basic_account_defaults_inbox_to_account_name(self):
        out = json.loads(run(*ADD, "--sender", "biz-9", "--auth", "basic", "--username", "u", "--password", "p"))
        assert out["senders"] == [{"business_account_id": "biz-9", "inbox": "Shop", "active": True}]
        assert InfobipAccount.objects.get().basic_password == "p"

    def test_header_account(self):
        run(*ADD, "--sender", "biz-9", "--auth", "header", "--signature-header", "X-Secret", "--secret", "s")
        account = InfobipAccount.objects.get()
        assert account.webhook_auth_settings().signature_header == "X-Secret"

    def test_list_shows_accounts_without_secrets(self):
        run(*ADD, "--sender", "biz-1", "--auth", "hmac", "--secret", "very-secret-value")
        listing = run("infobip_account", "list")
        accounts = json.loads(listing)
        assert [a["name"] for a in accounts] == ["Shop"]
        assert accounts[0]["senders"][0]["business_account_id"] == "biz-1"
        assert "very-secret-value" not in listing and "KEY-1234567890" not in listing


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (["--sender", "b", "--auth", "hmac"], "--auth hmac needs --secret"),
        (["--sender", "b", "--auth", "basic", "--username", "u"], "--auth basic needs --username and --password"),
        (["--sender", "b", "--auth", "header", "--secret", "s"], "--auth header needs --signature-header"),
        (["--sender", "b", "--sender", "b", "--auth", "hmac", "--secret", "s"], "the same --sender is given twice"),
        (["--sender", "b", "--auth", "oauth"], "invalid choice: 'oauth'"),
        (["--sender", "b", "--auth", "hmac", "--secret", "s", "--hmac-algorithm", "SHA1"], "invalid choice"),
        (["--auth", "hmac", "--secret", "s"], "the following arguments are required: --sender"),
    ],
)
def test_bad_arguments_are_refused(extra, reason):
    with pytest.raises(CommandError, match=reason):
        run(*ADD, *extra)
    assert not InfobipAccount.objects.exists()


@pytest.mark.django_db
def test_bad_base_url_is_refused():
    args = [a if a != "https://abc.api.infobip.com" else "not a url" for a in ADD]
    with pytest.raises(CommandError, match="base_url: Enter a valid URL"):
        run(*args, "--sender", "b", "--auth", "hmac", "--secret", "s")


@pytest.mark.django_db
def test_taken_sender_and_name_are_refused():
    run(*ADD, "--sender", "biz-1", "--auth", "hmac", "--secret", "s")
    with pytest.raises(CommandError, match="name: Infobip account with this Name already exists"):
        run(*ADD, "--sender", "biz-2", "--auth", "hmac", "--secret", "s")
    other = [a if a != "Shop" else "Other" for a in ADD]
    with pytest.raises(CommandError, match="sender biz-1 is already connected"):
        run(*other, "--sender", "biz-1", "--auth", "hmac", "--secret", "s")
    assert InfobipAccount.objects.count() == 1


def test_command_line_error_is_one_line_and_non_zero(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", *ADD, "--sender", "b", "--auth", "hmac"], env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == ["CommandError: --auth hmac needs --secret"]
