"""The webhook's per-process account cache: a request costs one statement (the ledger's INSERT), and a secret rotated,
an account deactivated or moved to another authentication mode by any process counts from the very next request.

"Another process" is stood in for by `QuerySet.update()`, which sends no signal: this process's cache is not cleared
(the tests check that it still holds the old account), only the row in the database changes.
"""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from inbox.models import WebhookEvent
from inbox.webhooks import LEDGER_HEADERS, MetaHeaders, ledger_headers
from tiktok_channel import health
from tiktok_channel import infobip_webhooks as iw
from tiktok_channel.models import InfobipAccount

from .webhooks import fixture, post, with_message_id

pytestmark = pytest.mark.django_db
# The cache is kept on PostgreSQL only (its row version guards it); elsewhere (SQLite in development) every lookup
# is fresh: the answers below hold either way, the cache's own state is checked where there is one.
CACHED = connection.vendor == "postgresql"


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    """Health counters of this test's own (the signature-failure count)."""
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-cache-{uuid.uuid4().hex}"}}


@pytest.fixture(params=["deferred", "inline"])
def processing(request, settings):
    settings.WEBHOOK_PROCESSING = request.param
    return request.param


def cached(account: InfobipAccount) -> InfobipAccount | None:
    return iw._accounts.get(account.webhook_token)


def message(n: int) -> dict:
    return with_message_id(fixture("inbound_text"), f"cache-{n}")


def test_a_cached_account_costs_the_deferred_webhook_no_query(client, account, settings):
    settings.WEBHOOK_PROCESSING = "deferred"
    assert post(client, account, message(1)).status_code == 200  # loads and caches the account
    assert (cached(account) is not None) is CACHED
    with CaptureQueriesContext(connection) as queries:
        assert post(client, account, message(2)).status_code == 200
    assert len(queries) == (1 if CACHED else 2), [q["sql"] for q in queries]
    assert "INSERT INTO" in queries[-1]["sql"] and "inbox_webhookevent" in queries[-1]["sql"]
    assert WebhookEvent.objects.count() == 2


def test_a_secret_rotated_elsewhere_refuses_the_old_one_on_the_next_request(client, account, processing):
    assert post(client, account, message(1)).status_code == 200
    old = InfobipAccount.objects.get(pk=account.pk)
    InfobipAccount.objects.filter(pk=account.pk).update(webhook_secret="rotated-secret-0123456789")
    if CACHED:
        assert cached(account).webhook_secret == old.webhook_secret  # this process was not told

    response = post(client, old, message(2))  # signed with the old secret

    assert response.status_code == 401, response.content
    assert response.json()["code"] == "unauthenticated"
    assert WebhookEvent.objects.count() == 1
    if CACHED:
        assert cached(account).webhook_secret == "rotated-secret-0123456789"  # the cache took the current row
    assert health.account_health(account)["bad_signatures_last_hour"] == 1


def test_the_new_secret_is_accepted_at_once_while_the_cache_holds_the_old(client, account, processing):
    assert post(client, account, message(1)).status_code == 200
    InfobipAccount.objects.filter(pk=account.pk).update(webhook_secret="rotated-secret-0123456789")
    new = InfobipAccount.objects.get(pk=account.pk)
    if CACHED:
        assert cached(account).webhook_secret != new.webhook_secret

    assert post(client, new, message(2)).status_code == 200
    assert WebhookEvent.objects.count() == 2


def test_a_refused_signature_is_counted_once_with_a_cached_account(client, account, settings):
    settings.WEBHOOK_PROCESSING = "deferred"
    assert post(client, account, message(1)).status_code == 200
    assert post(client, account, message(2), signed=False).status_code == 401
    assert health.account_health(account)["bad_signatures_last_hour"] == 1


def test_an_account_deactivated_elsewhere_is_unknown_on_the_next_request(client, account, processing):
    assert post(client, account, message(1)).status_code == 200
    InfobipAccount.objects.filter(pk=account.pk).update(active=False)
    assert (cached(account) is not None) is CACHED

    response = post(client, account, message(2))

    assert response.status_code == 404 and response.json()["code"] == "unknown_webhook"
    assert WebhookEvent.objects.count() == 1
    assert cached(account) is None


def test_an_auth_mode_changed_elsewhere_applies_on_the_next_request(client, account, processing):
    assert post(client, account, message(1)).status_code == 200
    InfobipAccount.objects.filter(pk=account.pk).update(
        webhook_auth=InfobipAccount.AuthMode.BASIC, basic_username="infobip", basic_password="pw-0123456789"
    )
    old_mode = post(client, account, message(2))  # still an HMAC signature
    assert old_mode.status_code == 401
    basic = InfobipAccount.objects.get(pk=account.pk)
    assert post(client, basic, message(3)).status_code == 200
    assert WebhookEvent.objects.count() == 2


def test_an_unchanged_row_passes_the_guard_and_a_changed_one_does_not(account):
    loaded = iw.account_for_token(account.webhook_token, fresh=True)
    guard = iw.account_guard(loaded)
    if not CACHED:  # nothing cached, nothing to guard
        assert guard is None
        return
    sql, params = guard
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT EXISTS (SELECT 1 {sql})", params)
        assert cursor.fetchone()[0] is True
        InfobipAccount.objects.filter(pk=account.pk).update(name="renamed")  # any change: a new row version
        cursor.execute(f"SELECT EXISTS (SELECT 1 {sql})", params)
        assert cursor.fetchone()[0] is False


def test_ledger_headers_from_the_environ_equal_the_allow_list_of_request_headers():
    request = RequestFactory().post(
        "/webhooks/infobip/tiktok/t/",
        b"{}",
        content_type="application/json",
        headers={
            "X-Request-Id": "r-1",
            "User-Agent": "Infobip",
            "X-Hub-Signature": "secret",
            "Authorization": "Basic c2VjcmV0",
            "Cookie": "a=b",
            "X-Forwarded-For": "10.0.0.1",
        },
    )
    expected = {
        name: value
        for name, value in request.headers.items()
        if name.lower() in LEDGER_HEADERS and name.lower() != "x-hub-signature"
    }
    assert ledger_headers(request, hidden="X-Hub-Signature") == expected
    assert "X-Request-Id" in expected and "Authorization" not in expected


def test_meta_headers_read_like_request_headers():
    request = RequestFactory().post(
        "/", b"{}", content_type="application/json", headers={"X-Bench-Secret": "s", "Authorization": "Basic x"}
    )
    headers = MetaHeaders(request.META)
    for name in ("x-bench-secret", "X-Bench-Secret", "authorization", "Content-Type", "content-length", "X-Missing"):
        assert headers.get(name) == request.headers.get(name)
    assert "x-bench-secret" in headers and "X-Missing" not in headers
    with pytest.raises(KeyError):
        headers["X-Missing"]


@pytest.mark.skipif(not CACHED, reason="the guard exists on PostgreSQL only")
def test_the_deferred_insert_joins_the_guard_instead_of_asking_a_subquery(client, account, settings):
    """The account's row is read as the INSERT's own FROM (a join), not as an `EXISTS` subquery evaluated beside it
    (an InitPlan): a little less PostgreSQL CPU per request (bench/README.md, "tenth session, branch status6")."""
    settings.WEBHOOK_PROCESSING = "deferred"
    assert post(client, account, message(1)).status_code == 200  # loads and caches the account
    with CaptureQueriesContext(connection) as queries:
        assert post(client, account, message(2)).status_code == 200
    [insert] = queries
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (COSTS OFF) {insert['sql']}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    table = InfobipAccount._meta.db_table
    account_scan = next(line for line in plan.splitlines() if f"on {table}" in line)
    # Under the INSERT's own rows (the CTE's scan), not under an InitPlan of its own.
    above = plan[: plan.index(account_scan)]
    assert "InitPlan" not in above.split("CTE stored")[-1], plan
    assert WebhookEvent.objects.count() == 2  # the EXPLAIN (without ANALYZE) stored nothing
