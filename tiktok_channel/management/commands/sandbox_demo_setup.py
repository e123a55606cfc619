"""`make run`'s demo: an Infobip account and TikTok sender pointing at the local sandbox (DEBUG only).

Only the API key and the sender are given: the sandbox, once listening, sets the account up through its
Subscriptions Management API (`infobip_sandbox --set-up-account`, `tiktok_channel.setup`), as Set up in admin does.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from tiktok_channel.models import InfobipAccount
from tiktok_channel.services import account_create

DEMO_ACCOUNT = "Demo (Infobip sandbox)"
DEMO_SENDER = "demo-business"
DEMO_INBOX = "Demo"
# Exit status telling scripts/run.py that a real account is connected, so the sandbox stays off.
REAL_ACCOUNT_EXIT = 3


class Command(BaseCommand):
    help = "Point a demo Infobip account at the sandbox, unless a real account is connected (DEBUG only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sandbox-url", required=True)

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
