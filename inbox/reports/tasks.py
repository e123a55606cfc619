"""The roll-ups' Celery task (settings.CELERY_IMPORTS): refresh the conversations events marked, coalesced."""

from __future__ import annotations

from celery import shared_task

from inbox.reports import rollups


@shared_task(ignore_result=True, acks_late=True)
def refresh_report_rollups() -> int:
    """Drain the marked conversations (also on beat, should a scheduled run be lost); returns how many."""
    return rollups.drain()
