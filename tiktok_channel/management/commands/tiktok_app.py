"""Scripted setup of TikTok's own API: `tiktok_app add ...` prints one JSON object (id, webhook_url, redirect_uri,
connect_url); `tiktok_app list` prints every app and its connections, never a secret or token;
`tiktok_app register-webhook --id N` points the app's DIRECT_MESSAGE webhook at our URL through TikTok's API."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction

from inbox.services import inbox_get_or_create
from tiktok_channel.direct import client
from tiktok_channel.direct.models import TikTokApp


def app_summary(app: TikTokApp) -> dict:
    return {
        "id": app.pk,
        "name": app.name,
        "client_key": app.client_key,
        "inbox": app.inbox.name,
        "api_base_url": app.api_base_url,
        "auth_base_url": app.auth_base_url,
        "webhook_url": app.webhook_url,
        "redirect_uri": TikTokApp.redirect_uri(),
        "connect_url": app.connect_url,
    }


class Command(BaseCommand):
    help = "Add a TikTok app (TikTok API for Business) or list them, as JSON."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.called_from_command_line = False  # bad arguments: one line on stderr, non-zero exit
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, parser_class=CommandParser)
        add = sub.add_parser("add", help="add an app", called_from_command_line=False)
        add.add_argument("--name", required=True)
        add.add_argument("--client-key", required=True)
        add.add_argument("--client-secret", required=True)
        add.add_argument("--api-base-url", default="", help="default: TIKTOK_DIRECT_API_BASE_URL")
        add.add_argument("--auth-base-url", default="", help="default: TIKTOK_DIRECT_AUTH_BASE_URL")
        add.add_argument("--inbox", default="", help="inbox name (created if missing; default: the app name)")
        sub.add_parser("list", help="all apps with their connections, without secrets", called_from_command_line=False)
        register = sub.add_parser(
            "register-webhook",
            help="point the app's DIRECT_MESSAGE webhook at our webhook URL (TikTok's business/webhook/update/)",
            called_from_command_line=False,
        )
        register.add_argument("--id", type=int, required=True, help="the app's id (as `add` printed it)")
        register.add_argument(
            "--event-type",
            choices=["DIRECT_MESSAGE", "COMMENT"],
            default="DIRECT_MESSAGE",
            help="DIRECT_MESSAGE (the inbox's messages) or COMMENT (comments on the account's videos)",
        )

    def handle(self, *args, **options) -> None:
        if options["action"] == "register-webhook":
            app = TikTokApp.objects.filter(pk=options["id"]).first()
            if app is None:
                raise CommandError(f"no TikTok app with id {options['id']}")
            try:
                answer = client.register_webhook(app, event_type=options["event_type"])
            except client.TikTokError as exc:
                raise CommandError(f"TikTok refused the webhook registration: {exc}") from None
            self.stdout.write(json.dumps({"id": app.pk, **answer}))
            return
        if options["action"] == "list":
            apps = TikTokApp.objects.select_related("inbox").prefetch_related("connections")
            rows = [
                {
                    **app_summary(app),
                    "connections": [
                        {"account_id": c.account_id, "display_name": c.display_name, "state": c.state}
                        for c in app.connections.all()
                    ],
                }
                for app in apps
            ]
            self.stdout.write(json.dumps(rows, indent=2))
            return
        name, key, secret = options["name"].strip(), options["client_key"].strip(), options["client_secret"]
        if not name or not key or not secret:
            raise CommandError("--name, --client-key and --client-secret must not be empty")
        urls = {}
        for option in ("api_base_url", "auth_base_url"):
            value = options[option].strip()
            if value:
                try:
                    URLValidator(schemes=["http", "https"])(value)
                except ValidationError:
                    raise CommandError(f"--{option.replace('_', '-')} is not an http(s) URL: {value!r}") from None
                urls[option] = value.rstrip("/")
        try:
            with transaction.atomic():
                inbox = inbox_get_or_create(name=options["inbox"].strip() or name)
                app = TikTokApp.objects.create(name=name, client_key=key, client_secret=secret, inbox=inbox, **urls)
        except IntegrityError:
            raise CommandError(f"an app named {name!r} exists already") from None
        self.stdout.write(json.dumps(app_summary(app)))
