"""Teams in the inbox list in real Chromium against the e2e stack: a rule hands a conversation to a team, the row
shows the team chip live (no reload), and the team filter narrows the list and stays in the address — at a
phone's width and on a desktop."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from inbox.automation import rules
from inbox.automation.models import Team
from tests.e2e.test_browser import browser, shot  # noqa: F401 - `browser` is a fixture
from tests.e2e.test_browser_workspace import DESKTOP, PHONE, pages  # noqa: F401 - `pages` is a fixture

pytestmark = [pytest.mark.e2e, pytest.mark.flaky(reruns=2, reruns_delay=1)]


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_a_rule_hands_a_conversation_to_a_team_shown_live_and_filterable(stack, pages, viewport):  # noqa: F811
    billing = Team.objects.create(inbox=stack.inbox, name="Billing")
    Team.objects.create(inbox=stack.inbox, name="Sales")
    rules.rule_create(
        inbox_id=stack.inbox.pk,
        name="Invoices to Billing",
        actor=None,
        event="message_received",
        no_reply_minutes=None,
        conditions=[{"attribute": "message_text", "operator": "contains", "value": "invoice"}],
        actions=[{"type": "assign_team", "team_id": billing.pk}],
    )
    stack.simulate_inbound("tt-plain", "Hello")
    stack.simulate_inbound("tt-bill", "Hello there")
    plain, bill = stack.conversation("tt-plain"), stack.conversation("tt-bill")
    page = pages(stack, path="/", viewport=viewport)
    bill_row = page.locator(f'.conv-row[data-id="{bill.pk}"]')
    expect(bill_row).to_be_visible()
    expect(page.locator(".conv-row .team-chip")).to_have_count(0)

    stack.simulate_inbound("tt-bill", "My invoice is wrong")  # the rule hands it to Billing
    expect(bill_row.locator(f'.team-chip[data-team="{billing.pk}"]')).to_have_text("👥 Billing")  # live
    expect(page.locator(f'.conv-row[data-id="{plain.pk}"] .team-chip')).to_have_count(0)

    team_filter = page.locator("#team-filter")
    expect(team_filter).to_be_visible()
    expect(team_filter.locator("option")).to_have_text(["All teams", "Billing", "Sales"])
    team_filter.select_option(label="Billing")
    expect(page.locator(".conv-row")).to_have_count(1)
    expect(bill_row).to_be_visible()
    expect(page).to_have_url(stack.web_url + f"/?team={billing.pk}")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # nothing sticks out
    shot(page, f"inbox-team-filter-{'phone' if viewport == PHONE else 'desktop'}.png")

    bill_row.click()  # the open conversation shows its team too
    expect(page.locator(f'#thread-labels .team-chip[data-team="{billing.pk}"]')).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.goto(stack.web_url + f"/?team={billing.pk}")  # the filter is in the address: a bookmark keeps it
    expect(page.locator("#team-filter")).to_have_value(str(billing.pk))
    expect(page.locator(".conv-row")).to_have_count(1)
    team_filter = page.locator("#team-filter")
    team_filter.select_option(label="Sales")
    expect(page.locator(".conv-row")).to_have_count(0)
    expect(page.locator("#list-empty")).to_be_visible()
