"""A direct TikTok account waiting for re-authorization, as people see it in Chromium at phone width: staff get the
banner with Reconnect, the agent's composer is locked with the reason (the whole flow through the TikTok sandbox, at
desktop width: test_direct_e2e.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from inbox.events import InboundMessage
from inbox.services import message_receive
from tests.e2e.test_browser import browser, shot, wait_until_open  # noqa: F401 - `browser` is a fixture
from tiktok_channel.direct.models import TikTokApp, TikTokConnection

pytestmark = [pytest.mark.e2e, pytest.mark.flaky(reruns=2, reruns_delay=1)]
PHONE = {"width": 390, "height": 844}


def open_page(browser, stack, user, path):  # noqa: F811
    context = browser.new_context(viewport=PHONE, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(10_000)
    context.add_cookies([stack.session_cookie(user)])
    page = context.new_page()
    wait_until_open(page, stack, path)
    return context, page


def test_reauthorization_needed_banner_and_locked_composer_at_phone_width(stack, browser, django_user_model):  # noqa: F811
    app = TikTokApp.objects.create(
        name="Direct", client_key="k", client_secret="s", api_base_url="http://127.0.0.1:9", inbox=stack.inbox
    )
    TikTokConnection.objects.create(
        app=app,
        account_id="-000direct",
        display_name="Direct Shop",
        state=TikTokConnection.State.REAUTHORIZATION_NEEDED,
        last_error="TikTok refused the token refresh: 40107",
    )
    message, _ = message_receive(
        inbox_id=stack.inbox.pk,
        event=InboundMessage(
            channel="tiktok",
            endpoint_id="-000direct",
            channel_user_id="tt-dora",
            provider_message_id="direct-1",
            provider_conversation_id="tt-conv-dora",
            sent_at=timezone.now() - timedelta(minutes=1),
            type="text",
            text="Hello?",
            provider="tiktok_direct",
        ),
    )
    staff = django_user_model.objects.create_user("boss", password="boss-pass-123", is_staff=True, is_superuser=True)

    context, page = open_page(browser, stack, staff, "/")
    banner = page.locator("#connection-alerts")
    expect(banner).to_contain_text("Direct Shop")
    expect(banner).to_contain_text("must be reconnected")
    expect(banner.get_by_role("link", name="Reconnect")).to_have_attribute("href", app.connect_url)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "direct-reauthorization-banner-phone.png")
    # On a phone the page links and Sign out sit in the ☰ menu (the bar has no room for them).
    expect(page.locator("#logout-button")).to_be_hidden()
    page.locator("#topbar-menu > summary").click()
    menu = page.locator("#topbar-menu")
    for name in ("Reports", "Automation", "Connections", "Admin"):
        expect(menu.get_by_role("link", name=name)).to_be_visible()
    expect(menu.locator("#menu-logout-button")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    context.close()

    context, page = open_page(browser, stack, stack.agent, f"/c/{message.conversation_id}/")
    expect(page.locator("#connection-alerts")).to_have_count(0)  # agents are not asked to reconnect
    expect(page.locator("#composer-lock")).to_contain_text("must be reconnected by an admin")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "direct-reauthorization-composer-phone.png")
    context.close()
