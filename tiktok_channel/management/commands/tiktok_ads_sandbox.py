"""`manage.py tiktok_ads_sandbox --port PORT --app-id ID --secret S ...`: run the Marketing API sandbox until Ctrl-C."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tiktok_channel.ads.sandbox.behaviour import AdsBehaviour
from tiktok_channel.ads.sandbox.server import AdsSandboxServer
from tiktok_channel.ads.sandbox.state import AdsSandbox
from tiktok_channel.management.sandbox import listening, serve_until_stopped

DEMO_ADVERTISER = "7012345678901234567:Demo Shop ads"


def _advertiser(value: str) -> dict:
    advertiser_id, _, name = value.partition(":")
    return {"advertiser_id": advertiser_id, "advertiser_name": name or f"Advertiser {advertiser_id}"}


class Command(BaseCommand):
    help = "Run a local stand-in for TikTok's Marketing API: advertiser OAuth, campaigns, reports, audiences."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8003)
        parser.add_argument("--app-id", action="append", default=[], help="an app's app_id (repeatable)")
        parser.add_argument("--secret", action="append", default=[], help="its secret (one per --app-id)")
        parser.add_argument("--redirect-uri", action="append", default=[], help="its OAuth redirect URI (per app)")
        parser.add_argument("--review-webhook-url", action="append", default=[], help="its review webhook URL")
        parser.add_argument(
            "--advertiser",
            action="append",
            default=[],
            metavar="ADVERTISER_ID[:NAME]",
            help=f"an ad account (repeatable; default {DEMO_ADVERTISER})",
        )
        AdsBehaviour.add_arguments(parser)  # one flag per switch (the sandboxes' shared Switches)

    def handle(self, *args, **options) -> None:
        try:
            behaviour = AdsBehaviour.from_options(options)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if len(options["app_id"]) != len(options["secret"]):
            raise CommandError("give one --secret for every --app-id")
        sandbox = AdsSandbox(behaviour)
        host, port = options["host"], options["port"]

        def make_server() -> AdsSandboxServer:
            for n, app_id in enumerate(options["app_id"]):
                app = {"app_id": app_id, "secret": options["secret"][n]}
                for flag in ("redirect_uri", "review_webhook_url"):
                    if n < len(options[flag]) and options[flag][n]:
                        app[flag] = options[flag][n]
                sandbox.add_app(app)
            for value in options["advertiser"] or [DEMO_ADVERTISER]:
                sandbox.add_advertiser(_advertiser(value))
            return AdsSandboxServer(sandbox, host, port)

        server = listening(sandbox, make_server, host, port)

        def lines() -> list[str]:
            return [
                *("app " + json.dumps(app.public()) for app in sandbox.apps.values()),
                *("advertiser " + json.dumps(advertiser.public()) for advertiser in sandbox.advertisers.values()),
            ]

        serve_until_stopped(self, server, "TikTok ads sandbox", lines=lines)
