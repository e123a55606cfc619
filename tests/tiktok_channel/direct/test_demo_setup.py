"""`make run`'s direct TikTok demo: `sandbox_demo_setup --tiktok-sandbox-url/--tiktok-sandbox-config` creates the app,
its inbox and the sandbox's config file; `tiktok_sandbox --connect-app` connects the demo account through the
sandbox's consent form and token endpoint."""

from __future__ import annotations

import io
import json
import stat

import pytest
from django.core.management import call_command

from inbox.services import inbox_get_or_create
from tiktok_channel.direct.models import TikTokApp, TikTokConnection
from tiktok_channel.direct.sandbox.behaviour import Behaviour
from tiktok_channel.direct.sandbox.server import SandboxServer
from tiktok_channel.direct.sandbox.state import Sandbox
from tiktok_channel.management.commands.tiktok_sandbox import Command, configure

pytestmark = pytest.mark.django_db(transaction=True)


def test_demo_app_is_set_up_and_connected_through_the_sandbox(tmp_path, settings, django_user_model):
    settings.DEBUG = True
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:18800"
    agent = django_user_model.objects.create_user("agent", password="agent-pass-123")
    inbox_get_or_create(name="Demo").members.add(agent)
    server = SandboxServer(Sandbox(Behaviour(send_read=False)))  # a port of its own; apps come from the file
    config = tmp_path / "tiktok-sandbox.json"
    call_command(
        "sandbox_demo_setup",
        "--sandbox-url",
        "http://127.0.0.1:9",
        "--tiktok-sandbox-url",
        server.url,
        "--tiktok-sandbox-config",
        str(config),
        stdout=io.StringIO(),
    )
    app = TikTokApp.objects.get(name="Demo (TikTok direct)")
    assert app.inbox.name == "Demo (TikTok direct)" and list(app.inbox.members.all()) == [agent]
    assert (app.api_base_url, app.auth_base_url) == (server.url, server.url)
    assert stat.S_IMODE(config.stat().st_mode) == 0o600  # it holds the app secret
    (registered,) = json.loads(config.read_text())["apps"]
    assert registered == {
        "client_key": app.client_key,
        "client_secret": app.client_secret,
        "name": app.name,
        "redirect_uri": "http://127.0.0.1:18800/tiktok/oauth/callback/",
        "webhook_url": app.webhook_url,
    }

    configure(server.sandbox, {"config": str(config)})
    server.start()
    try:
        out = io.StringIO()
        command = Command(stdout=out, stderr=io.StringIO())
        command._connect(server, "Demo (TikTok direct)")
        assert (
            "Connected 'Demo (TikTok direct)' to TikTok account Demo Shop through the sandbox's OAuth" in out.getvalue()
        )
        connection = TikTokConnection.objects.get(app=app)
        assert connection.state == "connected" and connection.account_id == "demo-tt-business"
        first_token = connection.access_token

        # The next run: the app is kept (same secret), and connecting again replaces the tokens.
        call_command(
            "sandbox_demo_setup",
            "--sandbox-url",
            "http://127.0.0.1:9",
            "--tiktok-sandbox-url",
            server.url,
            "--tiktok-sandbox-config",
            str(config),
            stdout=io.StringIO(),
        )
        assert TikTokApp.objects.get().client_secret == app.client_secret
        command._connect(server, "Demo (TikTok direct)")
        connection.refresh_from_db()
        assert connection.access_token != first_token and TikTokConnection.objects.count() == 1

        err = io.StringIO()
        Command(stdout=io.StringIO(), stderr=err)._connect(server, "No such app")
        assert "no active TikTok app named 'No such app'" in err.getvalue()
    finally:
        server.stop()
