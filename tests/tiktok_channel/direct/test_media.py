"""A received image: its webhook carries a media_id; agents who can see the conversation get the file through us."""

from __future__ import annotations

import json

import pytest
import responses

from inbox.models import Message

from .conftest import BUSINESS_ID, V, envelope, post_webhook, received, webhook_body

pytestmark = pytest.mark.django_db
DOWNLOAD_URL = f"{V}/business/message/media/download/"
CDN = "https://media.tiktok.example/img-1.jpg"
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 100


@pytest.fixture
def image(client, app, connection) -> Message:
    content = received("tt-img-1", type="image", image={"media_id": "media-1"})
    assert post_webhook(client, app, webhook_body("im_receive_msg", content)).status_code == 200
    return Message.objects.get(provider_message_id="tt-img-1")


@responses.activate
def test_an_agent_of_the_inbox_sees_the_image(client, image, agent, settings):
    assert image.media_url == f"{settings.PUBLIC_BASE_URL}/tiktok/media/{BUSINESS_ID}/tt-img-1/"
    responses.post(DOWNLOAD_URL, json=envelope({"download_url": CDN}))
    responses.get(CDN, body=JPEG, content_type="image/jpeg")
    client.force_login(agent)

    response = client.get(f"/tiktok/media/{BUSINESS_ID}/tt-img-1/")

    assert response.status_code == 200 and response.content == JPEG and response["Content-Type"] == "image/jpeg"
    asked = json.loads(responses.calls[0].request.body)
    assert asked == {
        "business_id": BUSINESS_ID,
        "conversation_id": "tt-conv-1",
        "message_id": "tt-img-1",
        "media_id": "media-1",
        "media_type": "IMAGE",
    }
    assert responses.calls[1].request.headers["x-user"] == "act.1"


@responses.activate
def test_someone_outside_the_inbox_gets_404_and_tiktok_is_not_asked(client, image, django_user_model):
    outsider = django_user_model.objects.create_user("outsider", password="x-pass-123")
    client.force_login(outsider)
    assert client.get(f"/tiktok/media/{BUSINESS_ID}/tt-img-1/").status_code == 404
    assert len(responses.calls) == 0


@responses.activate
def test_tiktok_refusing_the_download_is_a_502_with_a_reason(client, image, agent):
    responses.post(DOWNLOAD_URL, json=envelope(code=40007, message="not exist"))
    client.force_login(agent)
    response = client.get(f"/tiktok/media/{BUSINESS_ID}/tt-img-1/")
    assert response.status_code == 502 and response.json()["code"] == "media_unavailable"
