"""Issue 18's publishing done-when, end to end: the stack's real web server and Celery worker, the TikTok sandbox (a
real HTTP server in this process) and Chromium.

A staff user posts a 31 MB video through /posts/new/ (TikTok's default 10 MB chunks: 3 chunks, the last with the
remainder) → /posts/uploads/ shows the progress bar move live → the worker is killed while TikTok holds chunk 2 →
a new worker (handed the post by the sweeper) resumes → TikTok got each chunk once, in order, and the assembled bytes
are the file's → the post is published. And a publish TikTok fails shows its reason on the page.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.utils import timezone
from playwright.sync_api import expect

from tests.e2e.conftest import wait_for
from tests.e2e.test_browser import browser, contexts, shot  # noqa: F401 - fixtures
from tests.tiktok_channel.direct.publishing.conftest import BUSINESS, CLIENT_KEY, SCOPES, mp4_bytes
from tiktok_channel.direct import tokens
from tiktok_channel.direct.models import TikTokApp
from tiktok_channel.direct.publishing import services
from tiktok_channel.direct.publishing.models import Post
from tiktok_channel.direct.publishing.tasks import resume_stalled_posts
from tiktok_channel.direct.sandbox.behaviour import Behaviour
from tiktok_channel.direct.sandbox.server import SandboxServer
from tiktok_channel.direct.sandbox.state import Sandbox

pytestmark = [pytest.mark.e2e]


class TikTok:
    def __init__(self, server: SandboxServer, app: TikTokApp) -> None:
        self.server, self.app = server, app

    def set(self, **switches) -> None:
        answer = requests.post(f"{self.server.url}/sandbox/control", json={"set": switches}, timeout=10)
        assert answer.status_code == 200, answer.text

    def state(self) -> dict:
        return requests.get(f"{self.server.url}/sandbox/state", timeout=10).json()


@pytest.fixture
def tiktok(stack) -> Iterator[TikTok]:
    server = SandboxServer(Sandbox(Behaviour(post_processing_ms=1000, post_moderation_ms=1000)))
    server.start()
    secret = secrets.token_hex(16)
    app = TikTokApp.objects.create(
        name="E2E Publish",
        client_key=CLIENT_KEY,
        client_secret=secret,
        api_base_url=server.url,
        auth_base_url=server.url,
        inbox=stack.inbox,
    )
    server.sandbox.add_app(
        {"client_key": CLIENT_KEY, "client_secret": secret, "name": "E2E Publish", "redirect_uri": app.redirect_uri()}
    )
    server.sandbox.add_account({"open_id": BUSINESS, "username": "shop", "display_name": "The Shop"})
    code = server.sandbox.issue_code(
        app=server.sandbox.apps[CLIENT_KEY], open_id=BUSINESS, scope=SCOPES, redirect_uri=app.redirect_uri()
    )
    tokens.connect(app=app, code=code, user=None)
    yield TikTok(server, app)
    server.stop()


@pytest.fixture
def staff_page(stack, contexts, django_user_model):  # noqa: F811
    staff = django_user_model.objects.create_user("poster", password="poster-pass-1", is_staff=True)
    context = contexts()
    context.add_cookies([stack.session_cookie(staff)])
    return context.new_page()


@pytest.mark.flaky(reruns=2, reruns_delay=1)  # a browser on a loaded 2-core machine, as every browser test here
def test_a_multi_chunk_video_uploads_live_survives_a_killed_worker_and_is_published(
    stack, tiktok, staff_page, tmp_path: Path
):
    page = staff_page
    data = mp4_bytes(31_000_000, seconds=20)
    video = tmp_path / "launch.mp4"
    video.write_bytes(data)
    # Each chunk is held 2 s at TikTok before it is read: time to see progress, and to kill the worker mid-upload.
    tiktok.set(chunk_delay_ms=2000)

    page.goto(f"{stack.web_url}/posts/new/")
    expect(page.locator("#post-privacy option")).to_have_count(4)  # "Choose…" and TikTok's three options
    page.set_input_files("#post-file", str(video))
    page.fill("#post-title", "Our launch #shop")
    page.select_option("#post-privacy", "SELF_ONLY")
    page.click("#post-submit")
    page.wait_for_url(f"{stack.web_url}/posts/uploads/")
    expect(page.locator("#uploads-live")).to_contain_text("Live")
    post = wait_for(lambda: Post.objects.filter(title="Our launch #shop").first(), 10, "the post")
    row = page.locator(f'li.upload[data-post-id="{post.pk}"]')

    # Chunk 1 of 3 is TikTok's and the page shows it without a reload; chunk 2 has arrived and is held: kill.
    expect(row.locator(".upload-percent")).to_contain_text("chunk 1 of 3", timeout=20_000)
    assert 0 < int(row.locator("progress").get_attribute("value")) < 100
    wait_for(lambda: tiktok.state()["counters"].get("chunk_held", 0) >= 2, 10, "chunk 2 at TikTok")
    stack.kill_worker()
    post.refresh_from_db()
    assert post.status == Post.Status.UPLOADING and post.chunks_done == 1
    tiktok.set(chunk_delay_ms=0)

    # A new worker; the killed one's lease is fast-forwarded (as the outbox e2e does), then beat's sweeper runs.
    stack.start_worker()
    Post.objects.filter(pk=post.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert resume_stalled_posts() == {"uploads": 1, "polls": 0}

    expect(row.locator(".upload-status")).to_have_text("Published", timeout=60_000)
    expect(row.locator(".upload-note")).to_contain_text("Public on TikTok", timeout=60_000)
    post.refresh_from_db()
    assert post.chunks_done == 3 and post.upload_runs == 2 and post.tiktok_post_id
    [sent] = tiktok.state()["posts"]
    assert [chunk["index"] for chunk in sent["chunks"]] == [0, 1, 2]  # each once, in order
    assert sent["size"] == len(data) and sent["sha256"] == hashlib.sha256(data).hexdigest()
    assert sent["post_info"]["title"] == "Our launch #shop" and sent["post_info"]["privacy_level"] == "SELF_ONLY"
    assert not os.environ.get("TIKTOK_UPLOAD_CHUNK_BYTES")  # TikTok's real rules, no test-only chunk size
    shot(page, "posts-uploads-desktop.png")

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(row.locator(".upload-status")).to_have_text("Published")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "posts-uploads-phone.png")


@pytest.mark.flaky(reruns=2, reruns_delay=1)
def test_a_publish_tiktok_fails_shows_its_reason(stack, tiktok, staff_page):
    from django.core.files.uploadedfile import SimpleUploadedFile

    tiktok.set(post_fail_next=1, post_fail_reason="frame_rate_check_failed")
    post = services.post_create(
        connection=tiktok.app.connections.get(),
        kind="video",
        title="Too fast",
        privacy_level="SELF_ONLY",
        privacy_options=["SELF_ONLY"],
        disable_comment=False,
        disable_duet=False,
        disable_stitch=False,
        files=[SimpleUploadedFile("fast.mp4", mp4_bytes(256 * 1024))],
    )
    page = staff_page
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{stack.web_url}/posts/uploads/")
    row = page.locator(f'li.upload[data-post-id="{post.pk}"]')
    expect(row.locator(".upload-status")).to_have_text("Failed", timeout=30_000)
    expect(row.locator(".upload-note")).to_have_text(
        "TikTok refused the video's frame rate (23-60 fps) (frame_rate_check_failed)"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "posts-failed-phone.png")

    # The form at phone width: every field reachable, nothing wider than the screen.
    page.get_by_role("link", name="New post").click()
    expect(page.locator("#post-submit")).to_be_visible()
    expect(page.locator("#post-privacy option")).to_have_count(4)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "posts-new-phone.png")
