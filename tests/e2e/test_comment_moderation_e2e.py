"""Comments, the rest of issue 18, end to end against real processes (web server, processor, Celery worker) and the
TikTok sandbox: a comment whose webhook was lost arrives once through the sync (which the next comment's webhook
triggers for a video without a cover), the banner shows the video's cover and caption, an agent hides a comment in
Chromium and the sandbox has it hidden (shown live), and TikTok's refusal of the unhide is shown with its reason."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import expect

from inbox.models import Conversation, Message
from tests.e2e.conftest import wait_for
from tests.e2e.test_browser import browser, contexts, logged_in_page, shot  # noqa: F401 - fixtures
from tests.e2e.test_direct_e2e import BUSINESS, CLIENT_KEY, TikTok, tiktok  # noqa: F401 - fixtures
from tiktok_channel.direct import client as tiktok_client
from tiktok_channel.direct import comments, tokens

pytestmark = [pytest.mark.e2e]

VIDEO = "7312345678901234600"


def connect(tiktok: TikTok) -> None:  # noqa: F811
    sandbox = tiktok.server.sandbox
    scopes = ["user.info.basic", "message.list.read", "message.list.send", "message.list.manage"]
    code = sandbox.issue_code(
        app=sandbox.apps[CLIENT_KEY],
        open_id=BUSINESS,
        scope=[*scopes, "video.list", "comment.list", "comment.list.manage"],
        redirect_uri=tiktok.app.redirect_uri(),
    )
    tokens.connect(app=tiktok.app, code=code, user=None)
    tiktok_client.register_webhook(tiktok.app, event_type="COMMENT")


def post(tiktok: TikTok, path: str, body: dict) -> dict:  # noqa: F811
    response = requests.post(f"{tiktok.url}{path}", json=body, timeout=15)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.flaky(reruns=2, reruns_delay=1)  # a browser on a loaded 2-core machine, as every browser test here
def test_a_missed_comment_arrives_once_and_an_agent_hides_a_comment_in_chromium(stack, tiktok, contexts):  # noqa: F811
    connect(tiktok)
    post(tiktok, "/sandbox/video", {"account": BUSINESS, "video_id": VIDEO, "caption": "Spring collection is here"})
    lost = post(
        tiktok,
        "/sandbox/comment",
        {"account": BUSINESS, "user": "tt-user-dan", "video_id": VIDEO, "text": "Ships to Canada?", "webhook": False},
    )
    assert lost["deliveries"] == []
    seen = post(
        tiktok,
        "/sandbox/comment",
        {"account": BUSINESS, "user": "tt-user-cora", "video_id": VIDEO, "text": "Love the colours"},
    )
    assert [d["status"] for d in seen["deliveries"]] == [200]
    stack.wait_processed()

    # The webhook's video had no cover yet: the worker syncs it, which also brings Dan's lost comment, once.
    wait_for(lambda: Message.objects.filter(provider_message_id=lost["comment_id"]).exists(), 60, "the sync")
    cora = Conversation.objects.get(kind="comment", subject_id=VIDEO, contact__channel_user_id="tt-user-cora")
    wait_for(lambda: Conversation.objects.get(pk=cora.pk).subject.get("caption"), 60, "the video's caption")
    tiktok_connection = tiktok.app.connections.get()
    assert comments.sync_connection(tiktok_connection.pk).stored == 0  # another sync: nothing new
    assert Message.objects.filter(provider_message_id=lost["comment_id"]).count() == 1
    assert Message.objects.filter(provider_message_id=seen["comment_id"]).count() == 1

    page = logged_in_page(stack, contexts, stack.agent, "/?kind=comment")
    page.locator(f'.conv-row[data-id="{cora.pk}"] .row-link').click()
    expect(page.locator("body")).to_have_attribute("data-thread-ready", str(cora.pk))
    banner = page.locator("#subject-banner")
    expect(banner).to_contain_text("Spring collection is here")
    expect(banner.locator("img.subject-cover")).to_have_attribute("src", f"{tiktok.url}/sandbox/cover/{VIDEO}.svg")
    expect(banner.get_by_role("link", name="View on TikTok")).to_be_visible()

    # Hide Cora's comment: confirmed, pending, then hidden on TikTok and shown so (pushed live).
    page.on("dialog", lambda dialog: dialog.accept())
    message = page.locator(".msg-in", has_text="Love the colours")
    message.hover()
    message.locator('.comment-action[data-action="hide"]').click()
    expect(message.locator(".public-hidden")).to_have_text("Hidden", timeout=20_000)
    assert tiktok.server.sandbox.comments[seen["comment_id"]]["status"] == "HIDDEN"
    expect(message.locator('.comment-action[data-action="unhide"]')).to_have_count(1)
    shot(page, "comment-hidden.png")

    # TikTok refuses the unhide: the reason is shown, the comment stays hidden.
    post(
        tiktok,
        "/sandbox/control",
        {"set": {"refuse_comment_action_next": 1, "refuse_comment_action_reason": "Comment is under review"}},
    )
    message.hover()
    message.locator('.comment-action[data-action="unhide"]').click()
    expect(message.locator(".action-failure")).to_contain_text("Comment is under review", timeout=20_000)
    expect(message.locator(".public-hidden")).to_have_text("Hidden")
    assert tiktok.server.sandbox.comments[seen["comment_id"]]["status"] == "HIDDEN"

    # At 390 px the actions are there without hovering.
    page.set_viewport_size({"width": 390, "height": 800})
    expect(message.locator('.comment-action[data-action="unhide"]')).to_be_visible()
    shot(page, "comment-hidden-phone.png")
