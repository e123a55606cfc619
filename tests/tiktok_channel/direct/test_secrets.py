"""The app secret and the tokens never reach the logs, whatever happens (connect, refresh, refusal, webhooks)."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from config.log_filters import mask_webhook_tokens
from inbox.services import reply_queue
from inbox.tasks import send_message

from .conftest import (
    PROFILE_URL,
    REFRESH_URL,
    SECRET,
    SEND_URL,
    TOKEN_URL,
    envelope,
    post_webhook,
    received,
    token_answer,
    webhook_body,
)

pytestmark = pytest.mark.django_db


@responses.activate
def test_no_secret_or_token_is_logged(client, app, conversation, agent, django_user_model, caplog):
    caplog.set_level(logging.DEBUG)
    staff = django_user_model.objects.create_user("boss", password="boss-pass-123", is_staff=True, is_superuser=True)
    client.force_login(staff)
    responses.post(TOKEN_URL, json=token_answer(access="act.SECRET-A", refresh="rft.SECRET-R"))
    responses.get(PROFILE_URL, json=envelope({"display_name": "Shop"}))
    location = client.get(f"/tiktok/apps/{app.pk}/connect/")["Location"]
    state = parse_qs(urlsplit(location).query)["state"][0]
    client.get("/tiktok/oauth/callback/", {"code": "code-SECRET-C", "state": state})

    responses.post(SEND_URL, json=envelope(code=40105, message="invalid access token"))
    responses.post(REFRESH_URL, json=envelope(code=40107, message="invalid refresh token"))
    reply = reply_queue(conversation_id=conversation.pk, author=agent, type="text", text="hi")
    send_message.apply(args=[reply.pk])
    post_webhook(client, app, webhook_body("im_receive_msg", received()), secret="forged")
    post_webhook(client, app, webhook_body("im_receive_msg", received()))

    logged = caplog.text + repr([record.args for record in caplog.records])
    for secret in (SECRET, "act.SECRET-A", "rft.SECRET-R", "act.1", "rft.1"):
        assert secret not in logged, secret
    assert "needs re-authorization" in logged  # the refusal itself is logged


def test_the_per_app_webhook_token_is_masked_in_access_logs(app):
    line = f'"POST /webhooks/tiktok/{app.webhook_path_token}/ HTTP/1.1" 200'
    assert app.webhook_path_token not in mask_webhook_tokens(line)
    assert "/webhooks/tiktok/***/" in mask_webhook_tokens(line)
