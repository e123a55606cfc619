"""Replying and retrying through the API."""

import io
import struct
import zlib
from datetime import timedelta

import pytest
from django.utils import timezone

from inbox.models import Conversation, Message
from tests.inbox.helpers import api

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(monkeypatch):
    sent: list[int] = []
    monkeypatch.setattr("inbox.outbox.schedule_send", lambda message_id, attempt_id=None: sent.append(message_id))
    return sent


def png_bytes() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", raw)
        + chunk(b"IEND", b"")
    )


def url(world, tail="messages/"):
    return f"/api/v1/conversations/{world['bob'].pk}/{tail}"


def test_text_reply_is_queued_and_enqueued_after_commit(world, enqueued, django_capture_on_commit_callbacks):
    inbound = world["bob"].messages.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = api(world["agent"]).post(
            url(world), {"text": "Yes, we do!\nTwo days.", "quoted_message_id": inbound.pk}, format="json"
        )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["direction"], body["type"], body["status"], body["attempt"]) == ("out", "text", "queued", 1)
    assert body["text"] == "Yes, we do!\nTwo days." and body["quoted_message_id"] == inbound.pk
    assert body["author"]["username"] == "agent" and body["queued_at"]
    assert enqueued == [body["id"]]


def test_image_upload_is_stored_and_served_publicly(world, enqueued, client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    image = io.BytesIO(png_bytes())
    image.name = "photo.png"
    response = api(world["agent"]).post(url(world), {"type": "image", "image": image}, format="multipart")
    assert response.status_code == 201, response.content
    media_url = response.json()["media_url"]
    assert media_url.startswith("https://inbox.example.test/media/uploads/") and media_url.endswith(".png")
    served = client.get(media_url.removeprefix("https://inbox.example.test"))
    assert served.status_code == 200 and b"".join(served.streaming_content) == png_bytes()


@pytest.mark.parametrize(
    ("content", "code"),
    [(b"<svg onload=alert(1)>", "invalid_image"), (b"\xff\xd8\xff" + b"0" * (3 * 1024 * 1024), "image_too_large")],
)
def test_uploads_that_are_not_small_jpg_or_png_are_refused(world, enqueued, content, code):
    upload = io.BytesIO(content)
    upload.name = "photo.png"
    response = api(world["agent"]).post(url(world), {"type": "image", "image": upload}, format="multipart")
    assert response.status_code == 422 and response.json()["code"] == code
    assert not Message.objects.filter(direction="out").exists() and enqueued == []


def test_image_url_and_share_post(world, enqueued):
    client = api(world["agent"])
    image = client.post(url(world), {"type": "image", "media_url": "https://cdn.example.com/a.jpg"}, format="json")
    assert image.status_code == 201 and image.json()["media_url"] == "https://cdn.example.com/a.jpg"
    post = client.post(url(world), {"type": "share_post", "post_id": "7301234567890"}, format="json")
    assert post.status_code == 201 and post.json()["post_id"] == "7301234567890"


def test_closed_window_is_409_before_anything_is_queued(world, enqueued):
    Conversation.objects.filter(pk=world["bob"].pk).update(last_inbound_at=timezone.now() - timedelta(hours=49))
    response = api(world["agent"]).post(url(world), {"text": "hello?"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "reply_window_closed"
    assert not Message.objects.filter(direction="out").exists() and enqueued == []


def test_used_quota_is_409(world, enqueued, settings):
    settings.REPLY_QUOTA_PER_WINDOW = 2
    client = api(world["agent"])
    assert [client.post(url(world), {"text": f"r{n}"}, format="json").status_code for n in range(3)] == [201, 201, 409]
    assert client.get(url(world, "")).json()["replies_left"] == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"text": ""}, "text"),
        ({"text": "x" * 6001}, "text"),
        ({"type": "image", "media_url": "ftp://x/a.gif"}, "media_url"),
        ({"type": "video"}, "type"),
        ({"text": "x", "callback_data": "c" * 4001}, "callback_data"),
    ],
)
def test_invalid_replies_are_422(world, enqueued, payload, field):
    response = api(world["agent"]).post(url(world), payload, format="json")
    assert response.status_code == 422 and field in response.json()["fields"]


def test_retry_a_failed_message(world, enqueued):
    now = timezone.now()
    failed = Message.objects.create(
        conversation=world["bob"],
        direction="out",
        type="text",
        text="hi",
        channel="tiktok",
        provider_message_id="first-try",
        status="failed",
        queued_at=now,
        failed_at=now,
        sent_at=now,
        error={"name": "EC_NO_SESSION"},
    )
    response = api(world["agent"]).post(f"/api/v1/messages/{failed.pk}/retry/")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["attempt"], body["error"]) == ("queued", 2, None)
    failed.refresh_from_db()
    assert failed.provider_message_id != "first-try"
    again = api(world["agent"]).post(f"/api/v1/messages/{failed.pk}/retry/")
    assert again.status_code == 409 and again.json()["code"] == "not_failed"


def test_outsider_cannot_reply_or_retry(world, enqueued):
    now = timezone.now()
    failed = Message.objects.create(
        conversation=world["bob"],
        direction="out",
        type="text",
        text="hi",
        channel="tiktok",
        provider_message_id="x-1",
        status="failed",
        queued_at=now,
        sent_at=now,
    )
    outsider = api(world["outsider"])
    assert outsider.post(url(world), {"text": "hi"}, format="json").status_code == 404
    assert outsider.post(f"/api/v1/messages/{failed.pk}/retry/").status_code == 404
    assert Message.objects.filter(direction="out").count() == 1 and enqueued == []


def test_the_same_idempotency_key_returns_the_first_reply_and_creates_nothing(world, enqueued):
    client = api(world["agent"])
    first = client.post(url(world), {"text": "Yes!"}, format="json", HTTP_IDEMPOTENCY_KEY="compose-1")
    again = client.post(url(world), {"text": "Yes!"}, format="json", HTTP_IDEMPOTENCY_KEY="compose-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert Message.objects.filter(direction="out").count() == 1
    # Another key is another reply; the same key by a colleague is the colleague's own reply.
    other = client.post(url(world), {"text": "Yes!"}, format="json", HTTP_IDEMPOTENCY_KEY="compose-2")
    colleague = api(world["colleague"]).post(
        url(world), {"text": "Yes!"}, format="json", HTTP_IDEMPOTENCY_KEY="compose-1"
    )
    assert len({first.json()["id"], other.json()["id"], colleague.json()["id"]}) == 3


def test_a_replayed_key_answers_201_even_when_the_quota_is_used_since(world, enqueued, settings):
    settings.REPLY_QUOTA_PER_WINDOW = 1
    client = api(world["agent"])
    first = client.post(url(world), {"text": "only one"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    again = client.post(url(world), {"text": "only one"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert (first.status_code, again.status_code) == (201, 201) and again.json()["id"] == first.json()["id"]
    assert client.post(url(world), {"text": "more"}, format="json").status_code == 409


def test_an_overlong_idempotency_key_is_422(world, enqueued):
    response = api(world["agent"]).post(url(world), {"text": "hi"}, format="json", HTTP_IDEMPOTENCY_KEY="k" * 201)
    assert response.status_code == 422 and "idempotency_key" in response.json()["fields"]
    assert not Message.objects.filter(direction="out").exists()


def test_the_database_refuses_a_second_reply_with_the_same_key(world):
    from django.db import IntegrityError, transaction

    now = timezone.now()
    fields = dict(
        conversation=world["bob"], direction="out", type="text", channel="tiktok", author=world["agent"], sent_at=now
    )
    Message.objects.create(idempotency_key="k", provider_message_id="a", **fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(idempotency_key="k", provider_message_id="b", **fields)
    # Without a key there is no such limit.
    Message.objects.create(provider_message_id="c", **fields)
    Message.objects.create(provider_message_id="d", **fields)


def test_a_key_that_lost_the_race_at_the_constraint_returns_the_winner(world, enqueued, monkeypatch):
    """The IntegrityError branch: as if a concurrent request committed the same key after our check."""
    from inbox.services import replies

    client = api(world["agent"])
    winner = client.post(url(world), {"text": "Yes!"}, format="json", HTTP_IDEMPOTENCY_KEY="race").json()
    lookups = iter([None])  # the check under the lock misses the winner once; the fetch after the error finds it
    real = replies._reply_with_key
    monkeypatch.setattr(replies, "_reply_with_key", lambda *a: next(lookups, None) or real(*a))
    again = client.post(url(world), {"text": "Yes!"}, format="json", HTTP_IDEMPOTENCY_KEY="race")
    assert again.status_code == 201 and again.json()["id"] == winner["id"]
    assert Message.objects.filter(direction="out").count() == 1


def uploaded_files(root) -> list:
    return sorted(p.name for p in (root / "uploads").glob("*")) if (root / "uploads").exists() else []


def png_upload():
    image = io.BytesIO(png_bytes())
    image.name = "photo.png"
    return image


def test_a_refused_reply_with_an_image_leaves_no_file(world, enqueued, settings, tmp_path):
    """409 (window closed) and 422 (provider cannot quote an image): nothing is written under the upload dir."""
    settings.MEDIA_ROOT = tmp_path
    client = api(world["agent"])
    inbound = world["bob"].messages.get()
    refused = client.post(
        url(world), {"type": "image", "image": png_upload(), "quoted_message_id": inbound.pk}, format="multipart"
    )
    assert refused.status_code == 422 and uploaded_files(tmp_path) == []
    Conversation.objects.filter(pk=world["bob"].pk).update(last_inbound_at=timezone.now() - timedelta(hours=49))
    closed = client.post(url(world), {"type": "image", "image": png_upload()}, format="multipart")
    assert closed.status_code == 409 and uploaded_files(tmp_path) == []


def test_a_replayed_image_reply_keeps_only_the_first_file(world, enqueued, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client = api(world["agent"])
    first = client.post(
        url(world), {"type": "image", "image": png_upload()}, format="multipart", HTTP_IDEMPOTENCY_KEY="k"
    )
    again = client.post(
        url(world), {"type": "image", "image": png_upload()}, format="multipart", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert (first.status_code, again.status_code) == (201, 201)
    assert uploaded_files(tmp_path) == [first.json()["media_url"].rsplit("/", 1)[1]]


def test_the_orphan_sweep_deletes_old_unreferenced_uploads_only(world, enqueued, settings, tmp_path):
    import os
    import time

    from django.core.management import call_command

    settings.MEDIA_ROOT = tmp_path
    sent = api(world["agent"]).post(url(world), {"type": "image", "image": png_upload()}, format="multipart")
    kept = sent.json()["media_url"].rsplit("/", 1)[1]
    (tmp_path / "uploads" / "orphan-old.png").write_bytes(png_bytes())
    (tmp_path / "uploads" / "orphan-new.png").write_bytes(png_bytes())
    # Both times from Python's clock (which a test run may have moved ahead), not the file system's.
    now, two_hours_ago = time.time(), time.time() - 7200
    os.utime(tmp_path / "uploads" / "orphan-new.png", (now, now))
    for name in (kept, "orphan-old.png"):
        os.utime(tmp_path / "uploads" / name, (two_hours_ago, two_hours_ago))
    call_command("sweep_uploads")
    assert uploaded_files(tmp_path) == sorted([kept, "orphan-new.png"])
