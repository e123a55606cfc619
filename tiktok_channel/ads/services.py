"""The one write path of every ads row. TikTok is asked first; a refusal raises ApplicationError with TikTok's code
and message (status 502 when TikTok could not be reached, 422 when it refused) and nothing is stored."""

from __future__ import annotations

import logging
import secrets
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from inbox import domain_events
from inbox.errors import ApplicationError
from tiktok_channel.ads import client, hashing
from tiktok_channel.ads.client import MarketingError
from tiktok_channel.ads.models import (
    Ad,
    AdAccount,
    AdGroup,
    AdMetricDaily,
    AdvertiserAuthorization,
    Campaign,
    CustomAudience,
)

logger = logging.getLogger(__name__)

OPERATION_STATUSES = ("ENABLE", "DISABLE", "DELETE")
LEVELS = {"campaign": (Campaign, "campaign_id"), "adgroup": (AdGroup, "adgroup_id"), "ad": (Ad, "ad_id")}


def refused(exc: MarketingError) -> ApplicationError:
    """TikTok's code and message, as the UI and the API show them."""
    if exc.code is None:
        return ApplicationError("tiktok_unreachable", str(exc), status=502)
    return ApplicationError(
        f"tiktok_{exc.code}",
        f"TikTok refused ({exc.code}): {exc.message}",
        fields={"tiktok_code": [str(exc.code)]},
        status=422,
    )


def _request_id() -> str:
    """TikTok's idempotency key: a 64-bit integer as a string (§7.1)."""
    return str(secrets.randbelow(2**63 - 1) + 1)


def _decimal(value, name: str) -> Decimal:
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ApplicationError(
            "invalid_number", f"{name} is a number", fields={name: ["a number"]}, status=422
        ) from None
    if not number.is_finite() or number <= 0 or number >= Decimal(10) ** 12:
        raise ApplicationError(
            "invalid_number", f"{name} is a positive amount", fields={name: ["positive"]}, status=422
        )
    return number.quantize(Decimal("0.01"))


def _name(value: str, name: str, limit: int) -> str:
    value = (value or "").strip()
    if not value or len(value) > limit:
        raise ApplicationError(
            "invalid_name", f"{name} is 1 to {limit} characters", fields={name: ["required"]}, status=422
        )
    return value


def _call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except MarketingError as exc:
        raise refused(exc) from None


# --- Accounts ------------------------------------------------------------------------------------------------------


def authorization_complete(*, auth_code: str, user) -> AdvertiserAuthorization:
    """Exchange the consent's auth code for the long-term token, list the advertisers it manages, and keep them
    (not in use until staff choose them). An advertiser seen before moves to the newest authorization."""
    token_data = _call(client.access_token, auth_code)
    token = str(token_data.get("access_token") or "")
    if not token:
        raise ApplicationError("tiktok_no_token", "TikTok answered without an access token", status=502)
    listed = _call(client.advertisers, token)
    ids = [str(row.get("advertiser_id")) for row in listed if row.get("advertiser_id")]
    details = {str(row.get("advertiser_id")): row for row in (_call(client.advertiser_info, token, ids) if ids else [])}
    with transaction.atomic():
        authorization = AdvertiserAuthorization.objects.create(
            access_token=token,
            scope=token_data.get("scope") or [],
            advertiser_ids=[str(i) for i in token_data.get("advertiser_ids") or ids],
            authorized_by=user,
        )
        for row in listed:
            advertiser_id = str(row.get("advertiser_id") or "")
            if not advertiser_id:
                continue
            info = details.get(advertiser_id, {})
            AdAccount.objects.update_or_create(
                advertiser_id=advertiser_id,
                defaults={
                    "authorization": authorization,
                    "name": str(info.get("name") or row.get("advertiser_name") or "")[:200],
                    "currency": str(info.get("currency") or "")[:8],
                    "timezone": str(info.get("timezone") or info.get("display_timezone") or "")[:64],
                },
            )
    return authorization


def accounts_choose(*, in_use_ids: list[int]) -> None:
    """Exactly these accounts are in use (metrics are pulled, campaigns managed)."""
    with transaction.atomic():
        AdAccount.objects.filter(pk__in=in_use_ids).update(in_use=True)
        AdAccount.objects.exclude(pk__in=in_use_ids).update(in_use=False)


# --- Campaigns, ad groups, ads ---------------------------------------------------------------------------------------


def _utc_text(value: datetime) -> str:
    return value.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%d %H:%M:%S")


def campaign_create(*, account: AdAccount, name: str, objective_type: str, budget_mode: str, budget=None) -> Campaign:
    """Created paused (DISABLE): nothing spends before staff enable it."""
    name = _name(name, "name", 512)
    body = {
        "advertiser_id": account.advertiser_id,
        "campaign_name": name,
        "objective_type": objective_type,
        "budget_mode": budget_mode,
        "operation_status": "DISABLE",
        "request_id": _request_id(),
    }
    amount = None
    if budget_mode != "BUDGET_MODE_INFINITE":
        amount = _decimal(budget, "budget")
        body["budget"] = float(amount)
    campaign_id = _call(client.campaign_create, account.authorization.access_token, body)
    return Campaign.objects.create(
        account=account,
        campaign_id=campaign_id,
        name=name,
        objective_type=objective_type,
        budget_mode=budget_mode,
        budget=amount,
    )


def adgroup_create(
    *,
    campaign: Campaign,
    name: str,
    placement_type: str,
    location_ids: list[str],
    age_groups: list[str],
    gender: str,
    budget_mode: str,
    budget,
    start: datetime,
    end: datetime | None,
    optimization_goal: str = "CLICK",
    billing_event: str = "CPC",
) -> AdGroup:
    name = _name(name, "name", 512)
    amount = _decimal(budget, "budget")
    if end is not None and end <= start:
        raise ApplicationError(
            "invalid_schedule", "the end is after the start", fields={"end": ["after start"]}, status=422
        )
    account = campaign.account
    body = {
        "advertiser_id": account.advertiser_id,
        "campaign_id": campaign.campaign_id,
        "adgroup_name": name,
        "placement_type": placement_type,
        "location_ids": location_ids,
        "budget_mode": budget_mode,
        "budget": float(amount),
        "schedule_type": "SCHEDULE_START_END" if end else "SCHEDULE_FROM_NOW",
        "schedule_start_time": _utc_text(start),
        "optimization_goal": optimization_goal,
        "billing_event": billing_event,
        "pacing": "PACING_MODE_SMOOTH",
        "operation_status": "DISABLE",
        "request_id": _request_id(),
    }
    if placement_type == "PLACEMENT_TYPE_NORMAL":
        body["placements"] = ["PLACEMENT_TIKTOK"]
    if end:
        body["schedule_end_time"] = _utc_text(end)
    if age_groups:
        body["age_groups"] = age_groups
    if gender:
        body["gender"] = gender
    adgroup_id = _call(client.adgroup_create, account.authorization.access_token, body)
    return AdGroup.objects.create(
        campaign=campaign,
        adgroup_id=adgroup_id,
        name=name,
        placement_type=placement_type,
        location_ids=location_ids,
        age_groups=age_groups,
        gender=gender,
        budget_mode=budget_mode,
        budget=amount,
        schedule_start_time=start,
        schedule_end_time=end,
    )


def ad_create(
    *,
    adgroup: AdGroup,
    name: str,
    ad_text: str,
    call_to_action: str,
    landing_page_url: str,
    image: bytes,
    image_name: str,
    identity_id: str = "",
) -> Ad:
    """Upload the image (§7.4), create the ad with it (§7.3), then (a task, after commit) subscribe it to its
    review webhooks (§7.7) when the webhook URL is configured."""
    name = _name(name, "name", 512)
    ad_text = _name(ad_text, "ad_text", 100)
    if not image:
        raise ApplicationError(
            "image_required", "an ad needs an image (JPG or PNG)", fields={"image": ["required"]}, status=422
        )
    if not (image.startswith(b"\xff\xd8\xff") or image.startswith(b"\x89PNG\r\n\x1a\n")):
        raise ApplicationError(
            "invalid_image", "the image is a JPG or PNG", fields={"image": ["JPG or PNG"]}, status=422
        )
    account = adgroup.campaign.account
    token = account.authorization.access_token
    # Unique per advertiser (40911 on a repeat): the ad's name plus a random suffix.
    extension = "png" if image.startswith(b"\x89PNG") else "jpg"
    file_name = f"{secrets.token_hex(6)}-{(image_name or 'image').rsplit('.', 1)[0][:60]}.{extension}"
    uploaded = _call(
        client.image_upload, token, advertiser_id=account.advertiser_id, content=image, file_name=file_name
    )
    image_id = str(uploaded.get("image_id") or "")
    creative = {
        "ad_name": name,
        "ad_format": "SINGLE_IMAGE",
        "ad_text": ad_text,
        "image_ids": [image_id],
        "call_to_action": call_to_action,
        "identity_type": "CUSTOMIZED_USER",
    }
    if identity_id:
        creative["identity_id"] = identity_id
    if landing_page_url:
        creative["landing_page_url"] = landing_page_url
    ad_id = _call(
        client.ad_create,
        token,
        {"advertiser_id": account.advertiser_id, "adgroup_id": adgroup.adgroup_id, "creatives": [creative]},
    )
    ad = Ad.objects.create(
        adgroup=adgroup,
        ad_id=ad_id,
        name=name,
        ad_text=ad_text,
        call_to_action=call_to_action,
        landing_page_url=landing_page_url,
        image_id=image_id,
        image_url=str(uploaded.get("image_url") or "")[:2048],
    )
    from django.conf import settings

    from tiktok_channel.ads import tasks

    if settings.TIKTOK_ADS_WEBHOOK_PATH_TOKEN:
        tasks.subscribe_ad_reviews.delay_on_commit(ad.pk)
    return ad


def ad_reviews_subscribe(*, ad_pk: int) -> None:
    """Subscribe one ad to its review webhooks (§7.7: per ad). Raises MarketingError."""
    from django.conf import settings

    ad = Ad.objects.select_related("adgroup__campaign__account__authorization").get(pk=ad_pk)
    account = ad.adgroup.campaign.account
    url = f"{settings.PUBLIC_BASE_URL}{reverse('tiktok_ads_webhook', args=[settings.TIKTOK_ADS_WEBHOOK_PATH_TOKEN])}"
    client.ad_subscribe(
        account.authorization.access_token, advertiser_id=account.advertiser_id, ad_id=ad.ad_id, callback_url=url
    )


def status_change(*, level: str, pk: int, operation_status: str):
    """Enable, pause (DISABLE) or delete a campaign, ad group or ad at TikTok, then here. A deleted row is kept
    with status DELETE (its metrics stay) and cannot change again (TikTok refuses it too)."""
    if level not in LEVELS:
        raise ApplicationError("invalid_level", "campaign, adgroup or ad", status=422)
    if operation_status not in OPERATION_STATUSES:
        raise ApplicationError("invalid_status", "ENABLE, DISABLE or DELETE", status=422)
    model, id_field = LEVELS[level]
    row = model.objects.filter(pk=pk).first()
    if row is None:
        raise ApplicationError("not_found", f"no such {level}", status=404)
    if row.operation_status == "DELETE":
        raise ApplicationError("deleted", f"this {level} is deleted", status=409)
    account = _account_of(row)
    _call(
        client.status_update,
        account.authorization.access_token,
        advertiser_id=account.advertiser_id,
        level=level,
        ids=[getattr(row, id_field)],
        operation_status=operation_status,
    )
    model.objects.filter(pk=pk).update(operation_status=operation_status)
    row.operation_status = operation_status
    return row


def _account_of(row) -> AdAccount:
    if isinstance(row, Campaign):
        return row.account
    if isinstance(row, AdGroup):
        return row.campaign.account
    return row.adgroup.campaign.account


# --- Metrics ---------------------------------------------------------------------------------------------------------


def _number(value) -> Decimal:
    """TikTok sends metric values as strings (or numbers); '-' or junk counts as 0."""
    try:
        number = Decimal(str(value).replace(",", "").strip())
    except (InvalidOperation, ValueError):
        return Decimal(0)
    return number if number.is_finite() and number >= 0 else Decimal(0)


def account_today(account: AdAccount) -> date:
    try:
        zone = ZoneInfo(account.timezone) if account.timezone else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return timezone.now().astimezone(zone).date()


def metrics_sync(*, account_id: int, days: int) -> int:
    """Pull the last `days` days (the advertiser's time zone) of per-ad metrics and write each (ad, day) once:
    a repeat overwrites the same rows. Rows of ads we do not know are skipped. Raises MarketingError (the task
    decides whether to retry). Returns the rows written."""
    account = AdAccount.objects.select_related("authorization").get(pk=account_id)
    end = account_today(account)
    start = end - timedelta(days=max(days, 1) - 1)
    rows = client.ad_report(
        account.authorization.access_token,
        advertiser_id=account.advertiser_id,
        start_date=start.isoformat(),
        end_date=end.isoformat(),
    )
    return metrics_apply(account=account, rows=rows)


def metrics_apply(*, account: AdAccount, rows: list[dict]) -> int:
    ads = {ad.ad_id: ad.pk for ad in Ad.objects.filter(adgroup__campaign__account=account)}
    parsed: dict[tuple[int, date], dict] = {}
    for row in rows:
        dimensions, metrics = row.get("dimensions") or {}, row.get("metrics") or {}
        ad_pk = ads.get(str(dimensions.get("ad_id") or ""))
        try:
            day = date.fromisoformat(str(dimensions.get("stat_time_day") or "")[:10])
        except ValueError:
            continue
        if ad_pk is None:
            continue
        parsed[(ad_pk, day)] = {
            "spend": _number(metrics.get("spend")).quantize(Decimal("0.01")),
            "impressions": int(_number(metrics.get("impressions"))),
            "clicks": int(_number(metrics.get("clicks"))),
            "conversions": int(_number(metrics.get("conversion", metrics.get("conversions")))),
        }
    with transaction.atomic():
        for (ad_pk, day), values in parsed.items():
            AdMetricDaily.objects.update_or_create(ad_id=ad_pk, date=day, defaults=values)
        AdAccount.objects.filter(pk=account.pk).update(metrics_synced_at=timezone.now(), last_error="")
    return len(parsed)


# --- Custom audiences ------------------------------------------------------------------------------------------------


def audience_create(*, account: AdAccount, name: str, kind: str, raw: bytes, user) -> CustomAudience:
    """Hash the uploaded CSV here (the raw bytes are dropped when this returns) and queue the upload task."""
    from django.conf import settings

    from tiktok_channel.ads import tasks

    name = _name(name, "name", 128)
    if len(raw) > settings.TIKTOK_ADS_AUDIENCE_MAX_BYTES:
        raise ApplicationError("file_too_large", "the file is too large", fields={"file": ["too large"]}, status=422)
    try:
        hashed = hashing.hash_csv(raw, kind)
    except ValueError as exc:
        raise ApplicationError("invalid_file", str(exc), fields={"file": [str(exc)]}, status=422) from None
    if not hashed.hashes:
        raise ApplicationError(
            "no_valid_rows",
            f"none of the {hashed.rows_total} rows is a valid {kind}",
            fields={"file": ["no valid rows"]},
            status=422,
        )
    with transaction.atomic():
        audience = CustomAudience.objects.create(
            account=account,
            name=name,
            kind=kind,
            rows_total=hashed.rows_total,
            rows_valid=hashed.rows_valid,
            rows_bad=hashed.rows_bad,
            pending_hashes="\n".join(hashed.hashes),
            created_by=user,
        )
        tasks.upload_audience.delay_on_commit(audience.pk)
    return audience


def audience_upload(*, audience_id: int) -> bool:
    """Upload the hashed file, then create the audience (or APPEND to it when it exists). Raises MarketingError;
    returns False when there was nothing to do."""
    audience = CustomAudience.objects.select_related("account__authorization").get(pk=audience_id)
    if audience.status == CustomAudience.Status.UPLOADED or not audience.pending_hashes:
        return False
    account = audience.account
    token = account.authorization.access_token
    calculate_type = hashing.CALCULATE_TYPES[audience.kind]
    content = hashing.HashedFile(kind=audience.kind, hashes=audience.pending_hashes.split("\n")).content()
    file_path = client.audience_file_upload(
        token, advertiser_id=account.advertiser_id, content=content, calculate_type=calculate_type
    )
    if audience.audience_id:
        client.audience_append(
            token, advertiser_id=account.advertiser_id, audience_id=audience.audience_id, file_path=file_path
        )
    else:
        audience_id_at_tiktok = client.audience_create(
            token,
            advertiser_id=account.advertiser_id,
            name=audience.name,
            file_path=file_path,
            calculate_type=calculate_type,
        )
        # Kept at once: a retry after this point appends instead of creating a second audience.
        CustomAudience.objects.filter(pk=audience.pk).update(audience_id=audience_id_at_tiktok)
    CustomAudience.objects.filter(pk=audience.pk).update(
        status=CustomAudience.Status.UPLOADED, pending_hashes="", error="", updated_at=timezone.now()
    )
    return True


def audience_failed(*, audience_id: int, reason: str) -> None:
    CustomAudience.objects.filter(pk=audience_id).exclude(status=CustomAudience.Status.UPLOADED).update(
        status=CustomAudience.Status.FAILED, error=reason[:500], pending_hashes="", updated_at=timezone.now()
    )


# --- Review webhooks -------------------------------------------------------------------------------------------------

REVIEW_OBJECT_AD = 3


def reviews_apply(entries: list[dict]) -> int:
    """Apply ad review results (§7.7, object 3): an entry with a `reject_reason` rejects its ad, one without
    approves it. At-least-once delivery: applying the same entry again changes nothing. Returns ads changed."""
    changed = 0
    events = []
    with transaction.atomic():
        for entry in entries:
            ad_id = str(entry.get("ad_id") or "")
            if not ad_id:
                continue
            reason = str(entry.get("reject_reason") or "")[:2000]
            status = Ad.Review.REJECTED if reason else Ad.Review.APPROVED
            updated = (
                Ad.objects.filter(ad_id=ad_id)
                .exclude(review_status=status, reject_reason=reason)
                .update(review_status=status, reject_reason=reason, updated_at=timezone.now())
            )
            if updated:
                changed += 1
                events.append(domain_events.AdReviewChanged(inbox_id=0, ad_id=ad_id, review_status=status))
        domain_events.emit(*events)
    return changed
