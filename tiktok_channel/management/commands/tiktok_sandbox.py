"""`manage.py tiktok_sandbox --port PORT --client-key K --client-secret S ...`: run the TikTok sandbox until Ctrl-C."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tiktok_channel.direct.sandbox.behaviour import Behaviour
from tiktok_channel.direct.sandbox.server import SandboxServer
from tiktok_channel.direct.sandbox.state import Sandbox
from tiktok_channel.management.sandbox import listening, serve_until_stopped
from tiktok_channel.sandbox.switches import interval

DEMO_ACCOUNT = {"open_id": "demo-tt-business", "username": "demo_shop", "display_name": "Demo Shop"}


def _account(value: str) -> dict:
    open_id, _, rest = value.partition(":")
    username, _, display_name = rest.partition(":")
    return {"open_id": open_id, "username": username, "display_name": display_name}


def configure(sandbox: Sandbox, options: dict) -> None:
    """Register the apps and accounts of `--config FILE` and the repeatable flags (raises CommandError)."""
    config: dict = {}
    if options.get("config"):
        try:
            config = json.loads(Path(options["config"]).read_text())
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read {options['config']}: {exc}") from None
        if not isinstance(config, dict):
            raise CommandError('the config file must hold {"apps": [...], "accounts": [...]}')
    apps = list(config.get("apps") or [])
    keys, secrets_ = options.get("client_key") or [], options.get("client_secret") or []
    if len(keys) != len(secrets_):
        raise CommandError("give one --client-secret for every --client-key")
    for n, key in enumerate(keys):
        app = {"client_key": key, "client_secret": secrets_[n]}
        for flag, name in (("redirect_uri", "redirect_uri"), ("webhook_url", "webhook_url"), ("app_name", "name")):
            values = options.get(flag) or []
            if n < len(values) and values[n]:
                app[name] = values[n]
        apps.append(app)
    accounts = list(config.get("accounts") or []) + [_account(a) for a in options.get("account") or []]
    try:
        for app in apps:
            sandbox.add_app(app)
        for account in accounts or [DEMO_ACCOUNT]:
            sandbox.add_account(account)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


class Command(BaseCommand):
    help = "Run a local stand-in for TikTok's OAuth, Business Messaging API and webhooks (see the README)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8002)
        parser.add_argument("--config", help='a JSON file: {"apps": [{"client_key", ...}], "accounts": [...]}')
        parser.add_argument("--client-key", action="append", help="an app's client key (repeatable)")
        parser.add_argument("--client-secret", action="append", help="its secret (one per --client-key)")
        parser.add_argument("--redirect-uri", action="append", help="its OAuth redirect URI (one per app)")
        parser.add_argument("--webhook-url", action="append", help="its DIRECT_MESSAGE webhook URL (one per app)")
        parser.add_argument("--app-name", action="append", help="its name on the consent page (one per app)")
        parser.add_argument(
            "--account",
            action="append",
            metavar="OPEN_ID[:USERNAME[:DISPLAY NAME]]",
            help=f"a business account (repeatable; default {DEMO_ACCOUNT['open_id']})",
        )
        parser.add_argument(
            "--chatter-account",
            action="append",
            default=[],
            help="demo: simulated users write to this account (open_id) now and then, once it is connected",
        )
        parser.add_argument("--chatter-every", type=interval, default=(30.0, 60.0), help="seconds, e.g. 30-60")
        parser.add_argument(
            "--connect-app",
            action="append",
            default=[name for name in os.environ.get("TIKTOK_SANDBOX_CONNECT_APPS", "").split(",") if name],
            help="demo: once listening, connect the first sandbox account to this TikTok app of ours (by name) "
            "through the sandbox's consent form and token endpoint, as Connect in admin does "
            "(repeatable; default: $TIKTOK_SANDBOX_CONNECT_APPS, comma-separated)",
        )
        Behaviour.add_arguments(parser)

    def handle(self, *args, **options) -> None:
        try:
            behaviour = Behaviour.from_options(options)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        sandbox = Sandbox(behaviour)
        host, port = options["host"], options["port"]

        def make_server() -> SandboxServer:
            configure(sandbox, options)
            return SandboxServer(sandbox, host, port)

        server = listening(sandbox, make_server, host, port)
        for open_id in options["chatter_account"]:
            sandbox.chatter(open_id, every_s=options["chatter_every"])
            low, high = options["chatter_every"]
            sandbox.comment_chatter(open_id, every_s=(low * 1.5, high * 1.5))

        def connect_apps() -> None:
            # Its grants live in memory: each start connects the demo app again (a new consent replaces old
            # tokens), before "listening" is printed, so whoever waits for that line (make run's box) finds the
            # account connected.
            for name in options["connect_app"]:
                self._connect(server, name)

        def lines() -> list[str]:
            return [
                *("app " + json.dumps(app.public()) for app in sandbox.apps.values()),
                *("account " + json.dumps(account.public()) for account in sandbox.accounts.values()),
            ]

        serve_until_stopped(self, server, "TikTok sandbox", lines=lines, ready=connect_apps)

    def _connect(self, server: SandboxServer, name: str) -> None:
        """The consent round trip without a browser: our authorize URL, the consent form answered "Authorize" with
        every scope, the code from the redirect exchanged by our own code path (`tokens.connect`)."""
        from django.db import connection as db

        from tiktok_channel.direct import tokens
        from tiktok_channel.direct.models import TikTokApp
        from tiktok_channel.direct.oauth import authorize_url

        app = TikTokApp.objects.filter(name=name, active=True).first()
        if app is None:
            self.stderr.write(f"no active TikTok app named {name!r} to connect")
            return
        try:
            page = requests.get(authorize_url(app, "demo"), timeout=10)
            form = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
            account = re.search(r'name="account" value="([^"]+)"', page.text)
            if page.status_code != 200 or not account:
                raise ValueError(f"the consent page answered {page.status_code}")
            fields = {k: v.replace("&amp;", "&") for k, v in form.items()}
            data = [*fields.items(), ("decision", "authorize"), ("account", account[1])]
            data += [("scope", scope) for scope in fields["asked"].split(",")]
            answer = requests.post(page.url.split("?")[0], data=data, allow_redirects=False, timeout=10)
            query = parse_qs(urlsplit(answer.headers.get("Location", "")).query)
            code = (query.get("code") or query.get("auth_code") or [""])[0]
            if not code:
                raise ValueError(f"the consent answered {answer.status_code} without a code")
            connected = tokens.connect(app=app, code=code, user=None)
        except (requests.RequestException, ValueError, tokens.ConnectError) as exc:
            self.stderr.write(f"could not connect {name!r}: {exc}")
            return
        finally:
            db.close()
        try:  # comments on the account's videos come through the app's COMMENT webhook (§6.4)
            from tiktok_channel.direct import client as tiktok_client

            tiktok_client.register_webhook(app, event_type="COMMENT")
        except tiktok_client.TikTokError as exc:
            self.stderr.write(f"could not register the COMMENT webhook of {name!r}: {exc}")
        self.stdout.write(f"Connected {name!r} to TikTok account {connected} through the sandbox's OAuth")
        self.stdout.flush()
