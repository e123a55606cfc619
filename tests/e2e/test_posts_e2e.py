"""The Posts page end to end (the engagement part of issue 18): a staff user presses "Sync now" in Chromium → the
real Celery worker pages through the TikTok sandbox's 25 posts (20 per page) → the page shows them live with their
figures, the followers chart and its table; a post published and one removed in the sandbox arrive as signed
webhooks through our real web server and processor and update the page live; the authorization removed asks for a
reconnect; and the page fits a 390 px phone."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import expect

from tests.e2e.test_browser import browser, contexts, logged_in_page, shot  # noqa: F401 - fixtures
from tests.e2e.test_direct_e2e import BUSINESS, CLIENT_KEY, TikTok, tiktok  # noqa: F401 - fixtures
from tiktok_channel.direct import tokens
from tiktok_channel.direct.engagement.models import Video
from tiktok_channel.direct.models import TikTokConnection

pytestmark = [pytest.mark.e2e]


def connect_for_posts(tiktok: TikTok) -> TikTokConnection:  # noqa: F811
    sandbox = tiktok.server.sandbox
    code = sandbox.issue_code(
        app=sandbox.apps[CLIENT_KEY],
        open_id=BUSINESS,
        scope=["user.info.basic", "user.info.stats", "message.list.read", "message.list.send", "message.list.manage"]
        + ["video.list"],
        redirect_uri=tiktok.app.redirect_uri(),
    )
    return tokens.connect(app=tiktok.app, code=code, user=None)


def sandbox_post(tiktok: TikTok, path: str, **body) -> dict:  # noqa: F811
    response = requests.post(f"{tiktok.url}{path}", json={"account": BUSINESS, **body}, timeout=15)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.flaky(reruns=2, reruns_delay=1)  # a browser on a loaded 2-core machine, as every browser test here
def test_sync_now_shows_the_posts_live_and_webhooks_update_them(stack, tiktok, contexts, django_user_model):  # noqa: F811
    for index in range(25):  # before the account is connected: no webhook to send yet
        tiktok.server.sandbox.videos.post({"account": BUSINESS, "caption": f"Post number {index}"})
    connection = connect_for_posts(tiktok)
    staff = django_user_model.objects.create_superuser("lead", password="lead-pass-123")

    page = logged_in_page(stack, contexts, staff, "/posts/")
    expect(page.locator("#new-post-link")).to_have_attribute("href", "/posts/new/")
    card = page.locator(f"#account-{connection.pk}")
    expect(card).to_contain_text("E2E Shop")
    expect(page.locator("#videos")).to_contain_text("No posts yet")

    # Sync now: the worker reads 2 pages (20 + 5) and the page refetches when told (content.changed).
    card.get_by_role("button", name="Sync now").click()
    expect(page.locator("#videos")).to_have_attribute("data-count", "25", timeout=30_000)
    assert tiktok.counter("video_list_pages") == 2
    expect(page.locator(".video-card")).to_have_count(25)
    newest = Video.objects.filter(connection=connection).order_by("-posted_at").first()
    first = page.locator(f"#video-{newest.video_id}")
    expect(first).to_contain_text("Post number 24")
    expect(first.locator('[data-figure="views"] strong')).to_have_text(str(newest.views))
    expect(first.get_by_role("link", name="Open on TikTok")).to_have_attribute("href", newest.share_url)
    expect(card.locator(".followers")).not_to_have_text("–")
    expect(card.locator("svg.report-svg")).to_be_visible()
    expect(page.locator(f"#followers-table-{connection.pk} tbody tr")).to_have_count(1)

    # A post's own chart, with its numbers in a table.
    first.get_by_role("button", name="Chart").click()
    expect(page.locator(f"#video-table-{newest.pk} tbody tr")).to_have_count(1)
    shot(page, "posts-desktop.png")

    # TikTok's webhooks: a post published, another removed — through our door, ledger and processor, live.
    published = sandbox_post(tiktok, "/sandbox/video", caption="Fresh from the studio")
    assert [d["status"] for d in published["deliveries"]] == [200]
    expect(page.locator(f"#video-{published['video_id']}")).to_be_visible(timeout=15_000)
    # The event carries only the post's id: the sync it triggers brings the caption.
    expect(page.locator(f"#video-{published['video_id']}")).to_contain_text("Fresh from the studio", timeout=30_000)
    removed = Video.objects.filter(connection=connection).order_by("posted_at").first()
    sandbox_post(tiktok, "/sandbox/video/remove", video_id=removed.video_id)
    expect(page.locator(f"#video-{removed.video_id}")).to_have_attribute("data-state", "removed", timeout=15_000)
    expect(page.locator(f"#video-{removed.video_id}")).to_contain_text("Removed")

    # On a phone: nothing wider than the screen, the New post link still there.
    page.set_viewport_size({"width": 390, "height": 844})
    expect(page.locator("#new-post-link")).to_be_visible()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, width
    page.evaluate("() => window.scrollTo(0, 0)")
    shot(page, "posts-phone.png")

    # The user removes the app's access in TikTok: the account asks for a reconnect, live, and Sync now is off.
    sandbox_post(tiktok, "/sandbox/revoke_authorization")
    expect(card.locator(".account-alert")).to_contain_text("must be reconnected", timeout=15_000)
    expect(card.get_by_role("link", name="Reconnect")).to_be_visible()
    expect(card.get_by_role("button", name="Sync now")).to_be_disabled()
    connection.refresh_from_db()
    assert connection.state == TikTokConnection.State.REAUTHORIZATION_NEEDED
