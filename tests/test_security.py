"""Deployment hardening, the Content-Security-Policy, and secrets kept out of logs."""

import logging
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import responses
from django.utils import timezone

from inbox.models import Contact, Conversation
from inbox.services import reply_queue
from inbox.tasks import send_message
from tests.tiktok_channel.webhooks import fixture, post

ROOT = Path(__file__).resolve().parent.parent


def test_check_deploy_with_production_settings_has_no_warnings(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "k" * 20 + "Xy7!pQ2@rS9#tU4$vW6%zA1^bC3&dE5*fG8(hJ0)",
        "ALLOWED_HOSTS": "inbox.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "REDIS_URL": "redis://127.0.0.1:6399/0",
        "FIELD_ENCRYPTION_KEYS": "ZGV2LW9ubHktZmVybmV0LWtleS1ub3Qtc2VjcmV0ISE=",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.django_db
def test_pages_carry_a_strict_content_security_policy(client):
    policy = client.get("/admin/login/")["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"


@pytest.mark.django_db
@responses.activate
def test_secrets_never_reach_the_logs(client, account, agent, inbox, caplog, monkeypatch):
    """Webhooks (good and forged), a send that Infobip refuses, and the setup listing, all at DEBUG."""
    monkeypatch.setattr("inbox.outbox.schedule_send", lambda message_id, attempt_id=None: None)
    secrets = [account.api_key, account.webhook_secret]
    caplog.set_level(logging.DEBUG)

    post(client, account, fixture("inbound_text"))
    post(client, account, fixture("inbound_image"), signed=False, headers={"X-Hub-Signature": "forged"})
    contact = Contact.objects.get()
    Conversation.objects.filter(contact=contact).update(last_inbound_at=timezone.now() - timedelta(minutes=5))
    responses.post(
        "https://xyz.api.infobip.com/tiktok/1/messages",
        status=401,
        json={"requestError": {"serviceException": {"messageId": "UNAUTHORIZED", "text": "Invalid login"}}},
    )
    conversation = Conversation.objects.get()
    message = reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="hello")
    send_message.apply(args=[message.pk])
    message.refresh_from_db()
    assert message.status == "failed"  # the refusal went through the logging paths
    assert responses.calls[0].request.headers["Authorization"] == f"App {account.api_key}"

    logged = caplog.text + repr([record.args for record in caplog.records])
    assert "webhook auth failed" in logged
    for secret in secrets:
        assert secret not in logged


@pytest.mark.django_db
def test_webhook_tokens_are_masked_in_request_logs(client, account, caplog):
    """A refused webhook (forged signature: 401) and a near-miss token (404) are logged by django.request with the
    path; the token in the path is masked, so the log is not a list of live webhook URLs."""
    caplog.set_level(logging.DEBUG)
    assert post(client, account, fixture("inbound_text"), signed=False, headers={"X-Hub-Signature": "f"}).status_code
    near_miss = account.webhook_token[:-1] + "x"
    client.post(f"/webhooks/infobip/tiktok/{near_miss}/inbound/", b"{}", content_type="application/json")
    request_records = [r for r in caplog.records if r.name == "django.request"]
    assert len(request_records) == 2
    for record in request_records:
        assert "/webhooks/infobip/tiktok/***/" in record.getMessage()
    logged = caplog.text + repr([record.args for record in caplog.records])
    assert account.webhook_token not in logged and near_miss not in logged


def test_access_logs_of_runserver_and_uvicorn_mask_webhook_tokens(caplog):
    caplog.set_level(logging.INFO)
    path = "/webhooks/infobip/tiktok/SeCrEtToKeN123/inbound/"
    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "POST", path, "1.1", 200)
    logging.getLogger("django.server").info('"%s" %s %s', f"POST {path} HTTP/1.1", "401", "10")
    assert "SeCrEtToKeN123" not in caplog.text + repr([r.args for r in caplog.records])
    assert caplog.text.count("/webhooks/infobip/tiktok/***/inbound/") == 2


def csp_of(response) -> dict[str, str]:
    policy = response["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())


@pytest.mark.django_db
def test_connect_and_img_sources_are_our_origin_and_the_named_media_hosts(client, settings):
    directives = csp_of(client.get("/admin/login/"))
    assert directives["connect-src"] == "'self'"  # no ws:/wss: to any host ('self' covers our own ws/wss)
    assert directives["img-src"].split() == ["'self'", "data:", "blob:", *settings.CSP_IMG_HOSTS]


@pytest.mark.django_db
def test_the_api_docs_page_has_the_same_policy_except_what_redoc_needs(client):
    page, docs = csp_of(client.get("/admin/login/")), csp_of(client.get("/api/docs/"))
    assert docs["script-src"].split() == ["'self'", "'unsafe-inline'"] and docs["worker-src"] == "blob:"
    # Narrower images: ours only (Redoc's hard-coded third-party logo is blocked).
    assert docs["img-src"].split() == ["'self'", "data:"]
    for name in ("connect-src", "object-src", "frame-ancestors", "base-uri", "form-action"):
        assert docs[name] == page[name], name
