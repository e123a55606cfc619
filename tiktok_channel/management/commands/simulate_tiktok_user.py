"""`manage.py simulate_tiktok_user --sender BUSINESS_ID --user USER_ID --text "Hi"`: post a signed inbound event."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tiktok_channel.models import TikTokSender
from tiktok_channel.sandbox.users import DEFAULT_IMAGE, DEFAULT_SHARE_POST, inbound_content, send_inbound


class Command(BaseCommand):
    help = "Post a TikTok user's inbound message to the sender's webhook, signed as Infobip would."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sender", required=True, help="the TikTok business account id (a connected sender)")
        parser.add_argument("--user", required=True, help="the TikTok user id writing in")
        kind = parser.add_mutually_exclusive_group(required=True)
        kind.add_argument("--text", help="a TEXT message (with --tiktok-me: the prefilled message)")
        kind.add_argument("--image", nargs="?", const=DEFAULT_IMAGE, help="an IMAGE message (URL)")
        kind.add_argument("--share-post", nargs="?", const=DEFAULT_SHARE_POST, help="a SHARE_POST (embed URL)")
        kind.add_argument("--reaction", nargs="?", const="👍", help="a REACTION (emoji); use --context for its target")
        kind.add_argument("--referral-ad", action="store_true", help="a REFERRAL_AD (conversation from an ad)")
        kind.add_argument("--tiktok-me", metavar="REF", help="a REFERRAL_SHORT_LINK (from a TikTok.me link)")
        parser.add_argument("--prefilled", default="", help="with --tiktok-me: the prefilled message")
        parser.add_argument("--context", default="", help="message id replied or reacted to (context.id)")
        parser.add_argument("--message-id", default="", help="the inbound messageId (default: a new UUID)")
        parser.add_argument("--webhook-url", default="", help="post here instead of the account's webhook URL")

    def handle(self, *args, **options) -> None:
        sender = (
            TikTokSender.objects.select_related("account")
            .filter(business_account_id=options["sender"], active=True, account__active=True)
            .first()
        )
        if sender is None:
            raise CommandError(f"no active sender {options['sender']} (see manage.py infobip_account list)")
        account = sender.account
        content = inbound_content(
            text=options["text"] or options["prefilled"],
            image=options["image"] or "",
            share_post=options["share_post"] or "",
            reaction=options["reaction"] or "",
            referral_ad=options["referral_ad"],
            tiktok_me=options["tiktok_me"] or "",
            context_id=options["context"],
        )
        url = options["webhook_url"] or account.webhook_url
        payload, delivery = send_inbound(
            url=url,
            auth=account.webhook_auth_settings(),
            user_id=options["user"],
            business_id=options["sender"],
            content=content,
            message_id=options["message_id"],
        )
        result = {"url": url, "messageId": payload["results"][0]["messageId"], "status": delivery.status}
        if not delivery.ok:
            raise CommandError(f"webhook answered {delivery.status}: {delivery.error} {json.dumps(result)}")
        self.stdout.write(json.dumps(result))
