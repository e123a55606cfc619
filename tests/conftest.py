from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from inbox.models import Inbox
from tiktok_channel.models import InfobipAccount, TikTokSender


@pytest.fixture(scope="session", autouse=True)
def _clock_shifted():
    """TEST_CLOCK_SHIFT_DAYS=N runs the session with the wall clock N days ahead, still ticking (CI: 365), to prove
    that no test depends on today's date.

    time-machine shifts what Python reads as the date (datetime, time.time) in this process; monotonic clocks
    keep running, so timeouts and waits behave. libfaketime cannot do this here: with the monotonic clock shifted
    Python's timed waits (Event.wait, Lock.acquire with a timeout) hang, without it time.sleep fails (EINVAL).
    """
    days = int(os.environ.get("TEST_CLOCK_SHIFT_DAYS") or 0)
    if not days:
        yield
        return
    import time_machine

    with time_machine.travel(datetime.now(UTC) + timedelta(days=days), tick=True):
        yield


@pytest.fixture
def client():
    """pytest-django's `client`, with the production WSGI app's dispatch: every webhook test goes through the short
    middleware list production serves webhooks with."""
    from django.test.client import Client

    from config.handlers import client_handler

    test_client = Client()
    test_client.handler = client_handler()
    return test_client


@pytest.fixture(autouse=True)
def _fresh_lookup_caches():
    """Ids repeat across tests (rolled back): never let a cached account or sender leak into the next test."""
    from tiktok_channel.infobip_webhooks import clear_lookup_caches

    clear_lookup_caches()
    yield
    clear_lookup_caches()


@pytest.fixture(autouse=True)
def _domain_events_match_their_schemas(monkeypatch):
    """Every domain event any service emits in any test is checked against its schema (as Zulip's
    event_schema). Collected events are available to tests through the `domain_events` fixture."""
    from inbox import domain_events

    emitted: list = []
    original = domain_events.emit

    def checked(*events):
        for event in events:
            domain_events.check(event)
        emitted.extend(events)
        original(*events)

    monkeypatch.setattr(domain_events, "emit", checked)
    return emitted


@pytest.fixture
def domain_events(_domain_events_match_their_schemas) -> list:
    """The domain events emitted so far in this test (each already checked against its schema)."""
    return _domain_events_match_their_schemas


@pytest.fixture
def inbox(db) -> Inbox:
    return Inbox.objects.create(name="Support")


@pytest.fixture
def make_account(db, inbox):
    """An Infobip account with one sender; keyword arguments override account fields."""
    counter = iter(range(1, 10_000))

    def make(*, sender_id: str | None = None, **fields) -> InfobipAccount:
        n = next(counter)
        values = {
            "name": f"Account {n}",
            "base_url": "https://xyz.api.infobip.com",
            "api_key": f"api-key-{n}-0123456789abcdef",
            "webhook_auth": "hmac",
            "webhook_secret": f"hmac-secret-{n}",
        }
        values.update(fields)
        account = InfobipAccount.objects.create(**values)
        TikTokSender.objects.create(account=account, business_account_id=sender_id or f"biz-{n}", inbox=inbox)
        return account

    return make


@pytest.fixture
def agent(db, django_user_model, inbox):
    user = django_user_model.objects.create_user("agent1", password="agent-pass-123")
    inbox.members.add(user)
    return user


@pytest.fixture
def account(make_account):
    """An HMAC account whose sender `biz-1` feeds the `inbox` fixture (as in the JSON fixtures)."""
    return make_account(sender_id="biz-1")


@pytest.fixture
def live_events(monkeypatch):
    """Every live event sent, as (group, event); on-commit callbacks are run by the test."""
    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr("inbox.live.send_many", sent.extend)  # `send_now` is a `send_many` of one
    return sent
