"""Celery tasks of routing and automation: thin, they take ids and call the automation's services."""

from __future__ import annotations

import logging
import random

from celery import shared_task
from django.conf import settings

from inbox.automation import assignment, rules, webhooks

logger = logging.getLogger(__name__)


@shared_task
def expire_presence() -> int:
    """Agents whose last tab closed more than the grace period ago become offline (beat, and once per close)."""
    return len(assignment.presence_expire())


def schedule_presence_expiry() -> None:
    try:
        expire_presence.apply_async(countdown=settings.AGENT_OFFLINE_GRACE_SECONDS + 1)
    except Exception:  # noqa: BLE001 - the beat runs the same pass anyway
        logger.warning("could not schedule the presence expiry; the beat will run it", exc_info=True)


@shared_task
def run_no_reply_rules() -> int:
    """The "no agent reply for N minutes" rules (beat, every minute)."""
    return rules.no_reply_due()


@shared_task(bind=True, acks_late=True, max_retries=None)
def deliver_webhook(self, delivery_id: int) -> str:
    """Post one outgoing webhook; 5xx, 408, 429 and network errors retry with exponential backoff and jitter
    until AUTOMATION_WEBHOOK_MAX_TRIES tries, then the delivery is failed (recorded on the row)."""
    tries = self.request.retries + 1
    verdict = webhooks.webhook_attempt(delivery_id, final=tries >= settings.AUTOMATION_WEBHOOK_MAX_TRIES)
    if verdict == webhooks.RETRY:
        base, most = settings.AUTOMATION_WEBHOOK_RETRY_BASE_SECONDS, settings.AUTOMATION_WEBHOOK_RETRY_MAX_SECONDS
        countdown = min(most, base * 2 ** (tries - 1)) * (0.5 + random.random() / 2)  # noqa: S311 - jitter
        raise self.retry(countdown=countdown)
    return verdict


def schedule_webhook(delivery_id: int) -> None:
    """On commit of the run: never raises (a broker outage leaves the delivery pending, listed in the admin)."""
    try:
        deliver_webhook.delay(delivery_id)
    except Exception:  # noqa: BLE001
        logger.warning("could not enqueue webhook delivery %s", delivery_id, exc_info=True)
