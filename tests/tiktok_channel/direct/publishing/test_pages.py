"""The staff pages: /posts/new/ (privacy options and switches from TikTok's creator_info; a bad file refused with the
reason) and /posts/uploads/ with its data."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.tiktok_channel.direct.publishing.conftest import JPEG, mp4_bytes
from tiktok_channel.direct.publishing.models import Post


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("boss", password="boss-pass-1", is_staff=True)


def test_only_staff_may_open_the_pages(client, django_user_model, connection):
    for path in ("/posts/new/", "/posts/uploads/", "/posts/uploads/data/"):
        assert client.get(path).status_code == 302  # to the login page
    client.force_login(django_user_model.objects.create_user("agent"))
    for path in ("/posts/new/", "/posts/uploads/", "/posts/uploads/data/"):
        assert client.get(path).status_code == 403


def test_the_form_offers_what_tiktok_offers_this_creator(client, staff, posting, connection):
    posting.set(privacy_level_options=["FOLLOWER_OF_CREATOR", "SELF_ONLY"], creator_duet_disabled=True)
    client.force_login(staff)
    page = client.get("/posts/new/").content.decode()
    assert 'value="FOLLOWER_OF_CREATOR">Followers' in page and 'value="SELF_ONLY">Only me' in page
    assert "PUBLIC_TO_EVERYONE" not in page
    assert 'name="disable_duet" value="1" checked disabled' in page
    assert "Posting as <strong>The Shop</strong> (@shop)" in page


def test_creator_info_refusal_is_shown(client, staff, posting, connection):
    posting.set(creator_info_error="spam_risk_too_many_posts")
    client.force_login(staff)
    page = client.get("/posts/new/").content.decode()
    assert "posted too much today" in page and 'id="post-form"' not in page


def form(file, **extra) -> dict:
    return {"kind": "video", "title": "Hi", "privacy_level": "SELF_ONLY", "file": file, **extra}


def test_a_bad_file_is_refused_with_the_reason(client, staff, connection, django_capture_on_commit_callbacks):
    client.force_login(staff)
    with django_capture_on_commit_callbacks() as callbacks:
        answer = client.post("/posts/new/", form(SimpleUploadedFile("x.mp4", b"not a video, just words")))
    assert answer.status_code == 400
    assert "this is not an MP4, MOV or WebM video" in answer.content.decode()
    assert not Post.objects.exists() and not callbacks


def test_a_good_file_becomes_a_post_and_the_uploads_list_shows_it(
    client, staff, connection, django_capture_on_commit_callbacks
):
    client.force_login(staff)
    with django_capture_on_commit_callbacks() as callbacks:
        answer = client.post(
            "/posts/new/",
            form(SimpleUploadedFile("clip.mp4", mp4_bytes(32 * 1024)), disable_comment="1", privacy_level="SELF_ONLY"),
        )
    assert answer.status_code == 302 and answer["Location"] == "/posts/uploads/"
    post = Post.objects.get()
    assert (post.kind, post.privacy_level, post.disable_comment, post.created_by) == ("video", "SELF_ONLY", True, staff)
    assert len(callbacks) == 2
    data = client.get("/posts/uploads/data/").json()["posts"]
    assert data[0]["post_id"] == post.pk and data[0]["status"] == "draft"
    assert data[0]["note"] == "Waiting for a worker to start the upload." and data[0]["privacy"] == "Only me"
    assert 'id="uploads-config"' in client.get("/posts/uploads/").content.decode()


def test_photos_are_served_for_tiktok_to_pull_and_nothing_else(
    client, staff, connection, django_capture_on_commit_callbacks
):
    client.force_login(staff)
    with django_capture_on_commit_callbacks():
        client.post("/posts/new/", form(SimpleUploadedFile("a.jpg", JPEG), kind="photo"))
    post = Post.objects.get()
    client.logout()
    name = post.files[0].rsplit("/", 1)[-1]
    answer = client.get(f"/posts/media/{name}")
    assert answer.status_code == 200 and b"".join(answer.streaming_content) == JPEG
    assert client.get("/posts/media/..%2Fsecret.jpg").status_code == 404
    assert client.get("/posts/media/0123456789abcdef0123456789abcdef.jpg").status_code == 404


def test_admins_see_posts_read_only_without_the_upload_url(
    client, django_user_model, connection, django_capture_on_commit_callbacks
):
    admin_user = django_user_model.objects.create_superuser("root", password="root-pass-1")
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks():
        client.post("/posts/new/", form(SimpleUploadedFile("clip.mp4", mp4_bytes(32 * 1024)), title="Admin sees me"))
    post = Post.objects.get()
    Post.objects.filter(pk=post.pk).update(upload_url="https://upload.example/?upload_token=SECRET")
    assert "Admin sees me" in client.get("/admin/tiktok_channel/post/").content.decode()
    page = client.get(f"/admin/tiktok_channel/post/{post.pk}/change/").content.decode()
    assert "Admin sees me" in page and "SECRET" not in page
    assert client.get("/admin/tiktok_channel/post/add/").status_code == 403
