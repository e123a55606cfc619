"""The roll-ups' Celery task (settings.CELERY_IMPORTS): refresh the conversations events marked, coalesced."""

from __future__ import annotations

from celery import shared_task

from inbox.models import ReportMarkBatch
from inbox.reports import rollups

# Transactions of at most rollups.MARKS_PER_TRANSACTION marks: ≤ 50,000 marks, then the next run, so one task never
# holds the worker for long.
MAX_CHUNKS_PER_RUN = 5


@shared_task(ignore_result=True, acks_late=True)
def refresh_report_rollups() -> int:
    """Drain the marked conversations (also on beat, should a scheduled run be lost); returns how many."""
    refreshed = rollups.drain(max_chunks=MAX_CHUNKS_PER_RUN)
    if ReportMarkBatch.objects.exists():
        rollups.schedule_drain()
    return refreshed
