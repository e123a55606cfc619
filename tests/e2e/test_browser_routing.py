"""Routing and automation in real Chromium against the e2e stack: the public CSAT page (no login, a phone's width,
single-use and expiring link, the rating reaching the agent live) and agents' availability seen by a colleague."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from inbox.automation import assignment
from inbox.automation.csat import survey_token
from inbox.automation.models import AgentAvailability, CsatSurvey, InboxRouting
from inbox.models import Message
from tests.e2e.conftest import wait_for
from tests.e2e.test_browser import browser  # noqa: F401 - `browser` is a fixture
from tests.e2e.test_browser_workspace import PHONE, pages  # noqa: F401 - `pages` is a fixture

pytestmark = [pytest.mark.e2e, pytest.mark.flaky(reruns=2, reruns_delay=1)]


def test_the_customer_rates_on_the_public_page_and_the_agent_sees_it_live(stack, pages, browser):  # noqa: F811
    InboxRouting.objects.create(inbox=stack.inbox, csat_enabled=True)
    stack.simulate_inbound("tt-rita", "All sorted, thank you!")
    conversation = stack.conversation("tt-rita")
    agent_page = pages(stack, path=f"/c/{conversation.pk}/")
    agent_page.click("#resolve-button")
    question = wait_for(
        lambda: Message.objects.filter(conversation=conversation, direction="out", status="accepted").first(),
        20,
        "the CSAT question to be sent through the outbox",
    )
    link = re.search(r"(https?://\S+/csat/\S+/)", question.text).group(1)
    assert link.startswith(stack.web_url)

    customer = browser.new_context(viewport=PHONE, locale="en-GB")  # no session: the customer is nobody here
    try:
        page = customer.new_page()
        page.goto(link)
        expect(page.locator("h1")).to_have_text("How did we do?")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # fits 390 px
        page.click('label[for="rating-4"]')
        page.fill("#csat-comment", "Quick and friendly")
        page.click("#csat-submit")
        expect(page.locator("#csat-thanks")).to_be_visible()

        expect(agent_page.locator("#csat-rating")).to_contain_text("4/5")  # live, no reload
        expect(agent_page.locator("#csat-body")).to_contain_text("Quick and friendly")

        page.goto(link)  # single use
        expect(page.locator("#csat-unavailable")).to_contain_text("rated already")
        survey = CsatSurvey.objects.get(conversation=conversation)
        assert (survey.rating, survey.comment) == (4, "Quick and friendly")

        expired = CsatSurvey.objects.create(
            conversation=conversation,
            resolved_version=survey.resolved_version + 1,
            outcome="queued",
            expires_at=timezone.now() - timedelta(minutes=1),
        )
        response = page.goto(f"{stack.web_url}/csat/{survey_token(expired)}/")
        assert response.status == 410
        expect(page.locator("#csat-unavailable")).to_contain_text("expired")
        assert page.locator("#csat-form").count() == 0
    finally:
        customer.close()


def test_availability_is_chosen_in_the_top_bar_and_a_colleague_sees_it_and_offline_after_the_grace(
    stack,
    pages,  # noqa: F811 - the fixture imported above
    django_user_model,
):
    colleague = django_user_model.objects.create_user("colleague", password="colleague-pass-1")
    colleague.first_name = "Cleo"
    colleague.save()
    stack.inbox.members.add(colleague)
    stack.simulate_inbound("tt-ava", "Hello")
    conversation = stack.conversation("tt-ava")

    mine = pages(stack, path=f"/c/{conversation.pk}/")
    theirs = pages(stack, colleague, path="/")
    availability = theirs.locator("#availability")
    expect(availability).to_have_attribute("data-status", "online")  # a connected tab: present
    availability.select_option("busy")
    expect(availability).to_have_attribute("data-status", "busy")
    wait_for(lambda: AgentAvailability.objects.get(user=colleague).status == "busy", 10, "busy to be stored")

    picker = mine.locator("#assignee-select")
    picker.focus()
    expect(picker.locator('optgroup[label="Busy"] option', has_text="Cleo")).to_have_count(1)

    theirs.context.close()  # the colleague's last tab closes …
    row = AgentAvailability.objects.filter(user=colleague)
    wait_for(lambda: row.get().open_sockets == 0, 10, "the socket close to be recorded")
    later = row.get().last_disconnect_at + timedelta(seconds=61)
    assert assignment.presence_expire(now=later) == [colleague.pk]  # … and the beat runs after the grace period
    mine.locator("#thread-name").click()  # the menu loads afresh after the live hint
    picker.focus()
    expect(picker.locator('optgroup[label="Offline"] option', has_text="Cleo")).to_have_count(1)


def test_an_admin_creates_pauses_and_deletes_a_rule_on_the_automation_page(stack, browser, django_user_model):  # noqa: F811
    from inbox.automation.models import AutomationRule
    from inbox.models import Label

    admin = django_user_model.objects.create_superuser("boss", password="boss-pass-123")
    Label.objects.create(inbox=stack.inbox, name="vip")
    context = browser.new_context(viewport=PHONE, locale="en-GB", timezone_id="UTC")
    context.add_cookies([stack.session_cookie(admin)])
    page = context.new_page()
    page.goto(stack.web_url + "/automation/")
    page.select_option("#rule-inbox", label=stack.inbox.name)
    expect(page.locator("body")).to_have_attribute("data-catalogue", str(stack.inbox.pk))
    expect(page.locator("#rule-empty")).to_be_visible()
    page.fill("#rule-name", "VIP words")
    page.select_option("#rule-event", "message_received")
    page.click("#add-condition")
    row = page.locator(".condition-row").last
    row.locator(".condition-attribute").select_option("message_text")
    row.locator(".condition-operator").select_option("contains")
    row.locator(".condition-value").fill("gold member")
    action = page.locator(".action-row").last
    action.locator(".action-type").select_option("add_label")
    action.locator(".action-value").select_option("vip")
    page.click("#rule-save")
    expect(page.locator("#toasts")).to_contain_text("Rule created")
    item = page.locator(".rule-item", has_text="VIP words")
    expect(item).to_contain_text("message text contains “gold member”")
    rule = AutomationRule.objects.get(name="VIP words")
    assert rule.actions == [{"type": "add_label", "label": "vip"}] and rule.inbox_id == stack.inbox.pk

    stack.simulate_inbound("tt-gold", "I am a gold member!")
    conversation = stack.conversation("tt-gold")
    wait_for(lambda: conversation.labels.filter(name="vip").exists(), 10, "the rule to label the conversation")

    item.locator(".rule-toggle").click()
    expect(page.locator(".rule-item", has_text="VIP words")).to_contain_text("paused")
    assert AutomationRule.objects.get(pk=rule.pk).active is False
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator(".rule-item", has_text="VIP words").locator(".rule-delete").click()
    expect(page.locator("#rule-empty")).to_be_visible()
    assert not AutomationRule.objects.filter(pk=rule.pk).exists()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # fits 390 px
    context.close()
