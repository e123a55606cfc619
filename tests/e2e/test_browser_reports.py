"""The Reports page in Chromium against the running stack: the figures it shows equal figures this test computes
from the raw rows (messages, audit log, CSAT surveys), after changing the range, the inbox, the team and the agent;
each chart's CSV is its table; the page fits a 390 px phone."""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone
from playwright.sync_api import Page, expect

from inbox.automation.csat import csat_rate, survey_token
from inbox.automation.models import CsatSurvey, InboxRouting, Team
from inbox.automation.rules import AUTOMATION_USERNAME
from inbox.models import AuditLog, Inbox, Message
from tests.e2e.test_browser import browser, shot  # noqa: F401 - `browser` is a fixture
from tests.inbox.reports_helpers import AD, TIKTOK_ME, Stream

pytestmark = [pytest.mark.e2e, pytest.mark.flaky(reruns=2, reruns_delay=1)]

BERLIN = ZoneInfo("Europe/Berlin")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}


def percentile_disc(values, fraction):
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def minutes(seconds) -> str:
    return f"{seconds / 60:.1f}"


@pytest.fixture
def open_reports(browser):  # noqa: F811 - the module-scoped fixture imported above
    contexts = []

    def new(stack, path: str = "/reports/", viewport=DESKTOP) -> Page:
        context = browser.new_context(viewport=viewport, locale="en-GB", timezone_id="UTC")
        context.set_default_timeout(10_000)
        contexts.append(context)
        context.add_cookies([stack.session_cookie()])
        page = context.new_page()
        page.goto(stack.web_url + path)
        expect(page.locator("#report-charts")).to_have_attribute("data-state", "ready")
        return page

    yield new
    for context in contexts:
        context.close()


def table(page: Page, chart: str) -> list[list[str]]:
    """The chart's table as the agent sees it: the header, then each row's cells."""
    return page.locator(f"#table-{chart}").evaluate("t => [...t.rows].map(r => [...r.cells].map(c => c.textContent))")


def wait_loaded(page: Page, **query) -> None:
    for key, value in query.items():
        expect(page.locator("#report-charts")).to_have_attribute("data-query", _contains(f"{key}={value}"))
    expect(page.locator("#report-charts")).to_have_attribute("data-state", "ready")


def _contains(text: str):
    import re

    return re.compile(re.escape(text))


def test_reports_page_shows_the_raw_rows_figures_filters_and_csv(stack, open_reports, django_user_model, monkeypatch):
    # The history is days old: its replies are not handed to the worker (it would find their windows closed and
    # fail them); they stay queued, as the rows the figures are computed from say.
    monkeypatch.setattr("inbox.outbox.schedule_send", lambda message_id, attempt_id=None: None)
    support = stack.inbox
    Inbox.objects.filter(pk=support.pk).update(time_zone="Europe/Berlin")
    support.refresh_from_db()
    sales = Inbox.objects.create(name="E2E sales", time_zone="Europe/Berlin")
    sales.members.add(stack.agent)
    colleague = django_user_model.objects.create_user("colleague", password="pw", first_name="Cole")
    support.members.add(colleague)
    InboxRouting.objects.create(inbox=support, csat_enabled=True)
    billing = Team.objects.create(inbox=support, name="Billing")
    billing.members.add(colleague)
    s = Stream(support, endpoint_id=stack.business_id)
    t = Stream(sales, endpoint_id=stack.business_id)
    today = timezone.now().astimezone(BERLIN)
    start = today.replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=10)
    with time_machine.travel(start, tick=False) as clock:
        u0 = s.inbound("u0", 1, referral=AD)
        clock.shift(timedelta(minutes=12))
        s.reply(u0, stack.agent)
        clock.shift(timedelta(minutes=30))
        s.status(conversation_id=u0.pk, status="resolved", actor=stack.agent)
        clock.shift(timedelta(minutes=5))
        csat_rate(token=survey_token(CsatSurvey.objects.get(conversation=u0)), rating=5)  # on the public page
        clock.move_to(start + timedelta(days=2))
        u1, u2 = s.inbound("u1", 1), s.inbound("u2", 1)
        clock.shift(timedelta(minutes=7))
        s.reply(u1, colleague)
        clock.shift(timedelta(minutes=18))
        s.reply(u2, stack.agent)
        clock.move_to(start + timedelta(days=8))
        u3 = s.inbound("u3", 1, referral=TIKTOK_ME)
        v1 = t.inbound("v1", 1)
        clock.shift(timedelta(minutes=3))
        s.reply(u3, colleague)
        clock.shift(timedelta(minutes=37))
        t.reply(v1, stack.agent)
        s.status(conversation_id=u3.pk, status="resolved", actor=colleague)
        clock.shift(timedelta(minutes=20))
        csat_rate(token=survey_token(CsatSurvey.objects.get(conversation=u3)), rating=3)

    # The figures, from the raw rows: per local day of the support inbox.
    def day(at):
        return at.astimezone(BERLIN).date().isoformat()

    support_messages = Message.objects.filter(conversation__inbox=support)
    expected_in = Counter(day(m.created_at) for m in support_messages.filter(direction="in"))
    # Agents' replies: not the automation's CSAT questions.
    replies = support_messages.filter(direction="out").exclude(author__username=AUTOMATION_USERNAME)
    assert support_messages.filter(direction="out", author__username=AUTOMATION_USERNAME).count() == 2
    expected_out = Counter(day(m.queued_at) for m in replies)
    expected_opened = Counter(day(c.created_at) for c in support.conversations.all())
    expected_resolved = Counter(
        day(a.created_at) for a in AuditLog.objects.filter(conversation__inbox=support, action="conversation.resolved")
    )
    samples = []
    for conversation in support.conversations.all():
        first_in = conversation.messages.filter(direction="in").order_by("created_at").first().created_at
        reply = replies.filter(conversation=conversation).order_by("queued_at").first()
        samples.append(((reply.queued_at - first_in).total_seconds(), reply.author_id))
    assert sorted(s for s, _ in samples) == [3 * 60, 7 * 60, 12 * 60, 25 * 60]

    since, until = start.date().isoformat(), today.date().isoformat()
    page = open_reports(stack, f"/reports/?since={since}&until={until}&inbox={support.pk}")
    rows = {row[0]: row for row in table(page, "volume")[1:]}
    assert len(rows) == 11
    for name, cells in rows.items():
        assert cells[1:] == [
            str(expected_opened[name]),
            str(expected_resolved[name]),
            str(expected_in[name]),
            str(expected_out[name]),
        ], name
    all_seconds = [seconds for seconds, _ in samples]
    expect(page.locator('#chart-response-times [data-total="first_response_median"]')).to_have_text(
        minutes(percentile_disc(all_seconds, 0.5))
    )
    expect(page.locator('#chart-response-times [data-total="first_response_p90"]')).to_have_text(
        minutes(percentile_disc(all_seconds, 0.9))
    )
    page.screenshot(path=str(shot(page, "reports-desktop.png")), full_page=True)
    sources = {row[0] + row[1]: row for row in table(page, "sources")[1:]}
    assert sources["Adad-7"][3] == "1" and sources["TikTok.me linkspring-promo"][3] == "1"
    assert sources["Organic"][3] == "2"

    # CSAT, from the surveys: per rating, and per agent of the resolution rated (both unassigned: the resolver).
    ratings = {survey.rating: survey for survey in CsatSurvey.objects.filter(conversation__inbox=support, rating__gt=0)}
    assert sorted(ratings) == [3, 5]
    resolver = {
        a.conversation_id: a.actor
        for a in AuditLog.objects.filter(conversation__inbox=support, action="conversation.resolved")
    }
    assert table(page, "csat")[1:] == [
        [str(r), "1" if r in ratings else "0", "50.0" if r in ratings else "0.0"] for r in range(5, 0, -1)
    ]
    expect(page.locator('#chart-csat [data-total="average"]')).to_have_text("4.00")  # (5 + 3) / 2
    expect(page.locator('#chart-csat [data-total="satisfied"]')).to_have_text("50.0")  # 4 or 5 stars
    expect(page.locator("#chart-csat svg")).to_be_visible()
    per_agent = sorted(
        (resolver[s.conversation_id].first_name or resolver[s.conversation_id].username, s.rating)
        for s in ratings.values()
    )
    assert sorted((row[0], row[1], row[2]) for row in table(page, "csat-agents")[1:]) == [
        (name, "1", f"{rating:.2f}") for name, rating in per_agent
    ]

    # The teams chart: Billing's replies are Cole's.
    teams = {row[0]: row for row in table(page, "teams")[1:]}
    assert teams["Billing"][3] == str(replies.filter(author=colleague).count()) == "2"

    # The team filter: Billing is Cole alone.
    page.select_option("#filter-team", str(billing.pk))
    wait_loaded(page, team=billing.pk)
    assert [row[0] for row in table(page, "agents")[1:]] == ["Cole"]
    assert [row[:3] for row in table(page, "csat-agents")[1:]] == [["Cole", "1", "3.00"]]
    page.select_option("#filter-team", "")

    # The agent filter: only Cole's replies and first responses.
    page.select_option("#filter-agent", str(colleague.pk))
    wait_loaded(page, agent=colleague.pk)
    cole = [seconds for seconds, author in samples if author == colleague.pk]
    expect(page.locator('#chart-response-times [data-total="first_response_median"]')).to_have_text(
        minutes(percentile_disc(cole, 0.5))
    )
    expect(page.locator('#chart-volume [data-total="messages_out"]')).to_have_text(str(len(cole)))
    assert [row[0] for row in table(page, "agents")[1:]] == ["Cole"]

    # The last 7 days, every inbox, every agent: only the eighth day's conversations (u3, and v1 in sales).
    page.select_option("#filter-agent", "")
    page.select_option("#filter-inbox", "")
    page.get_by_role("button", name="7 days").click()
    week_start = (timezone.localdate() - timedelta(days=6)).isoformat()  # the server's today (TIME_ZONE)
    wait_loaded(page, since=week_start)
    expect(page.locator("#report-charts")).not_to_have_attribute("data-query", _contains("inbox="))
    expect(page.locator('#chart-volume [data-total="opened"]')).to_have_text("2")
    expect(page.locator('#chart-response-times [data-total="first_response_p90"]')).to_have_text(minutes(40 * 60))

    # The sales inbox alone.
    page.select_option("#filter-inbox", str(sales.pk))
    wait_loaded(page, inbox=sales.pk)
    expect(page.locator('#chart-volume [data-total="opened"]')).to_have_text("1")
    expect(page.locator('#chart-response-times [data-total="first_response_median"]')).to_have_text("40.0")

    # Each chart's CSV is its table.
    for chart in ["volume", "response-times", "heatmap", "agents", "sources", "teams", "csat", "csat-agents"]:
        href = page.locator(f"#chart-{chart} .csv-link").get_attribute("href")
        answer = page.request.get(stack.web_url + href)
        assert answer.ok and answer.headers["content-type"].startswith("text/csv")
        assert list(csv.reader(io.StringIO(answer.text()))) == table(page, chart), chart

    # A phone: the page fits 390 px; the tables scroll inside their cards.
    phone = open_reports(stack, f"/reports/?since={since}&until={until}", viewport=PHONE)
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    expect(phone.locator("#chart-volume svg")).to_be_visible()
    assert phone.locator("#chart-volume svg").bounding_box()["width"] <= PHONE["width"]
    expect(phone.locator("#filter-agent")).to_be_visible()
    phone.screenshot(path=str(shot(phone, "reports-phone.png")), full_page=True)


def test_a_bad_range_is_shown_with_its_reason(stack, open_reports):
    page = open_reports(stack)
    page.fill("#filter-since", "2020-01-01")
    page.locator("#filter-since").dispatch_event("change")
    expect(page.locator("#report-error")).to_contain_text("at most 366 days")
