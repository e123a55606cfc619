"""Celery: the metrics beat and the audience upload. Thin: ids in, a service call, TikTok's throttling (40100) and
other temporary refusals retried with exponential backoff and jitter, a finite budget, permanent refusals recorded."""

from __future__ import annotations

import logging
import random

from celery import shared_task
from django.conf import settings

from tiktok_channel.ads import services
from tiktok_channel.ads.client import MarketingError
from tiktok_channel.ads.models import AdAccount

logger = logging.getLogger(__name__)


def backoff_seconds(retries: int) -> float:
    """From TIKTOK_MARKETING_THROTTLE_WAIT_SECONDS, doubling, capped at an hour, with up to 20 % jitter."""
    base = min(settings.TIKTOK_MARKETING_THROTTLE_WAIT_SECONDS * (2**retries), 3600)
    return base * (1 + random.random() * 0.2)  # noqa: S311 - jitter, not security


@shared_task(ignore_result=True)
def sync_all_metrics() -> int:
    """Beat: one task per ad account in use."""
    ids = list(AdAccount.objects.filter(in_use=True).values_list("pk", flat=True))
    for account_id in ids:
        sync_account_metrics.delay(account_id)
    return len(ids)


@shared_task(bind=True, max_retries=None, ignore_result=True, time_limit=600)
def sync_account_metrics(self, account_id: int) -> int:
    try:
        return services.metrics_sync(account_id=account_id, days=settings.TIKTOK_ADS_METRICS_DAYS)
    except MarketingError as exc:
        if exc.retryable and self.request.retries < settings.TIKTOK_MARKETING_MAX_RETRIES:
            raise self.retry(countdown=backoff_seconds(self.request.retries)) from None
        AdAccount.objects.filter(pk=account_id).update(last_error=str(exc)[:500])
        logger.warning("metrics of ad account %s not synced: %s", account_id, exc)
        return 0


@shared_task(bind=True, max_retries=None, ignore_result=True, time_limit=900)
def upload_audience(self, audience_id: int) -> bool:
    try:
        return services.audience_upload(audience_id=audience_id)
    except MarketingError as exc:
        if exc.retryable and self.request.retries < settings.TIKTOK_MARKETING_MAX_RETRIES:
            raise self.retry(countdown=backoff_seconds(self.request.retries)) from None
        services.audience_failed(audience_id=audience_id, reason=str(exc))
        return False


@shared_task(bind=True, max_retries=None, ignore_result=True, time_limit=60)
def subscribe_ad_reviews(self, ad_pk: int) -> bool:
    """A refused subscription leaves the ad "In review" on the page (logged with TikTok's code)."""
    try:
        services.ad_reviews_subscribe(ad_pk=ad_pk)
    except MarketingError as exc:
        if exc.retryable and self.request.retries < settings.TIKTOK_MARKETING_MAX_RETRIES:
            raise self.retry(countdown=backoff_seconds(self.request.retries)) from None
        logger.warning("review webhooks of ad %s not subscribed: %s", ad_pk, exc)
        return False
    return True
