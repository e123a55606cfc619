"""The webhook ledger keeps each request for its keeping time, then the hourly task deletes it (never a pending one)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from inbox import processor, tasks
from inbox.models import WebhookEvent

pytestmark = pytest.mark.django_db


def _row(verdict: str, age: timedelta, now) -> WebhookEvent:
    return WebhookEvent.objects.create(
        provider="infobip", connection_id=1, path_kind="any", received_at=now - age, body="{}", verdict=verdict
    )


def test_rows_past_their_keeping_time_are_deleted_pending_ones_never(settings):
    settings.WEBHOOK_LEDGER_KEEP_DAYS = 30
    settings.WEBHOOK_LEDGER_KEEP_TROUBLE_DAYS = 90
    now = timezone.now()
    kept = [
        _row("processed", timedelta(days=29, hours=23), now),
        _row("failed", timedelta(days=31), now),  # worth a look: kept longer
        _row("partial", timedelta(days=89), now),
        _row("pending", timedelta(days=400), now),  # not applied yet: never deleted
    ]
    gone = [
        _row("processed", timedelta(days=30, seconds=1), now),
        _row("processed", timedelta(days=365), now),
        _row("rejected", timedelta(days=91), now),
        _row("failed", timedelta(days=120), now),
    ]
    assert processor.ledger_prune(now=now, chunk=1) == len(gone)  # chunk of one: the loop takes every chunk
    assert set(WebhookEvent.objects.values_list("pk", flat=True)) == {row.pk for row in kept}
    assert processor.ledger_prune(now=now) == 0


def test_the_beat_task_prunes_with_the_settings(settings):
    settings.WEBHOOK_LEDGER_KEEP_DAYS = 1
    now = timezone.now()
    _row("processed", timedelta(days=2), now)
    fresh = _row("processed", timedelta(hours=1), now)
    assert tasks.prune_webhook_ledger() == 1
    assert list(WebhookEvent.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert "inbox.tasks.prune_webhook_ledger" in {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
