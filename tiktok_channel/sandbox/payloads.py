"""Infobip-shaped payloads, as the vendored spec describes them: one home for the sandbox, tests and benchmarks.

Inbound message events, delivery and seen reports (the spec's `webhooks`), the send API's per-message status
and its error body. Every builder returns plain dicts ready for `json.dumps`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

INTEGRATION_TYPE = "TIKTOK"
PRICE = {"pricePerMessage": 0, "currency": "EUR"}

STATUS_PENDING_ACCEPTED = {
    "groupId": 1,
    "groupName": "PENDING",
    "id": 26,
    "name": "PENDING_ACCEPTED",
    "description": "Message sent to next instance",
}
STATUS_DELIVERED = {
    "groupId": 3,
    "groupName": "DELIVERED",
    "id": 5,
    "name": "DELIVERED_TO_HANDSET",
    "description": "Message delivered to handset",
}
STATUS_REJECTED_DUPLICATE = {
    "groupId": 5,
    "groupName": "REJECTED",
    "id": 23,
    "name": "REJECTED_DUPLICATE_MESSAGE_ID",
    "description": "Rejected due to a duplicate message ID",
}
# A message refused in the send's own answer (the `refuse_*` switches): Infobip's status for a destination it
# will not send to.
STATUS_REJECTED_DESTINATION = {
    "groupId": 5,
    "groupName": "REJECTED",
    "id": 52,
    "name": "REJECTED_DESTINATION",
    "description": "Invalid destination address.",
    "action": "Check to parameter.",
}
NO_ERROR = {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR", "description": "No Error", "permanent": False}

# The failures the sandbox can produce, by final status group. The spec's MessageErrorGroup has no chat group,
# so chat errors (7xxx) are filed under OPERATOR_ERRORS (groupId 3), the group Infobip's channel errors use.
FAILURES: dict[str, tuple[dict, dict]] = {
    "UNDELIVERABLE": (
        {
            "groupId": 2,
            "groupName": "UNDELIVERABLE",
            "id": 9,
            "name": "UNDELIVERABLE_NOT_DELIVERED",
            "description": "Message sent not delivered",
        },
        {
            "groupId": 3,
            "groupName": "OPERATOR_ERRORS",
            "id": 7017,
            "name": "EC_TOO_MANY_REQUESTS",
            "description": "Too many requests",
            "permanent": False,
        },
    ),
    "EXPIRED": (
        {"groupId": 4, "groupName": "EXPIRED", "id": 15, "name": "EXPIRED_EXPIRED", "description": "Message expired"},
        {
            "groupId": 1,
            "groupName": "HANDSET_ERRORS",
            "id": 27,
            "name": "EC_ABSENT_SUBSCRIBER",
            "description": "Absent Subscriber",
            "permanent": False,
        },
    ),
    "REJECTED": (
        {
            "groupId": 5,
            "groupName": "REJECTED",
            "id": 6,
            "name": "REJECTED_NETWORK",
            "description": "Network is forbidden",
        },
        {
            "groupId": 3,
            "groupName": "OPERATOR_ERRORS",
            "id": 7010,
            "name": "EC_NO_SESSION",
            "description": "The conversation window is closed or was never opened",
            "permanent": True,
        },
    ),
}


def infobip_time(moment: datetime | None = None) -> str:
    """Infobip's timestamp format: `2019-11-09T16:00:00.000+0000` (UTC, milliseconds)."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def new_id() -> str:
    return str(uuid.uuid4())


def api_error(error_code: str, description: str, action: str, violations: list[dict] | None = None) -> dict:
    """The spec's ApiError body (send API errors)."""
    return {
        "errorCode": error_code,
        "description": description,
        "action": action,
        "violations": violations or [],
        "resources": [],
    }


# --- inbound messages (TikTok user -> business) ---------------------------------------------------------------


def text_content(text: str, *, context_id: str = "") -> dict:
    content: dict[str, Any] = {"type": "TEXT", "text": text}
    if context_id:
        content["context"] = {"id": context_id}
    return content


def image_content(media_url: str) -> dict:
    return {"type": "IMAGE", "mediaUrl": media_url}


def share_post_content(embed_url: str) -> dict:
    return {"type": "SHARE_POST", "embedUrl": embed_url}


def reaction_content(emoji: str = "👍", *, context_id: str = "", action: str = "ADDED") -> dict:
    content: dict[str, Any] = {"type": "REACTION", "action": action, "reactionType": "EMOJI", "emoji": emoji}
    if context_id:
        content["context"] = {"id": context_id}
    return content


def referral_ad_content(*, ad_id: str = "1780000000000001", ad_name: str = "Spring sale") -> dict:
    return {
        "type": "REFERRAL_AD",
        "advertiserId": "7000000000000000001",
        "adId": ad_id,
        "adName": ad_name,
        "embedUrl": f"https://www.tiktok.com/embed/v2/{ad_id}",
        "messageMaterialId": "mm-1",
    }


def referral_short_link_content(ref: str, *, prefilled_message: str = "") -> dict:
    content: dict[str, Any] = {"type": "REFERRAL_SHORT_LINK", "ref": ref, "prefilledMessageAuditStatus": "PASS"}
    if prefilled_message:
        content["prefilledMessage"] = prefilled_message
    return content


def inbound_result(
    *, user_id: str, business_id: str, content: dict, message_id: str = "", received_at: datetime | None = None
) -> dict:
    """One TikTok inbound message as Infobip forwards it (InboundMessageTikTokInboundContent)."""
    # In every official example the conversation id equals the user's id.
    return {
        "sender": user_id,
        "to": business_id,
        "integrationType": INTEGRATION_TYPE,
        "receivedAt": infobip_time(received_at),
        "messageId": message_id or new_id(),
        "message": {**content, "conversationId": user_id},
        "price": dict(PRICE),
    }


def inbound_event(*results: dict) -> dict:
    """The webhook body of inbound messages (TikTokInboundMessage)."""
    return {"results": list(results), "messageCount": len(results), "pendingMessageCount": 0}


# --- reports (business -> TikTok user, what became of it) ----------------------------------------------------


def delivery_report(
    *,
    message_id: str,
    to: str,
    sender: str,
    sent_at: str,
    status: dict,
    error: dict | None = None,
    bulk_id: str = "",
    callback_data: str | None = None,
    platform: dict | None = None,
    done_at: datetime | None = None,
) -> dict:
    """One DeliveryReport."""
    report: dict[str, Any] = {
        "price": dict(PRICE),
        "status": dict(status),
        "error": dict(error or NO_ERROR),
        "messageId": message_id,
        "to": to,
        "sender": sender,
        "sentAt": sent_at,
        "doneAt": infobip_time(done_at),
        "messageCount": 1,
    }
    if bulk_id:
        report["bulkId"] = bulk_id
    if callback_data is not None:
        report["callbackData"] = callback_data
    if platform:
        report["platform"] = dict(platform)
    return report


def seen_report(*, message_id: str, business_id: str, user_id: str, sent_at: str, platform: dict | None = None) -> dict:
    """One SeenReport: `from` is the business account, `to` the user."""
    report = {
        "messageId": message_id,
        "from": business_id,
        "to": user_id,
        "sentAt": sent_at,
        "seenAt": infobip_time(),
    }
    for key in ("applicationId", "entityId"):
        if platform and platform.get(key):
            report[key] = platform[key]
    return report


def reports(*results: dict) -> dict:
    """The webhook body of delivery or seen reports."""
    return {"results": list(results)}
