"""A post from the form's files to TikTok's answer, against the sandbox over real HTTP: refused before anything is
stored or sent; uploaded chunk by chunk in order; resumed from what is recorded (or what TikTok says it holds);
a chunk rejected then retried; rate limits wait; the status polled to published or to TikTok's failure reason."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Q

from tests.tiktok_channel.direct.publishing.conftest import JPEG, MB, PNG, mp4_bytes
from tiktok_channel.direct.publishing import client, media, services, uploader
from tiktok_channel.direct.publishing.models import Post

OPTIONS = ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]


def create(connection, files, *, kind="video", privacy="SELF_ONLY", creator=None, **extra) -> Post:
    return services.post_create(
        connection=connection,
        kind=kind,
        title=extra.pop("title", "New drop #shop"),
        privacy_level=privacy,
        privacy_options=OPTIONS,
        disable_comment=False,
        disable_duet=True,
        disable_stitch=False,
        files=files,
        creator=creator,
        **extra,
    )


def video_file(size: int, seconds: float = 15) -> tuple[SimpleUploadedFile, bytes]:
    data = mp4_bytes(size, seconds)
    return SimpleUploadedFile("clip.mp4", data, content_type="video/mp4"), data


def stored_files() -> list[Path]:
    return list((Path(settings.MEDIA_ROOT) / "posts").glob("*"))


def poll_until_done(post: Post, timeout: float = 10.0) -> Post:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if uploader.poll_status(post.pk) is None:
            return Post.objects.get(pk=post.pk)
        time.sleep(0.05)
    raise AssertionError("the status never settled")


@pytest.mark.parametrize(
    ("kind", "files", "why"),
    [
        ("video", [SimpleUploadedFile("notes.mp4", b"plain text pretending to be a video")], "not an MP4, MOV or WebM"),
        ("video", [SimpleUploadedFile("long.mp4", mp4_bytes(4096, seconds=700))], "lasts 700 s"),
        ("photo", [SimpleUploadedFile("p.png", PNG)], "not PNG"),
        ("video", [], "choose a file"),
    ],
)
def test_a_bad_file_is_refused_with_the_reason_and_nothing_is_stored_or_sent(
    posting, connection, kind, files, why, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(services.PostRefused, match=why):
        create(connection, files, kind=kind)
    assert not Post.objects.exists() and not stored_files() and not callbacks
    assert posting.posts() == []


def test_a_privacy_level_tiktok_did_not_offer_is_refused(connection):
    file, _ = video_file(64 * 1024)
    with pytest.raises(services.PostRefused, match="privacy options"):
        create(connection, [file], privacy="FOLLOWER_OF_CREATOR")
    assert not Post.objects.exists()


def test_a_video_is_uploaded_in_order_in_chunks_then_published(
    posting, connection, settings, live_events, django_capture_on_commit_callbacks
):
    settings.TIKTOK_UPLOAD_CHUNK_BYTES = 5 * MB  # TikTok's smallest chunk: 12 MB go up in two
    file, data = video_file(12 * MB + 321)
    with django_capture_on_commit_callbacks() as callbacks:
        post = create(connection, [file])
    assert post.status == Post.Status.DRAFT and len(callbacks) == 2  # the live hint and the upload task
    assert Path(settings.MEDIA_ROOT, post.files[0]).read_bytes() == data

    with django_capture_on_commit_callbacks():
        outcome = uploader.run_upload(post.pk)
    assert outcome.done == "uploaded"
    post.refresh_from_db()
    assert (post.status, post.chunk_count, post.chunks_done, post.bytes_done) == ("processing", 2, 2, len(data))
    [sent] = posting.posts()
    assert [c["index"] for c in sent["chunks"]] == [0, 1]
    assert sent["chunk_size"] == 5 * MB and sent["size"] == len(data)
    assert sent["sha256"] == hashlib.sha256(data).hexdigest()
    assert sent["post_info"]["privacy_level"] == "SELF_ONLY" and sent["post_info"]["disable_duet"] is True

    with django_capture_on_commit_callbacks(execute=True):
        post = poll_until_done(post)
    [sent] = posting.posts()
    assert not stored_files()  # TikTok has it: our copy is deleted
    assert post.status == Post.Status.PUBLISHED and post.tiktok_post_id == sent["post_id"] != ""


def test_a_new_run_resumes_after_the_last_recorded_chunk_and_after_what_tiktok_already_holds(
    posting, connection, settings, django_capture_on_commit_callbacks
):
    settings.TIKTOK_UPLOAD_CHUNK_BYTES = 5 * MB
    file, data = video_file(16 * MB)  # 3 chunks: 5, 5, 6 MB
    with django_capture_on_commit_callbacks():
        post = create(connection, [file])
        # A run that died after recording chunk 1 and sending chunk 2 (TikTok kept it, we never recorded it):
        lease = services.upload_claim(post.pk)
        post.refresh_from_db()
        assert uploader._init(post, lease)
        post.refresh_from_db()
        for index in (0, 1):
            start, end = media.chunk_range(index, post.file_size, post.chunk_size, post.chunk_count)
            answer = client.put_chunk(
                post.upload_url, data[start : end + 1], start=start, end=end, total=len(data), content_type="video/mp4"
            )
            assert answer.outcome == client.CHUNK_ACCEPTED
        services.chunk_done(post.pk, lease, chunks_done=1, bytes_done=5 * MB)
        # Its lease runs out (the worker is dead): another run may take the post.
        Post.objects.filter(pk=post.pk).update(lease_until="2000-01-01T00:00:00Z")
        assert uploader.run_upload(post.pk).done == "uploaded"

    [sent] = posting.posts()
    assert [c["index"] for c in sent["chunks"]] == [0, 1, 2]  # each chunk once, in order
    assert sent["sha256"] == hashlib.sha256(data).hexdigest()
    assert posting.counter("chunks_out_of_step") == 1  # chunk 2 offered again: TikTok said it had it
    post.refresh_from_db()
    assert post.status == Post.Status.PROCESSING and post.upload_runs == 2


def test_a_live_lease_keeps_a_second_worker_out(connection, django_capture_on_commit_callbacks):
    file, _ = video_file(64 * 1024)
    with django_capture_on_commit_callbacks():
        post = create(connection, [file])
        assert services.upload_claim(post.pk) is not None
        assert uploader.run_upload(post.pk).done == "not_claimed"


def test_a_rejected_chunk_is_sent_again_and_kept_once(
    posting, connection, settings, django_capture_on_commit_callbacks
):
    settings.TIKTOK_UPLOAD_CHUNK_BYTES = 5 * MB
    file, data = video_file(10 * MB + 5)
    posting.set(chunk_reject_next=1)
    with django_capture_on_commit_callbacks():
        post = create(connection, [file])
        assert uploader.run_upload(post.pk).done == "uploaded"
    [sent] = posting.posts()
    assert [c["index"] for c in sent["chunks"]] == [0, 1] and posting.counter("chunks_rejected") == 1
    assert sent["sha256"] == hashlib.sha256(data).hexdigest()


def test_rate_limited_init_waits_with_the_reason_and_the_next_run_goes_on(
    posting, connection, settings, django_capture_on_commit_callbacks
):
    settings.TIKTOK_DIRECT_THROTTLE_WAIT_SECONDS = 42
    file, _ = video_file(64 * 1024)
    posting.set(post_rate_limit_next=1)
    with django_capture_on_commit_callbacks():
        post = create(connection, [file])
        outcome = uploader.run_upload(post.pk)
        assert outcome.done == "waiting" and outcome.retry_in == 42
        post.refresh_from_db()
        assert post.status == Post.Status.DRAFT and "too many requests" in post.reason and not post.lease_token
        assert uploader.run_upload(post.pk).done == "uploaded"


def test_a_failed_publish_shows_tiktoks_reason(posting, connection, django_capture_on_commit_callbacks):
    file, _ = video_file(64 * 1024)
    posting.set(post_fail_next=1, post_fail_reason="spam_risk_text")
    with django_capture_on_commit_callbacks():
        post = create(connection, [file])
        uploader.run_upload(post.pk)
        post = poll_until_done(post)
    assert post.status == Post.Status.FAILED
    assert post.reason == "TikTok refused the caption (spam risk) (spam_risk_text)"


def test_a_refused_init_fails_the_post_with_the_reason(posting, connection, django_capture_on_commit_callbacks):
    file, _ = video_file(64 * 1024)
    posting.set(creator_info_error="spam_risk_too_many_posts")
    with django_capture_on_commit_callbacks():
        post = create(connection, [file])
        assert uploader.run_upload(post.pk).done == "failed"
    post.refresh_from_db()
    assert post.status == Post.Status.FAILED and "posted too much today" in post.reason


def test_photos_are_pulled_by_tiktok_from_our_public_url(
    posting, connection, settings, live_server, django_capture_on_commit_callbacks
):
    settings.PUBLIC_BASE_URL = live_server.url
    with django_capture_on_commit_callbacks():
        post = create(connection, [SimpleUploadedFile("a.jpg", JPEG)], kind="photo", title="Two looks")
        assert uploader.run_upload(post.pk).done == "uploaded"
        post = poll_until_done(post)
    assert post.status == Post.Status.PUBLISHED
    [sent] = posting.posts()
    assert sent["kind"] == "photo" and sent["photos_pulled"] == 1
    assert sent["photo_urls"][0].startswith(f"{live_server.url}/posts/media/")


def test_each_change_is_announced_live_to_staff_with_a_newer_version(
    connection, live_events, django_user_model, django_capture_on_commit_callbacks
):
    staff = django_user_model.objects.create_user("boss", is_staff=True)
    django_user_model.objects.create_user("agent-only")
    file, _ = video_file(64 * 1024)
    with django_capture_on_commit_callbacks(execute=False):
        post = create(connection, [file])
        lease = services.upload_claim(post.pk)
    with django_capture_on_commit_callbacks(execute=True):
        services.chunk_done(post.pk, lease, chunks_done=1, bytes_done=100)
    assert [group for group, _ in live_events] == [f"user.{staff.pk}"]
    event = live_events[0][1]
    assert event["type"] == "post.updated" and event["chunks_done"] == 1 and event["bytes_done"] == 100
    assert event["version"] == 3  # created 1, claimed 2, chunk 3
    # A worker whose lease was taken over changes nothing.
    assert not services.chunk_done(post.pk, "not-the-lease", chunks_done=2, bytes_done=200)
    assert Post.objects.filter(Q(pk=post.pk), chunks_done=1).exists()
