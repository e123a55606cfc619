"""`manage.py tiktok_sandbox_user --account OPEN_ID --user U --text "Hi"`: a simulated user of a running TikTok
sandbox writes in (or, with --from-business, the business writes from the TikTok app)."""

from __future__ import annotations

import json

import requests
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tiktok_channel.direct.sandbox.state import DEFAULT_SHARE_POST, OTHER_KINDS


class Command(BaseCommand):
    help = "Have a simulated TikTok user write to a business account through a running tiktok_sandbox."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8002", help="the running sandbox")
        parser.add_argument("--account", required=True, help="the business account's open_id")
        parser.add_argument("--user", required=True, help="the TikTok user's id")
        parser.add_argument("--username", default="", help="the user's @name (default: the id)")
        kind = parser.add_mutually_exclusive_group(required=True)
        kind.add_argument("--text")
        kind.add_argument("--image", action="store_true", help="an image (a small PNG, downloadable)")
        kind.add_argument("--share-post", nargs="?", const=DEFAULT_SHARE_POST, help="a shared post (embed URL)")
        kind.add_argument("--other", choices=sorted(OTHER_KINDS), help="another kind (a sticker, ...)")
        parser.add_argument("--reply-to", default="", help="the message id quoted")
        parser.add_argument("--message-id", default="")
        parser.add_argument("--from-business", action="store_true", help="the business writes from the TikTok app")

    def handle(self, *args, **options) -> None:
        body = {"account": options["account"], "user": options["user"]}
        for name in ("username", "text", "share_post", "other", "reply_to", "message_id"):
            if options[name]:
                body[name] = options[name]
        if options["image"]:
            body["image"] = True
        path = "/sandbox/business_message" if options["from_business"] else "/sandbox/inbound"
        try:
            response = requests.post(options["url"].rstrip("/") + path, json=body, timeout=30)
        except requests.RequestException as exc:
            raise CommandError(f"the sandbox at {options['url']} did not answer: {exc}") from None
        if response.status_code != 200:
            raise CommandError(f"the sandbox refused: {response.text}")
        answer = response.json()
        self.stdout.write(json.dumps(answer))
        failed = [d for d in answer["deliveries"] if d["status"] != 200]
        if failed:
            raise CommandError(f"the webhook answered {failed[0]['status']}: {failed[0]['error']}")
