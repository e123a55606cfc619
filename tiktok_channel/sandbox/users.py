"""The simulated TikTok user: builds an inbound message event and posts it, signed, as Infobip would."""

from __future__ import annotations

import json
from dataclasses import dataclass

import requests

from tiktok_channel.sandbox import payloads
from tiktok_channel.webhook_auth import WebhookAuth, sign

DEFAULT_SHARE_POST = "https://www.tiktok.com/embed/v2/7300000000000000001"
DEFAULT_IMAGE = "https://picsum.photos/seed/tiktok/640/480.jpg"


@dataclass(frozen=True)
class Delivery:
    """What became of one webhook POST."""

    url: str
    status: int | None  # None when no answer came (connection refused, timeout)
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def post_signed(url: str, auth: WebhookAuth, payload: dict, *, timeout: float = 10.0) -> Delivery:
    """POST `payload` as JSON with the account's webhook credentials (`webhook_auth.sign`)."""
    body = json.dumps(payload, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "infobip-sandbox", **sign(auth, body)}
    try:
        response = requests.post(url, data=body, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        return Delivery(url, None, f"{type(exc).__name__}: {exc}")
    return Delivery(url, response.status_code, "" if response.ok else response.text[:500])


def inbound_content(
    *,
    text: str = "",
    image: str = "",
    share_post: str = "",
    reaction: str = "",
    referral_ad: bool = False,
    tiktok_me: str = "",
    context_id: str = "",
) -> dict:
    """The `message` of an inbound event from the options of `simulate_tiktok_user` (exactly one kind)."""
    chosen = [bool(text) and not tiktok_me, bool(image), bool(share_post), bool(reaction), referral_ad, bool(tiktok_me)]
    if sum(chosen) != 1:
        raise ValueError("give exactly one of text, image, share_post, reaction, referral_ad, tiktok_me")
    if tiktok_me:
        return payloads.referral_short_link_content(tiktok_me, prefilled_message=text)
    if image:
        return payloads.image_content(image)
    if share_post:
        return payloads.share_post_content(share_post)
    if reaction:
        return payloads.reaction_content(reaction, context_id=context_id)
    if referral_ad:
        return payloads.referral_ad_content()
    return payloads.text_content(text, context_id=context_id)


def send_inbound(
    *, url: str, auth: WebhookAuth, user_id: str, business_id: str, content: dict, message_id: str = ""
) -> tuple[dict, Delivery]:
    """Post one inbound message event; returns the payload sent and what became of it."""
    result = payloads.inbound_result(user_id=user_id, business_id=business_id, content=content, message_id=message_id)
    payload = payloads.inbound_event(result)
    return payload, post_signed(url, auth, payload)
