"""Celery tasks of routing and automation: thin, they take ids and call the automation's services."""

from __future__ import annotations

import logging

from celery import shared_task

from inbox.automation import assignment

logger = logging.getLogger(__name__)


@shared_task
def expire_presence() -> int:
    """Agents whose last tab closed more than the grace period ago become offline (beat, and once per close)."""
    return len(assignment.presence_expire())


def schedule_presence_expiry() -> None:
    from django.conf import settings

    try:
        expire_presence.apply_async(countdown=settings.AGENT_OFFLINE_GRACE_SECONDS + 1)
    except Exception:  # noqa: BLE001 - the beat runs the same pass anyway
        logger.warning("could not schedule the presence expiry; the beat will run it", exc_info=True)
