"""Scripted setup: `infobip_account add ...`, `list`, `setup ID`, `teardown ID`, `test-webhook ID`; JSON on stdout.

`setup` exits 0 when complete, 2 when partial (finish the step it names in Infobip's portal), 1 when it failed."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inbox.errors import ApplicationError
from tiktok_channel.models import InfobipAccount
from tiktok_channel.services import account_create, account_summary
from tiktok_channel.setup import account_setup, account_teardown, webhook_test

PARTIAL_EXIT = 2


class Command(BaseCommand):
    help = "Connect Infobip accounts and TikTok senders (add), or list them as JSON (list)."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Bad arguments become a CommandError: one line on stderr, non-zero exit.
        parser.called_from_command_line = False
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, parser_class=CommandParser)
        add = sub.add_parser("add", help="connect an account", called_from_command_line=False)
        add.add_argument("--name", required=True)
        add.add_argument("--base-url", required=True)
        add.add_argument("--api-key", required=True)
        add.add_argument("--sender", action="append", required=True, help="TikTok business account id")
        add.add_argument("--auth", choices=InfobipAccount.AuthMode.values, required=True)
        add.add_argument("--hmac-algorithm", choices=InfobipAccount.HmacAlgorithm.values, default="HMAC_SHA_256")
        add.add_argument("--signature-header", default="")
        add.add_argument("--signature-encoding", choices=InfobipAccount.SignatureEncoding.values, default="hex")
        add.add_argument("--signature-prefix", default="")
        add.add_argument("--secret", default="")
        add.add_argument("--username", default="")
        add.add_argument("--password", default="")
        add.add_argument("--inbox", default="", help="inbox name (default: the account name)")
        sub.add_parser("list", help="all accounts, without secrets", called_from_command_line=False)
        setup = sub.add_parser(
            "setup",
            help="create or repair the webhook security, profile and subscription in Infobip",
            called_from_command_line=False,
        )
        setup.add_argument("id", type=int)
        setup.add_argument("--channel", default="", help="Infobip's subscription channel (default: the account's)")
        for name, text in (("teardown", "delete in Infobip what setup created"), ("test-webhook", "test the webhook")):
            sub.add_parser(name, help=text, called_from_command_line=False).add_argument("id", type=int)

    def handle(self, *args, **options) -> None:
        if options["action"] == "list":
            accounts = InfobipAccount.objects.prefetch_related("senders__inbox")
            self.stdout.write(json.dumps([account_summary(a) for a in accounts], indent=2))
            return
        if options["action"] in ("setup", "teardown", "test-webhook"):
            self._remote(options)
            return
        try:
            account = account_create(
                name=options["name"],
                base_url=options["base_url"],
                api_key=options["api_key"],
                sender_ids=options["sender"],
                auth=options["auth"],
                hmac_algorithm=options["hmac_algorithm"],
                signature_header=options["signature_header"],
                signature_encoding=options["signature_encoding"],
                signature_prefix=options["signature_prefix"],
                secret=options["secret"],
                username=options["username"],
                password=options["password"],
                inbox_name=options["inbox"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(json.dumps(account_summary(account)))

    def _remote(self, options: dict) -> None:
        if not InfobipAccount.objects.filter(pk=options["id"]).exists():
            raise CommandError(f"no Infobip account {options['id']} (see infobip_account list)")
        if options["action"] == "test-webhook":
            outcome = webhook_test(options["id"])
            self.stdout.write(json.dumps(outcome))
            if not outcome["ok"]:
                raise CommandError("the webhook test failed")
            return
        try:
            if options["action"] == "setup":
                report = account_setup(options["id"], channel=options["channel"] or None)
            else:
                report = account_teardown(options["id"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(json.dumps(report.as_dict()))
        if report.state == InfobipAccount.SetupState.FAILED:
            raise CommandError(report.message)
        if report.state == InfobipAccount.SetupState.PARTIAL:
            raise CommandError(report.message, returncode=PARTIAL_EXIT)
