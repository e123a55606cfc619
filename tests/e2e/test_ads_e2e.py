"""Issue 19's done-when, end to end: the product's ads side (`tiktok_channel/ads/`) against the Marketing API
sandbox (`tiktok_channel/ads/sandbox/`, a real HTTP server in this process), through the stack's real web server,
Celery worker and webhook processor, and Chromium.

A staff user connects an advertiser on the sandbox's consent page and chooses the account → creates a campaign, an
ad group and an image ad on the Ads page, enables and pauses the ad (the sandbox holds what was sent) → the metrics
beat runs on the worker (the DB holds the sandbox's report figures) → a 10,000-row customer file is hashed and
uploaded by the worker (only SHA-256 digests reach TikTok; no raw identifier in any request, table or log) → the
sandbox's review webhook rejects the ad, live on the page → the cost per conversation of DM-ad conversations that
came in through the Infobip webhook is the sandbox's spend divided by them. And: every Marketing API path the
client calls is answered by the sandbox.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from django.db import connection
from django.utils import timezone
from playwright.sync_api import Page, expect

from inbox.models import Conversation
from tests.e2e.conftest import Stack, wait_for
from tests.e2e.test_browser import ARTIFACTS, browser  # noqa: F401 - fixtures
from tests.tiktok_channel.ads.sandbox.conftest import png
from tests.tiktok_channel.webhooks import fixture, signed_headers, webhook_path
from tiktok_channel.ads import client
from tiktok_channel.ads.models import Ad, AdAccount, AdGroup, AdMetricDaily, Campaign, CustomAudience
from tiktok_channel.ads.sandbox.behaviour import AdsBehaviour
from tiktok_channel.ads.sandbox.server import AdsSandboxServer
from tiktok_channel.ads.sandbox.state import AdsSandbox
from tiktok_channel.ads.tasks import sync_all_metrics

expect.set_options(timeout=20_000)
pytestmark = [pytest.mark.e2e]

APP_ID = "7300000000000000777"
SECRET = "e2e-ads-secret-0123456789abcdef"
ADVERTISER = "7012345678901234567"
OTHER_ADVERTISER = "7012345678901234999"
API = "/open_api/v1.3"
HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass
class Ads:
    server: AdsSandboxServer

    @property
    def url(self) -> str:
        return self.server.url

    def get(self, path: str) -> dict:
        response = requests.get(f"{self.url}{path}", timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def state(self) -> dict:
        return self.get("/sandbox/state")

    def requests_logged(self) -> list[dict]:
        return self.get("/sandbox/requests")["requests"]

    def api_get(self, path: str, params: dict, token: str) -> dict:
        query = {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in params.items()}
        response = requests.get(f"{self.url}{API}/{path}/", params=query, headers={"Access-Token": token}, timeout=10)
        body = response.json()
        assert body["code"] == 0, body
        return body["data"]


def _restart(stack: Stack, extra: dict[str, str]) -> None:
    """The web server and worker read the Marketing API settings at start: run them again with these."""
    stack.stop()
    stack.extra_worker_env = extra
    stack.start(processor=False)


@pytest.fixture(scope="module")
def ads_server(e2e_stack_processes: Stack) -> Iterator[AdsSandboxServer]:
    """The ads sandbox on a free port; the stack's processes restarted pointing at it (and back after)."""
    server = AdsSandboxServer(AdsSandbox(AdsBehaviour(webhook_retry_ms=200, webhook_timeout_s=10)))
    server.start()
    stack = e2e_stack_processes
    previous = dict(stack.extra_worker_env)
    _restart(
        stack,
        {
            "TIKTOK_MARKETING_API_BASE": f"{server.url}{API}",
            "TIKTOK_MARKETING_AUTH_URL": f"{server.url}/portal/auth",
            "TIKTOK_MARKETING_APP_ID": APP_ID,
            "TIKTOK_MARKETING_APP_SECRET": SECRET,
            "TIKTOK_MARKETING_THROTTLE_WAIT_SECONDS": "1",
        },
    )
    try:
        yield server
    finally:
        _restart(stack, previous)
        server.stop()


@pytest.fixture
def ads(ads_server: AdsSandboxServer, stack: Stack, settings) -> Ads:
    """Fresh sandbox state for the test: the app (redirect to our callback) and two advertisers."""
    ads_server.sandbox.close()
    sandbox = ads_server.sandbox = AdsSandbox(AdsBehaviour(webhook_retry_ms=200, webhook_timeout_s=10))
    sandbox.add_app(
        {"app_id": APP_ID, "secret": SECRET, "name": "E2E Ads", "redirect_uri": f"{stack.web_url}/ads/callback/"}
    )
    sandbox.add_advertiser(
        {"advertiser_id": ADVERTISER, "advertiser_name": "E2E Shop", "currency": "EUR", "timezone": "UTC"}
    )
    sandbox.add_advertiser({"advertiser_id": OTHER_ADVERTISER, "advertiser_name": "E2E Outlet", "currency": "EUR"})
    # This process's own calls (none in the flow; the endpoint test) go to the sandbox too.
    settings.TIKTOK_MARKETING_API_BASE = f"{ads_server.url}{API}"
    settings.TIKTOK_MARKETING_APP_ID = APP_ID
    settings.TIKTOK_MARKETING_APP_SECRET = SECRET
    return Ads(ads_server)


def submit(page: Page, form_selector: str, button: str) -> None:
    page.locator(form_selector).get_by_role("button", name=button).click()
    page.wait_for_load_state()


def dm_from_ad(stack: Stack, user: str, ad_id: str) -> None:
    """A TikTok user writes from the ad's DM button: an Infobip inbound webhook with the ad's referral."""
    payload = copy.deepcopy(fixture("inbound_referral_ad"))
    item = payload["results"][0]
    item.update(sender=user, to=stack.business_id, messageId=f"ad-msg-{user}")
    item["receivedAt"] = timezone.now().strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    item["message"].update(conversationId=user, adId=ad_id)
    body = json.dumps(payload).encode()
    response = requests.post(
        f"{stack.web_url}{webhook_path(stack.account)}",
        data=body,
        headers={"Content-Type": "application/json", **signed_headers(stack.account, body)},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def database_text() -> str:
    """Every row of every table, as text (the "dump" the raw identifiers must not be in)."""
    parts = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 - our own table names
            parts.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(parts)


@pytest.mark.flaky(reruns=1, reruns_delay=1)  # a browser on a loaded 2-core machine, as every browser test here
def test_connect_create_pause_sync_audience_review_and_cost_per_conversation(
    stack,
    ads,
    browser,  # noqa: F811
    django_user_model,
):
    staff = django_user_model.objects.create_user("ads-boss", password="x-boss-pass-123", is_staff=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB", timezone_id="UTC")
    try:
        context.add_cookies([stack.session_cookie(staff)])
        page = context.new_page()

        # 1. Connect through the sandbox's consent page (state checked on our callback), then choose the account.
        page.goto(f"{stack.web_url}/ads/")
        page.get_by_role("link", name="Connect an advertiser").click()
        expect(page.locator("h1")).to_contain_text("E2E Ads would like to manage your TikTok ad accounts")
        assert page.url.startswith(f"{ads.url}/portal/auth")
        page.get_by_role("button", name="Authorize").click()
        expect(page.locator(".ads-message")).to_contain_text("Connected: 2 advertiser account(s)")
        assert page.url.startswith(f"{stack.web_url}/ads/")
        account = AdAccount.objects.get(advertiser_id=ADVERTISER)
        assert (account.name, account.currency, account.timezone) == ("E2E Shop", "EUR", "UTC")
        token = account.authorization.access_token
        assert [t["token"] for t in ads.state()["tokens"]] == [token]
        page.locator(f'input[name="in_use"][value="{account.pk}"]').check()
        submit(page, 'form[action="/ads/accounts/"]', "Save accounts in use")
        account.refresh_from_db()
        assert account.in_use and not AdAccount.objects.get(advertiser_id=OTHER_ADVERTISER).in_use

        # 2. Campaign → ad group → ad with an uploaded image, through the page's forms; then enable and pause it.
        form = 'form[action="/ads/campaigns/"]'
        page.locator(f"{form} [name=name]").fill("Spring leads")
        page.locator(f"{form} [name=objective_type]").select_option("LEAD_GENERATION")
        page.locator(f"{form} [name=budget_mode]").select_option("BUDGET_MODE_DAY")
        page.locator(f"{form} [name=budget]").fill("100.00")
        submit(page, form, "Create campaign (paused)")
        campaign = Campaign.objects.get(name="Spring leads")
        held = {c["campaign_id"]: c for c in ads.state()["campaigns"]}[campaign.campaign_id]
        assert (held["campaign_name"], held["objective_type"], held["budget_mode"]) == (
            "Spring leads",
            "LEAD_GENERATION",
            "BUDGET_MODE_DAY",
        )
        assert Decimal(str(held["budget"])) == Decimal("100") and held["advertiser_id"] == ADVERTISER

        card = f"#campaign-{campaign.pk}"
        page.locator(f"{card} > details.ads-new summary").click()
        form = f'form[action="/ads/campaigns/{campaign.pk}/adgroups/"]'
        page.locator(f"{form} [name=name]").fill("UK 18-34")
        page.locator(f"{form} [name=location_ids]").fill("2635167")
        page.locator(f'{form} [name=age_groups][value="AGE_18_24"]').check()
        page.locator(f'{form} [name=age_groups][value="AGE_25_34"]').check()
        page.locator(f"{form} [name=budget_mode]").select_option("BUDGET_MODE_DAY")
        page.locator(f"{form} [name=budget]").fill("50.00")
        submit(page, form, "Create ad group (paused)")
        adgroup = AdGroup.objects.get(campaign=campaign)
        held = {g["adgroup_id"]: g for g in ads.state()["adgroups"]}[adgroup.adgroup_id]
        assert held["campaign_id"] == campaign.campaign_id and held["adgroup_name"] == "UK 18-34"
        assert held["location_ids"] == ["2635167"] and held["age_groups"] == ["AGE_18_24", "AGE_25_34"]
        assert Decimal(str(held["budget"])) == Decimal("50")

        page.locator(f"{card} .ads-adgroup details.ads-new summary").click()
        form = f'form[action="/ads/adgroups/{adgroup.pk}/ads/"]'
        image = png(64, 48)
        page.locator(f"{form} [name=name]").fill("Ask us")
        page.locator(f"{form} [name=ad_text]").fill("Ask us anything")
        page.locator(f"{form} [name=call_to_action]").select_option("CONTACT_US")
        page.locator(f"{form} [name=landing_page_url]").fill("https://example.com/spring")
        page.locator(f"{form} [name=identity_id]").fill("7000000000000000001")
        page.locator(f"{form} [name=image]").set_input_files(
            files=[{"name": "creative.png", "mimeType": "image/png", "buffer": image}]
        )
        submit(page, form, "Create ad")
        expect(page.locator(".ads-message")).to_contain_text("in review, paused")
        ad = Ad.objects.get(adgroup=adgroup)
        held = {a["ad_id"]: a for a in ads.state()["ads"]}[ad.ad_id]
        assert held["adgroup_id"] == adgroup.adgroup_id
        assert (held["ad_name"], held["ad_text"]) == ("Ask us", "Ask us anything")
        assert held["call_to_action"] == "CONTACT_US" and held["landing_page_url"] == "https://example.com/spring"
        assert held["image_ids"] == [ad.image_id]
        assert requests.get(f"{ads.url}/sandbox/images/{ad.image_id}", timeout=10).content == image
        # The review subscription (a worker task after commit) names our webhook.
        hook = f"{stack.web_url}/webhooks/tiktok-ads/e2e-ads-hook/"
        wait_for(
            lambda: [s for s in ads.state()["subscriptions"] if s["object_id"] == ad.ad_id and s["url"] == hook],
            20,
            "the ad's review subscription",
        )

        # The campaign and ad group were created paused: enable them on the page, then the ad, then pause the ad.
        for level, row_pk, object_id in (
            ("campaign", campaign.pk, campaign.campaign_id),
            ("adgroup", adgroup.pk, adgroup.adgroup_id),
        ):
            submit(page, f'form[action="/ads/{level}/{row_pk}/status/"]', "Enable")
            assert {o[f"{level}_id"]: o for o in ads.state()[f"{level}s"]}[object_id]["operation_status"] == "ENABLE"
        row = page.locator(f'.ads-ad[data-ad-id="{ad.ad_id}"]')
        if ad.operation_status != "ENABLE":
            row.get_by_role("button", name="Enable").click()
            page.wait_for_load_state()
            assert {a["ad_id"]: a for a in ads.state()["ads"]}[ad.ad_id]["operation_status"] == "ENABLE"
        row.get_by_role("button", name="Pause").click()
        expect(page.locator(".ads-message")).to_contain_text("Ask us: paused")
        assert {a["ad_id"]: a for a in ads.state()["ads"]}[ad.ad_id]["operation_status"] == "DISABLE"
        ad.refresh_from_db()
        assert ad.operation_status == "DISABLE"

        # 3. The metrics beat on the real worker: the DB holds the sandbox report's strings, day by day.
        sync_all_metrics.delay()
        days = wait_for(
            lambda: AdMetricDaily.objects.filter(ad=ad).count() >= 7 and AdMetricDaily.objects.filter(ad=ad).count(),
            30,
            "7 days of metrics",
        )
        report = ads.api_get(
            "report/integrated/get",
            {
                "advertiser_id": ADVERTISER,
                "report_type": "BASIC",
                "data_level": "AUCTION_AD",
                "dimensions": ["ad_id", "stat_time_day"],
                "metrics": ["spend", "impressions", "clicks", "conversion"],
                "start_date": min(m.date for m in AdMetricDaily.objects.filter(ad=ad)).isoformat(),
                "end_date": max(m.date for m in AdMetricDaily.objects.filter(ad=ad)).isoformat(),
                "page_size": 1000,
            },
            token,
        )
        expected = {
            r["dimensions"]["stat_time_day"][:10]: (
                Decimal(r["metrics"]["spend"]),
                int(r["metrics"]["impressions"]),
                int(r["metrics"]["clicks"]),
                int(r["metrics"]["conversion"]),
            )
            for r in report["list"]
            if r["dimensions"]["ad_id"] == ad.ad_id
        }
        stored = {
            m.date.isoformat(): (m.spend, m.impressions, m.clicks, m.conversions)
            for m in AdMetricDaily.objects.filter(ad=ad)
        }
        assert len(stored) == days == len(expected) and stored == expected
        assert len({v[1] for v in stored.values()}) == days  # the sandbox's figures grow day by day

        # 4. A 10,000-row customer file through the page; the worker uploads only SHA-256 digests.
        marker = secrets.token_hex(4)
        emails = [f"Person.{i}.{marker}@Example.org" for i in range(9_950)]
        bad = [f"not an email {marker} {i}" for i in range(50)]
        lines = ["email", *emails[:5_000], *bad, *emails[5_000:]]
        form = 'form[action="/ads/audiences/"]'
        page.locator(f"{form} [name=name]").fill("Newsletter")
        page.locator(f"{form} [name=kind]").select_option("email")
        page.locator(f"{form} [name=file]").set_input_files(
            files=[{"name": "audience.csv", "mimeType": "text/csv", "buffer": ("\n".join(lines) + "\n").encode()}]
        )
        submit(page, form, "Hash and upload")
        expect(page.locator(".ads-message")).to_contain_text("9950 valid, 50 bad of 10000 rows")
        audience = CustomAudience.objects.get(name="Newsletter")
        wait_for(
            lambda: CustomAudience.objects.get(pk=audience.pk).status == CustomAudience.Status.UPLOADED,
            60,
            "the audience to be uploaded",
        )
        audience.refresh_from_db()
        assert (audience.rows_total, audience.rows_valid, audience.rows_bad) == (10_000, 9_950, 50)
        assert audience.audience_id and not audience.pending_hashes
        # And phone numbers: international ones normalized to digits with the country code; national ones are bad
        # rows (no default country code is set).
        phones = [f"+44 7700 9{i:05d}" for i in range(1_180)]
        bad_phones = [f"0{i} {marker}" for i in range(20)]
        page.locator(f"{form} [name=name]").fill("Callers")
        page.locator(f"{form} [name=kind]").select_option("phone")
        page.locator(f"{form} [name=file]").set_input_files(
            files=[
                {
                    "name": "phones.csv",
                    "mimeType": "text/csv",
                    "buffer": ("\n".join(["phone", *bad_phones, *phones]) + "\n").encode(),
                }
            ]
        )
        submit(page, form, "Hash and upload")
        expect(page.locator(".ads-message")).to_contain_text("1180 valid, 20 bad of 1200 rows")
        callers = CustomAudience.objects.get(name="Callers")
        wait_for(
            lambda: CustomAudience.objects.get(pk=callers.pk).status == CustomAudience.Status.UPLOADED,
            60,
            "the phone audience to be uploaded",
        )
        callers.refresh_from_db()
        assert (callers.rows_total, callers.rows_valid, callers.rows_bad) == (1_200, 1_180, 20)

        files = {f["calculate_type"]: f for f in ads.get("/sandbox/audience_files")["files"]}
        assert sorted(files) == ["EMAIL_SHA256", "PHONE_SHA256"] and all(f["accepted"] for f in files.values())
        for file in files.values():
            assert all(HEX64.fullmatch(r) for r in file["rows"])
        assert set(files["EMAIL_SHA256"]["rows"]) == {hashlib.sha256(e.lower().encode()).hexdigest() for e in emails}
        assert set(files["PHONE_SHA256"]["rows"]) == {
            hashlib.sha256(re.sub(r"\D", "", p).encode()).hexdigest() for p in phones
        }
        held = {a["custom_audience_id"]: a for a in ads.state()["audiences"]}
        assert (held[audience.audience_id]["size"], held[audience.audience_id]["name"]) == (9_950, "Newsletter")
        assert held[callers.audience_id]["size"] == 1_180
        logged = json.dumps(ads.requests_logged())
        dumped = database_text()
        processes = stack.logs("web") + stack.logs("worker")
        for raw in [*emails[::199], *bad[::7], *phones[::97], *bad_phones[::3]]:
            for where, text in (("the sandbox's request log", logged), ("the database", dumped)):
                assert raw not in text and raw.lower() not in text, f"{raw!r} in {where}"
            assert raw not in processes and raw.lower() not in processes, f"{raw!r} in a process log"
        assert marker not in logged and marker not in dumped and marker not in processes

        # 5. The sandbox's review webhook rejects the ad: our webhook, the processor, live on the page.
        page.goto(f"{stack.web_url}/ads/")
        expect(page.locator("body")).to_have_attribute("data-live", "open")
        badge = page.locator(f'[data-ad-review="{ad.ad_id}"]')
        expect(badge).to_have_text("In review")
        review = requests.post(
            f"{ads.url}/sandbox/review",
            json={"ad_id": ad.ad_id, "decision": "reject", "reject_reason": "Misleading claim"},
            timeout=30,
        )
        assert review.status_code == 200, review.text
        expect(badge).to_have_text("Rejected")  # without a reload
        deliveries = ads.get("/sandbox/webhooks")["webhooks"]
        assert any(d.get("url") == hook and d.get("status") == 200 for d in deliveries), deliveries
        ad.refresh_from_db()
        assert ad.review_status == Ad.Review.REJECTED and ad.reject_reason == "Misleading claim"

        # 6. DM-ad conversations through the Infobip webhook; the cost per conversation is the sandbox's spend.
        for user in ("tt-ad-1", "tt-ad-2", "tt-ad-3"):
            dm_from_ad(stack, user, ad.ad_id)
        wait_for(lambda: Conversation.objects.filter(referral__ad_id=ad.ad_id).count() == 3, 20, "3 conversations")
        spend = sum((v[0] for v in expected.values()), Decimal(0))
        page.goto(f"{stack.web_url}/ads/")
        row = page.locator(f'.ads-ad[data-ad-id="{ad.ad_id}"]')
        expect(row.locator(".ads-cpc")).to_have_text(f"{(spend / 3).quantize(Decimal('0.01'))} EUR")
        expect(row.locator('[data-label="Conversations"]')).to_have_text("3")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "ads-e2e.png"), full_page=True)
    finally:
        context.close()

    # Every Marketing API path the client calls was called in this flow (APPEND only follows a retry).
    called = {r["path"].removeprefix(API).strip("/") for r in ads.requests_logged()}
    assert client_paths() - {"dmp/custom_audience/update"} <= called, client_paths() - called


def client_paths() -> set[str]:
    """Every Marketing API path `tiktok_channel/ads/client.py` calls, read from its source."""
    source = Path(client.__file__).read_text()
    paths = set(re.findall(r'"(?:GET|POST)",\s*"([a-z0-9_/]+)"', source))
    paths |= set(client.STATUS_PATHS.values())
    return paths


def test_every_path_the_client_calls_is_answered_by_the_sandbox(settings):
    """Not a 404 ("no route"): each path the client calls is one the sandbox serves (checked with the client's
    own `call`, so a refusal raises MarketingError with TikTok's code and an unknown route a 404)."""
    sandbox = AdsSandbox(AdsBehaviour())
    sandbox.add_app({"app_id": APP_ID, "secret": SECRET, "name": "E2E Ads", "redirect_uri": "https://x.test/cb/"})
    server = AdsSandboxServer(sandbox)
    server.start()
    settings.TIKTOK_MARKETING_API_BASE = f"{server.url}{API}"
    try:
        called_paths(sandbox)
    finally:
        server.stop()


def called_paths(sandbox: AdsSandbox) -> None:
    paths = client_paths()
    assert len(paths) >= 15, paths  # the regex still finds the client's calls
    source = Path(client.__file__).read_text()
    for path in sorted(paths):
        method = "GET" if re.search(rf'"GET",\s*"{re.escape(path)}"', source) else "POST"
        try:
            client.call(method, path, token="not-a-token", json_body={} if method == "POST" else None)
        except client.MarketingError as exc:
            assert exc.status != 404 and exc.code != 40400, f"{method} {path}: {exc}"
    received = {r["path"].removeprefix(API).strip("/") for r in sandbox.received_requests()["requests"]}
    assert received == paths
