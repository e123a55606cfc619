"""Scripted setup: `infobip_account add ...` and `infobip_account list`, JSON on stdout."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inbox.errors import ApplicationError
from tiktok_channel.models import InfobipAccount
from tiktok_channel.services import account_create, account_summary


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

    def handle(self, *args, **options) -> None:
        if options["action"] == "list":
            accounts = InfobipAccount.objects.prefetch_related("senders__inbox")
            self.stdout.write(json.dumps([account_summary(a) for a in accounts], indent=2))
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
