"""Comments as conversations, end to end (the comments part of issue 18's done-when): a user comments on the
business's video in the TikTok sandbox → its signed COMMENT webhook reaches our real web server and processor → the
comment conversation shows in the inbox (marked, filtered, with the video) → an agent answers it in Chromium → the
worker sends it as a comment reply and the sandbox has it under that comment."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import expect

from inbox.models import Conversation, Message
from tests.e2e.test_browser import browser, contexts, logged_in_page, shot  # noqa: F401 - fixtures
from tests.e2e.test_direct_e2e import BUSINESS, CLIENT_KEY, TikTok, tiktok  # noqa: F401 - fixtures
from tiktok_channel.direct import client as tiktok_client
from tiktok_channel.direct import tokens

pytestmark = [pytest.mark.e2e]

VIDEO = "7312345678901234567"


def connect_with_comments(tiktok: TikTok) -> None:  # noqa: F811
    sandbox = tiktok.server.sandbox
    code = sandbox.issue_code(
        app=sandbox.apps[CLIENT_KEY],
        open_id=BUSINESS,
        scope=[
            "user.info.basic",
            "message.list.read",
            "message.list.send",
            "message.list.manage",
            "comment.list",
            "comment.list.manage",
        ],
        redirect_uri=tiktok.app.redirect_uri(),
    )
    tokens.connect(app=tiktok.app, code=code, user=None)
    tiktok_client.register_webhook(tiktok.app, event_type="COMMENT")  # what `tiktok_app register-webhook` calls


@pytest.mark.flaky(reruns=2, reruns_delay=1)  # a browser on a loaded 2-core machine, as every browser test here
def test_a_comment_arrives_is_answered_in_the_inbox_and_the_reply_reaches_tiktok(stack, tiktok, contexts):  # noqa: F811
    connect_with_comments(tiktok)
    response = requests.post(
        f"{tiktok.url}/sandbox/comment",
        json={"account": BUSINESS, "user": "tt-user-cora", "video_id": VIDEO, "text": "Does it come in green?"},
        timeout=15,
    )
    assert response.status_code == 200, response.text
    commented = response.json()
    assert [d["status"] for d in commented["deliveries"]] == [200]
    stack.wait_processed()
    conversation = Conversation.objects.get(kind="comment", subject_id=VIDEO)
    assert conversation.provider == "tiktok_direct"

    # The list, filtered to comments, marks it; the thread shows the video and the comment.
    page = logged_in_page(stack, contexts, stack.agent, "/?kind=comment")
    row = page.locator(f'.conv-row[data-id="{conversation.pk}"]')
    expect(row.locator(".kind-chip")).to_have_text("💬 Comment")
    expect(page.locator("#kind-filter")).to_have_value("comment")
    row.locator(".row-link").click()
    expect(page.locator("body")).to_have_attribute("data-thread-ready", str(conversation.pk))
    banner = page.locator("#subject-banner")
    expect(banner).to_contain_text(VIDEO)
    expect(banner.get_by_role("link", name="View on TikTok")).to_have_attribute(
        "href", f"https://www.tiktok.com/@e2e_shop/video/{VIDEO}"
    )
    expect(page.locator(".msg-in .msg-text").first).to_have_text("Does it come in green?")
    expect(page.locator("#window-countdown")).to_contain_text("no reply window")
    expect(page.locator("#image-label")).to_be_hidden()

    # TikTok's 150-character limit in the composer: too long cannot be sent.
    page.fill("#composer-text", "x" * 151)
    expect(page.locator("#char-counter")).to_contain_text("151 / 150")
    expect(page.locator("#send-button")).to_be_disabled()

    text = "Yes! Green arrives next week."
    page.fill("#composer-text", text)
    page.press("#composer-text", "Enter")
    out = page.locator(".msg-out", has_text=text)
    expect(out.locator(".ticks")).to_have_attribute("data-status", "accepted")
    shot(page, "comment-answered.png")

    replies = [s for s in tiktok.state()["sent"] if s.get("kind") == "comment_reply"]
    assert [r["body"] for r in replies] == [
        {"business_id": BUSINESS, "video_id": VIDEO, "comment_id": commented["comment_id"], "text": text}
    ]
    message = Message.objects.get(conversation=conversation, text=text)
    assert message.provider_status["messageId"] == replies[0]["message_id"]

    # At 390 px the list still marks it.
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(stack.web_url + "/?kind=comment")
    expect(page.locator(f'.conv-row[data-id="{conversation.pk}"] .kind-chip')).to_be_visible()
