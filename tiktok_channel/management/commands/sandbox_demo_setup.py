"""`make run`'s demo: an Infobip account and TikTok sender pointing at the local sandbox (DEBUG only), and a direct
TikTok app (TikTok API for Business) pointing at the local TikTok sandbox.

Only the API key and the sender are given: the sandbox, once listening, sets the account up through its
Subscriptions Management API (`infobip_sandbox --set-up-account`, `tiktok_channel.setup`), as Set up in admin does.
The TikTok sandbox gets the direct app's key, secret, redirect URI and webhook URL from a file this command writes
(`--tiktok-sandbox-config`), and, once listening, connects its demo account through its own consent form and token
endpoint (`tiktok_sandbox --connect-app`), as Connect in admin does.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from inbox.services import inbox_get_or_create
from tiktok_channel.direct.models import TikTokApp
from tiktok_channel.management.commands.tiktok_sandbox import DEMO_ACCOUNT as DIRECT_DEMO_ACCOUNT
from tiktok_channel.models import InfobipAccount
from tiktok_channel.services import account_create

DEMO_ACCOUNT = "Demo (Infobip sandbox)"
DEMO_SENDER = "demo-business"
DEMO_INBOX = "Demo"
# Exit status telling scripts/run.py that a real account is connected, so the sandbox stays off.
REAL_ACCOUNT_EXIT = 3
DIRECT_APP = "Demo (TikTok direct)"
DIRECT_INBOX = "Demo (TikTok direct)"
DIRECT_CLIENT_KEY = "demo-tiktok-app"


class Command(BaseCommand):
    help = "Point a demo Infobip account at the sandbox, unless a real account is connected (DEBUG only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sandbox-url", required=True)
        parser.add_argument("--tiktok-sandbox-url", default="", help="the TikTok sandbox: set up the direct demo")
        parser.add_argument("--tiktok-sandbox-config", default="", help="where to write the TikTok sandbox's apps")

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("sandbox_demo_setup only runs with DEBUG on")
        sandbox_url = options["sandbox_url"].rstrip("/")
        if InfobipAccount.objects.filter(active=True).exclude(name=DEMO_ACCOUNT).exists():
            self.stdout.write("  A real Infobip account is connected: the sandbox demo is off.")
            raise SystemExit(REAL_ACCOUNT_EXIT)
        with transaction.atomic():
            account = InfobipAccount.objects.select_for_update().filter(name=DEMO_ACCOUNT).first()
            if account is None:
                account = account_create(
                    name=DEMO_ACCOUNT,
                    base_url=sandbox_url,
                    api_key=secrets.token_urlsafe(24),
                    sender_ids=[DEMO_SENDER],
                    inbox_name=DEMO_INBOX,
                    secret_from_setup=True,
                )
            # The sandbox's port and the web server's may change from one run to the next. The webhook base is
            # kept on the account, so simulate_tiktok_user in another shell posts where this run listens.
            changed = {"base_url": sandbox_url, "webhook_base_url": settings.PUBLIC_BASE_URL}
            changed = {name: value for name, value in changed.items() if getattr(account, name) != value}
            if changed:
                for name, value in changed.items():
                    setattr(account, name, value)
                account.save(update_fields=list(changed))
        self.stdout.write(
            f"  Demo: TikTok sender '{DEMO_SENDER}' (inbox '{DEMO_INBOX}') talks to the Infobip sandbox at "
            f"{sandbox_url}; simulated TikTok users write in now and then.\n"
            f"  Webhook: {account.webhook_url}"
        )
        if options["tiktok_sandbox_url"] and options["tiktok_sandbox_config"]:
            self._direct(options["tiktok_sandbox_url"].rstrip("/"), Path(options["tiktok_sandbox_config"]))

    def _direct(self, tiktok_url: str, config: Path) -> None:
        """The direct demo app (kept across runs, its hosts moved to this run's sandbox) and the sandbox's config."""
        with transaction.atomic():
            app = TikTokApp.objects.select_for_update().filter(name=DIRECT_APP).first()
            if app is None:
                inbox = inbox_get_or_create(name=DIRECT_INBOX)
                # The demo's agents answer both demo inboxes (set once: an admin may change it later).
                inbox.members.add(*inbox_get_or_create(name=DEMO_INBOX).members.all())
                app = TikTokApp.objects.create(
                    name=DIRECT_APP,
                    client_key=DIRECT_CLIENT_KEY,
                    client_secret=secrets.token_urlsafe(24),
                    api_base_url=tiktok_url,
                    auth_base_url=tiktok_url,
                    inbox=inbox,
                )
            elif (app.api_base_url, app.auth_base_url) != (tiktok_url, tiktok_url):
                app.api_base_url = app.auth_base_url = tiktok_url
                app.save(update_fields=["api_base_url", "auth_base_url"])
        sandbox_config = {
            "apps": [
                {
                    "client_key": app.client_key,
                    "client_secret": app.client_secret,
                    "name": app.name,
                    "redirect_uri": TikTokApp.redirect_uri(),
                    "webhook_url": app.webhook_url,
                }
            ],
            "accounts": [DIRECT_DEMO_ACCOUNT],
        }
        # The app secret in plain text, for the local sandbox only: readable by this user alone.
        config.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(sandbox_config, file)
        self.stdout.write(
            f"  Demo: TikTok account '{DIRECT_DEMO_ACCOUNT['open_id']}' (inbox '{DIRECT_INBOX}') connects directly "
            f"to the TikTok sandbox at {tiktok_url}; simulated users write in there too."
        )
