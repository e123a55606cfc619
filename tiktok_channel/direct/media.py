"""Images users send over TikTok: their webhook carries only a `media_id`; the file is fetched from TikTok when an
agent opens it (`POST /business/message/media/download/` → a download URL valid 24 h, which wants the access token
in an `x-user` header, so the browser cannot load it itself). Only for agents who can see the conversation."""

from __future__ import annotations

import logging

import requests
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_GET

from inbox.models import Message
from inbox.selectors import conversations_visible_to
from tiktok_channel.direct import client, tokens
from tiktok_channel.direct.client import TikTokError
from tiktok_channel.direct.models import TikTokConnection
from tiktok_channel.models import CHANNEL

logger = logging.getLogger(__name__)

IMAGE_TYPES = {"image/jpeg", "image/png", "image/webp", "image/gif"}
# The largest image any TikTok source says a DM may carry (JPEG/WebP up to 20 MB).
RECEIVED_IMAGE_MAX_BYTES = 20 * 1024 * 1024


def media_url(business_id: str, message_id: str) -> str:
    """Where the inbox shows a received image from (set on the message when the webhook is applied)."""
    return f"{settings.PUBLIC_BASE_URL}{reverse('tiktok_direct_media', args=[business_id, message_id])}"


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status=status)


@require_GET
@login_required(login_url="login")
def received_image(request: HttpRequest, business_id: str, message_id: str) -> HttpResponse:
    message = (
        Message.objects.filter(
            channel=CHANNEL,
            endpoint_id=business_id,
            provider_message_id=message_id,
            direction=Message.Direction.IN,
            type=Message.Type.IMAGE,
            conversation__in=conversations_visible_to(request.user),
        )
        .select_related("conversation")
        .first()
    )
    media_id = ((message.payload or {}).get("image") or {}).get("media_id") if message else None
    if message is None or not media_id:
        return _error(404, "not_found", "no such image")
    connection = TikTokConnection.objects.select_related("app").filter(account_id=business_id).first()
    token = tokens.usable_access_token(connection) if connection is not None else None
    if token is None:
        return _error(503, "connection_unavailable", "the TikTok account is not connected: the image cannot be fetched")
    try:
        data = client.call(
            connection.app,
            "POST",
            "/business/message/media/download/",
            access_token=token,
            json={
                "business_id": business_id,
                "conversation_id": message.provider_conversation_id,
                "message_id": message_id,
                "media_id": str(media_id),
                "media_type": "IMAGE",
            },
        )
        url = str(data.get("download_url") or "")
        if not url.startswith(("https://", "http://")):
            raise TikTokError(client.RETRYABLE, None, "TikTok gave no download URL")
        limit = RECEIVED_IMAGE_MAX_BYTES
        with requests.get(url, headers={"x-user": token}, timeout=client.timeout(), stream=True) as response:
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if response.status_code != 200 or content_type not in IMAGE_TYPES:
                raise TikTokError(
                    client.RETRYABLE, None, f"the download answered {response.status_code} {content_type}"
                )
            content = response.raw.read(limit + 1, decode_content=True)
    except (TikTokError, requests.RequestException) as exc:
        logger.warning("TikTok image %s not fetched: %s", message_id, exc)
        return _error(502, "media_unavailable", "TikTok did not hand over the image; try again later")
    if len(content) > limit:
        return _error(502, "media_too_large", "the image is too large to show")
    result = HttpResponse(content, content_type=content_type)
    result["Cache-Control"] = "private, max-age=3600"
    result["X-Content-Type-Options"] = "nosniff"
    return result
