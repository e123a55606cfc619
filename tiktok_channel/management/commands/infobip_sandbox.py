"""`manage.py infobip_sandbox --port PORT`: run the Infobip sandbox until Ctrl-C."""

from __future__ import annotations

import json
import os

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tiktok_channel.management.sandbox import listening, serve_until_stopped
from tiktok_channel.sandbox.accounts import DatabaseAccounts
from tiktok_channel.sandbox.behaviour import Behaviour
from tiktok_channel.sandbox.server import Sandbox, SandboxServer
from tiktok_channel.sandbox.switches import interval


class Command(BaseCommand):
    help = "Run a local stand-in for Infobip's TikTok API (accounts come from this project's database)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8001)
        Behaviour.add_arguments(parser)
        parser.add_argument(
            "--chatter-sender",
            action="append",
            default=[],
            help="demo: simulated users write to this business account id now and then (repeatable)",
        )
        parser.add_argument("--chatter-every", type=interval, default=(30.0, 60.0), help="seconds, e.g. 30-60")
        parser.add_argument(
            "--set-up-account",
            action="append",
            default=[name for name in os.environ.get("SANDBOX_SET_UP_ACCOUNTS", "").split(",") if name],
            help="once listening, set this account (by name) up through the sandbox's Subscriptions API, as Set up "
            "in admin does (repeatable; default: $SANDBOX_SET_UP_ACCOUNTS, comma-separated)",
        )

    def handle(self, *args, **options) -> None:
        try:
            behaviour = Behaviour.from_options(options)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        sandbox = Sandbox(DatabaseAccounts(), behaviour)
        host, port = options["host"], options["port"]
        server = listening(sandbox, lambda: SandboxServer(sandbox, host, port), host, port)

        def then() -> None:
            # Its subscriptions live in memory: each start sets the accounts up again (the setup repairs what is
            # missing).
            for name in options["set_up_account"]:
                self._set_up(name)
            for sender in options["chatter_sender"]:
                sandbox.chatter(sender, every_s=options["chatter_every"])

        lines = ["behaviour " + json.dumps(behaviour.as_dict())]
        serve_until_stopped(self, server, "Infobip sandbox", lines=lambda: lines, then=then)

    def _set_up(self, name: str) -> None:
        from django.db import connection

        from tiktok_channel.models import InfobipAccount
        from tiktok_channel.setup import account_setup

        account = InfobipAccount.objects.filter(name=name, active=True).first()
        if account is None:
            self.stderr.write(f"no active Infobip account named {name!r} to set up")
            return
        report = account_setup(account.pk)
        connection.close()
        self.stdout.write(f"Set up {name!r} through the Subscriptions API: {report.state}. {report.message}")
        self.stdout.flush()
