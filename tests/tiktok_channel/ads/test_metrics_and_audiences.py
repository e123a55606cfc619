"""Metrics (§7.5): strings parsed to decimals, one row per ad and day however often pulled, throttling retried with
backoff. Audiences (§7.6): hashed here; no request TikTok receives and no database row holds a raw identifier."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
import responses
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from tiktok_channel.ads import services, tasks
from tiktok_channel.ads.models import AdAccount, AdMetricDaily, CustomAudience

from .conftest import ADVERTISER, API, envelope

pytestmark = pytest.mark.django_db


def report(ad_id: str, days: dict[date, dict]) -> dict:
    rows = [
        {"dimensions": {"ad_id": ad_id, "stat_time_day": f"{day:%Y-%m-%d} 00:00:00"}, "metrics": metrics}
        for day, metrics in days.items()
    ]
    return envelope(
        {"list": rows, "page_info": {"page": 1, "page_size": 1000, "total_number": len(rows), "total_page": 1}}
    )


@responses.activate
def test_metrics_sync_parses_strings_and_is_idempotent_per_day(ad, ad_account):
    today = services.account_today(ad_account)
    yesterday = today - timedelta(days=1)
    first = {
        today: {"spend": "20.00", "impressions": "4696", "clicks": "51", "conversion": "3"},
        yesterday: {"spend": 7.5, "impressions": 100, "clicks": "-", "conversion": "0"},
    }
    responses.get(f"{API}/report/integrated/get/", json=report(ad.ad_id, first))
    responses.get(
        f"{API}/report/integrated/get/",
        json=report(
            ad.ad_id, {**first, today: {"spend": "25.10", "impressions": "5000", "clicks": "60", "conversion": "4"}}
        ),
    )
    responses.get(f"{API}/report/integrated/get/", json=report("unknown-ad", {today: {"spend": "1"}}))
    assert services.metrics_sync(account_id=ad_account.pk, days=7) == 2
    params = responses.calls[0].request.params
    assert params["advertiser_id"] == ADVERTISER
    assert params["end_date"] == today.isoformat() and params["start_date"] == (today - timedelta(days=6)).isoformat()
    services.metrics_sync(account_id=ad_account.pk, days=7)
    assert AdMetricDaily.objects.count() == 2
    row = AdMetricDaily.objects.get(date=today)
    assert (row.spend, row.impressions, row.clicks, row.conversions) == (Decimal("25.10"), 5000, 60, 4)
    assert AdMetricDaily.objects.get(date=yesterday).clicks == 0
    services.metrics_sync(account_id=ad_account.pk, days=7)  # an unknown ad's rows are skipped
    assert AdMetricDaily.objects.count() == 2


@responses.activate
def test_the_metrics_task_retries_after_throttling(ad, ad_account):
    from config.celery import app

    app.conf.task_always_eager = True
    today = services.account_today(ad_account)
    responses.get(f"{API}/report/integrated/get/", json=envelope(code=40100, message="Too many requests"))
    responses.get(f"{API}/report/integrated/get/", json=report(ad.ad_id, {today: {"spend": "1.00"}}))
    try:
        tasks.sync_account_metrics.apply(args=[ad_account.pk])
    finally:
        app.conf.task_always_eager = False
    assert len(responses.calls) == 2
    assert AdMetricDaily.objects.get(ad=ad).spend == Decimal("1.00")


@responses.activate
def test_a_permanent_refusal_is_recorded_not_retried(ad_account):
    responses.get(f"{API}/report/integrated/get/", json=envelope(code=40105, message="invalid access token"))
    tasks.sync_account_metrics.apply(args=[ad_account.pk])
    assert len(responses.calls) == 1
    assert "40105" in AdAccount.objects.get(pk=ad_account.pk).last_error


def test_backoff_grows_and_is_bounded(settings):
    settings.TIKTOK_MARKETING_THROTTLE_WAIT_SECONDS = 60
    assert 60 <= tasks.backoff_seconds(0) <= 72
    assert 240 <= tasks.backoff_seconds(2) <= 288
    assert tasks.backoff_seconds(20) <= 3600 * 1.2


def test_beat_queues_only_accounts_in_use(ad_account, monkeypatch):
    AdAccount.objects.create(authorization=ad_account.authorization, advertiser_id="999", in_use=False)
    queued = []
    monkeypatch.setattr(tasks.sync_account_metrics, "delay", queued.append)
    assert tasks.sync_all_metrics() == 1 and queued == [ad_account.pk]


EMAILS = [f"Customer.{n}+promo@Example.com" for n in range(1200)]
PHONES = [f"+44 7700 9{n:05d}" for n in range(1100)]


def _all_db_text() -> str:
    """Every text column of the ads and ledger tables, as PostgreSQL prints them."""
    chunks = []
    with connection.cursor() as cursor:
        for table in ("tiktok_channel_customaudience", "inbox_auditlog", "inbox_webhookevent"):
            cursor.execute(f"SELECT row_to_json(t)::text FROM {table} t")  # noqa: S608 - fixed names
            chunks.extend(row[0] for row in cursor.fetchall())
    return "\n".join(chunks)


@responses.activate
@pytest.mark.parametrize(
    ("kind", "values", "calculate_type"), [("email", EMAILS, "EMAIL_SHA256"), ("phone", PHONES, "PHONE_SHA256")]
)
def test_audience_upload_sends_and_stores_no_raw_identifier(
    client, staff, ad_account, kind, values, calculate_type, django_capture_on_commit_callbacks, caplog, monkeypatch
):
    queued = []
    monkeypatch.setattr(tasks.upload_audience, "delay", queued.append)  # the broker; the task is run below
    responses.post(f"{API}/dmp/custom_audience/file/upload/", json=envelope({"file_path": "fp-1"}))
    responses.post(f"{API}/dmp/custom_audience/create/", json=envelope({"custom_audience_id": "aud-1"}))
    csv_text = "\n".join([kind, *values, "garbage", "x@", ""])
    client.force_login(staff)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/ads/audiences/",
            {
                "account": ad_account.pk,
                "name": "CRM",
                "kind": kind,
                "file": SimpleUploadedFile("crm.csv", csv_text.encode(), content_type="text/csv"),
            },
            follow=True,
        )
    assert "2 bad" in response.content.decode()
    audience = CustomAudience.objects.get()
    assert queued == [audience.pk]
    tasks.upload_audience.apply(args=[audience.pk])
    audience.refresh_from_db()
    assert (audience.rows_total, audience.rows_bad, audience.rows_valid) == (len(values) + 2, 2, len(values))
    assert audience.status == CustomAudience.Status.UPLOADED and audience.audience_id == "aud-1"
    assert audience.pending_hashes == ""
    upload, create = responses.calls[0].request, responses.calls[1].request
    assert calculate_type.encode() in upload.body and b"file_signature" in upload.body
    assert json.loads(create.body) == {
        "advertiser_id": ADVERTISER,
        "custom_audience_name": "CRM",
        "file_paths": ["fp-1"],
        "calculate_type": calculate_type,
        "retention_in_days": 180,
    }
    # Nothing raw anywhere: the requests TikTok received, the database, the logs.
    wire = b"\n".join(bytes(call.request.body or b"") + call.request.url.encode() for call in responses.calls)
    stored = _all_db_text()
    for value in values[:50] + values[-50:]:
        normal = re.sub(r"\D", "", value) if kind == "phone" else value.lower().split("+")[0]
        for form in {value, value.lower(), value.replace(" ", ""), normal}:
            assert form.encode() not in wire
            assert form not in stored
            assert form not in caplog.text
    assert b"example.com" not in wire.lower() and b"+44" not in wire
    assert "example.com" not in stored.lower() and "+44" not in stored


@responses.activate
def test_audience_retries_append_instead_of_creating_twice(ad_account):
    audience = CustomAudience.objects.create(
        account=ad_account,
        name="CRM",
        kind="email",
        rows_total=1,
        rows_valid=1,
        audience_id="aud-1",
        pending_hashes="d6117306485ed0e50afab3ac871e98f81699151f30281527d63ff5f233656c69",
    )
    responses.post(f"{API}/dmp/custom_audience/file/upload/", json=envelope({"file_path": "fp-2"}))
    responses.post(f"{API}/dmp/custom_audience/update/", json=envelope({}))
    assert services.audience_upload(audience_id=audience.pk)
    assert json.loads(responses.calls[1].request.body)["action"] == "APPEND"


@responses.activate
def test_audience_refused_is_failed_with_tiktoks_reason(ad_account):
    audience = CustomAudience.objects.create(
        account=ad_account, name="CRM", kind="email", rows_total=1, rows_valid=1, pending_hashes="ab" * 32
    )
    responses.post(f"{API}/dmp/custom_audience/file/upload/", json=envelope(code=40062, message="PII not hashed"))
    tasks.upload_audience.apply(args=[audience.pk])
    audience.refresh_from_db()
    assert audience.status == CustomAudience.Status.FAILED and "40062" in audience.error
    assert audience.pending_hashes == ""


def test_an_audience_without_valid_rows_is_refused(client, staff, ad_account):
    client.force_login(staff)
    response = client.post(
        "/ads/audiences/",
        {
            "account": ad_account.pk,
            "name": "CRM",
            "kind": "email",
            "file": SimpleUploadedFile("crm.csv", b"email\nnope\n", content_type="text/csv"),
        },
        follow=True,
    )
    assert "none of the 1 rows" in response.content.decode()
    assert not CustomAudience.objects.exists()
