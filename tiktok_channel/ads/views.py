"""The Ads page for staff (`/ads/`): server-rendered forms; every refusal of TikTok's is shown with its code and
message (a Django message) and nothing is stored. Charts are plain SVG with the numbers in a table beside them."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_POST

from inbox.errors import ApplicationError
from tiktok_channel.ads import selectors, services
from tiktok_channel.ads.models import Ad, AdAccount, AdGroup, Campaign, CustomAudience

logger = logging.getLogger(__name__)

STATE_SALT = "tiktok_channel.ads.connect.state"
SESSION_KEY = "tiktok_ads_connect_nonce"
OBJECTIVES = ["LEAD_GENERATION", "ENGAGEMENT", "TRAFFIC", "REACH", "VIDEO_VIEWS", "WEB_CONVERSIONS", "APP_PROMOTION"]
BUDGET_MODES = ["BUDGET_MODE_DAY", "BUDGET_MODE_TOTAL", "BUDGET_MODE_INFINITE"]
PLACEMENTS = ["PLACEMENT_TYPE_AUTOMATIC", "PLACEMENT_TYPE_NORMAL"]
AGE_GROUPS = ["AGE_13_17", "AGE_18_24", "AGE_25_34", "AGE_35_44", "AGE_45_54", "AGE_55_100"]
GENDERS = [("", "Any"), ("GENDER_MALE", "Men"), ("GENDER_FEMALE", "Women")]
CALLS_TO_ACTION = ["LEARN_MORE", "CONTACT_US", "SIGN_UP", "SHOP_NOW", "APPLY_NOW", "DOWNLOAD", "BOOK_NOW"]
CHART_DAYS = 30
STATUS_WORDS = {"ENABLE": "Enable", "DISABLE": "Pause", "DELETE": "Delete"}


def redirect_uri() -> str:
    return f"{settings.PUBLIC_BASE_URL}{reverse('tiktok_ads_callback')}"


def _back(fragment: str = "") -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("tiktok_ads_page") + (f"#{fragment}" if fragment else ""))


def _refused(request: HttpRequest, exc: ApplicationError, what: str) -> None:
    messages.error(request, f"{what}: {exc.message}")


@staff_member_required
def ads_page(request: HttpRequest) -> HttpResponse:
    accounts = list(selectors.accounts())
    in_use = [account.pk for account in accounts if account.in_use]
    campaigns = list(selectors.campaigns_tree(in_use))
    ads = [ad for campaign in campaigns for adgroup in campaign.adgroups.all() for ad in adgroup.ads.all()]
    per_ad = selectors.brings_per_ad(ads)
    per_campaign = selectors.brings_per_campaign(campaigns, per_ad)
    for campaign in campaigns:
        campaign.brings = per_campaign[campaign.pk]
        for adgroup in campaign.adgroups.all():
            for ad in adgroup.ads.all():
                ad.brings = per_ad[ad.ad_id]
    context = {
        "accounts": accounts,
        "in_use_accounts": [account for account in accounts if account.in_use],
        "campaigns": campaigns,
        "audiences": CustomAudience.objects.filter(account__in=in_use).select_related("account")[:50],
        "can_connect": bool(settings.TIKTOK_MARKETING_APP_ID),
        "objectives": OBJECTIVES,
        "budget_modes": BUDGET_MODES,
        "placements": PLACEMENTS,
        "age_groups": AGE_GROUPS,
        "genders": GENDERS,
        "calls_to_action": CALLS_TO_ACTION,
        "status_words": STATUS_WORDS,
    }
    return render(request, "tiktok_channel/ads.html", context)


# --- Connect (§2.2) --------------------------------------------------------------------------------------------------


@staff_member_required
def connect(request: HttpRequest) -> HttpResponse:
    if not settings.TIKTOK_MARKETING_APP_ID:
        messages.error(request, "Set TIKTOK_MARKETING_APP_ID and TIKTOK_MARKETING_APP_SECRET first.")
        return _back()
    nonce = secrets.token_urlsafe(16)
    request.session[SESSION_KEY] = nonce
    state = signing.dumps({"nonce": nonce}, salt=STATE_SALT)
    query = urlencode({"app_id": settings.TIKTOK_MARKETING_APP_ID, "state": state, "redirect_uri": redirect_uri()})
    return HttpResponseRedirect(f"{settings.TIKTOK_MARKETING_AUTH_URL}?{query}")


@staff_member_required
def callback(request: HttpRequest) -> HttpResponse:
    try:
        claims = signing.loads(
            request.GET.get("state", ""), salt=STATE_SALT, max_age=settings.TIKTOK_DIRECT_OAUTH_STATE_MAX_AGE_SECONDS
        )
    except signing.BadSignature:
        messages.error(request, "TikTok's answer did not carry a valid state (or it expired): nothing was connected.")
        return _back()
    nonce = request.session.pop(SESSION_KEY, None)
    if not nonce or not isinstance(claims, dict) or claims.get("nonce") != nonce:
        messages.error(request, "This answer was already used or belongs to another session: nothing was connected.")
        return _back()
    code = request.GET.get("auth_code") or request.GET.get("code")
    if not code:
        messages.error(request, "TikTok's answer carried no authorization code: nothing was connected.")
        return _back()
    try:
        authorization = services.authorization_complete(auth_code=code, user=request.user)
    except ApplicationError as exc:
        _refused(request, exc, "Connecting the advertiser failed")
        return _back()
    count = authorization.accounts.count()
    messages.success(request, f"Connected: {count} advertiser account(s). Choose the ones to use below.")
    return _back("accounts")


@staff_member_required
@require_POST
def accounts_choose(request: HttpRequest) -> HttpResponse:
    ids = [int(value) for value in request.POST.getlist("in_use") if value.isdigit()]
    services.accounts_choose(in_use_ids=ids)
    messages.success(request, "Ad accounts in use saved.")
    return _back("accounts")


# --- Create ---------------------------------------------------------------------------------------------------------


def _when(value: str | None):
    """A datetime-local input, in the server's time zone; None when empty."""
    if not value:
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None:
        raise ApplicationError("invalid_datetime", f"{value[:40]!r} is not a date and time", status=422)
    return timezone.make_aware(parsed) if timezone.is_naive(parsed) else parsed


@staff_member_required
@require_POST
def campaign_create(request: HttpRequest) -> HttpResponse:
    account = get_object_or_404(AdAccount, pk=_pk(request.POST.get("account")), in_use=True)
    try:
        campaign = services.campaign_create(
            account=account,
            name=request.POST.get("name", ""),
            objective_type=_choice(request.POST.get("objective_type"), OBJECTIVES),
            budget_mode=_choice(request.POST.get("budget_mode"), BUDGET_MODES),
            budget=request.POST.get("budget"),
        )
    except ApplicationError as exc:
        _refused(request, exc, "The campaign was not created")
        return _back()
    messages.success(request, f"Campaign “{campaign.name}” created (paused).")
    return _back(f"campaign-{campaign.pk}")


def _pk(value) -> int:
    """A form's row id; anything else matches no row (404), never a 500."""
    return int(value) if isinstance(value, str) and value.isdigit() else 0


def _choice(value: str | None, allowed: list[str]) -> str:
    if value not in allowed:
        raise ApplicationError("invalid_choice", f"choose one of {', '.join(allowed)}", status=422)
    return value


@staff_member_required
@require_POST
def adgroup_create(request: HttpRequest, campaign_pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign.objects.select_related("account__authorization"), pk=campaign_pk)
    try:
        start = _when(request.POST.get("start")) or timezone.now() + timedelta(minutes=10)
        adgroup = services.adgroup_create(
            campaign=campaign,
            name=request.POST.get("name", ""),
            placement_type=_choice(request.POST.get("placement_type"), PLACEMENTS),
            location_ids=[v.strip() for v in request.POST.get("location_ids", "").split(",") if v.strip()],
            age_groups=[v for v in request.POST.getlist("age_groups") if v in AGE_GROUPS],
            gender=_choice(request.POST.get("gender", ""), [g for g, _ in GENDERS]),
            budget_mode=_choice(request.POST.get("budget_mode"), BUDGET_MODES[:2]),
            budget=request.POST.get("budget"),
            start=start,
            end=_when(request.POST.get("end")),
        )
    except ApplicationError as exc:
        _refused(request, exc, "The ad group was not created")
        return _back(f"campaign-{campaign.pk}")
    messages.success(request, f"Ad group “{adgroup.name}” created (paused).")
    return _back(f"campaign-{campaign.pk}")


@staff_member_required
@require_POST
def ad_create(request: HttpRequest, adgroup_pk: int) -> HttpResponse:
    adgroup = get_object_or_404(AdGroup.objects.select_related("campaign__account__authorization"), pk=adgroup_pk)
    upload = request.FILES.get("image")
    try:
        if upload is not None and upload.size > 50 * 1024 * 1024:
            raise ApplicationError("image_too_large", "the image is under 50 MB", status=422)
        ad = services.ad_create(
            adgroup=adgroup,
            name=request.POST.get("name", ""),
            ad_text=request.POST.get("ad_text", ""),
            call_to_action=_choice(request.POST.get("call_to_action"), CALLS_TO_ACTION),
            landing_page_url=request.POST.get("landing_page_url", "").strip(),
            image=upload.read() if upload is not None else b"",
            image_name=upload.name if upload is not None else "",
            identity_id=request.POST.get("identity_id", "").strip(),
        )
    except ApplicationError as exc:
        _refused(request, exc, "The ad was not created")
        return _back(f"campaign-{adgroup.campaign_id}")
    messages.success(request, f"Ad “{ad.name}” created: in review, paused.")
    return _back(f"campaign-{adgroup.campaign_id}")


@staff_member_required
@require_POST
def status_change(request: HttpRequest, level: str, pk: int) -> HttpResponse:
    try:
        row = services.status_change(level=level, pk=pk, operation_status=request.POST.get("operation_status", ""))
    except ApplicationError as exc:
        _refused(request, exc, "TikTok did not change the status")
        return _back()
    messages.success(request, f"{row.name}: {STATUS_WORDS[row.operation_status].lower()}d.")
    return _back()


@staff_member_required
@require_POST
def audience_create(request: HttpRequest) -> HttpResponse:
    account = get_object_or_404(AdAccount, pk=_pk(request.POST.get("account")), in_use=True)
    upload = request.FILES.get("file")
    try:
        if upload is None:
            raise ApplicationError("file_required", "choose a CSV file", status=422)
        if upload.size > settings.TIKTOK_ADS_AUDIENCE_MAX_BYTES:
            raise ApplicationError("file_too_large", "the file is too large", status=422)
        kind = _choice(request.POST.get("kind"), [k for k, _ in CustomAudience.Kind.choices])
        audience = services.audience_create(
            account=account, name=request.POST.get("name", ""), kind=kind, raw=upload.read(), user=request.user
        )
    except ApplicationError as exc:
        _refused(request, exc, "The audience was not uploaded")
        return _back("audiences")
    messages.success(
        request,
        f"Audience “{audience.name}”: {audience.rows_valid} valid, {audience.rows_bad} bad of "
        f"{audience.rows_total} rows; hashed here, uploading to TikTok.",
    )
    return _back("audiences")


# --- Charts ---------------------------------------------------------------------------------------------------------


def chart(series: list[dict], key: str, *, width: int = 600, height: int = 160) -> dict:
    """Bars for one metric: rectangles in SVG user units, scaled to the largest day."""
    values = [float(row[key]) for row in series]
    top = max(values) if values and max(values) > 0 else 1.0
    step = width / max(len(values), 1)
    bars = []
    for index, (row, value) in enumerate(zip(series, values, strict=True)):
        bar_height = round(value / top * (height - 20), 1)
        bars.append(
            {
                "x": round(index * step + 1, 1),
                "y": round(height - bar_height, 1),
                "width": round(max(step - 2, 1), 1),
                "height": bar_height,
                "label": f"{row['date']:%Y-%m-%d}: {row[key]}",
            }
        )
    return {"key": key, "width": width, "height": height, "bars": bars, "max": top}


def _detail(request: HttpRequest, *, title: str, ads: list[Ad], brings, subject, account) -> HttpResponse:
    until = services.account_today(account)
    since = until - timedelta(days=CHART_DAYS - 1)
    series = selectors.daily_series(ads=ads, since=since, until=until)
    context = {
        "title": title,
        "subject": subject,
        "account": account,
        "brings": brings,
        "series": series,
        "charts": [chart(series, key) for key in ("spend", "impressions", "clicks", "conversions")],
        "since": since,
        "until": until,
    }
    return render(request, "tiktok_channel/ads_detail.html", context)


@staff_member_required
def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign.objects.select_related("account").prefetch_related("adgroups__ads"), pk=pk)
    ads = [ad for adgroup in campaign.adgroups.all() for ad in adgroup.ads.all()]
    brings = selectors.brings_per_campaign([campaign], selectors.brings_per_ad(ads))[campaign.pk]
    return _detail(
        request, title=f"Campaign {campaign.name}", ads=ads, brings=brings, subject=campaign, account=campaign.account
    )


@staff_member_required
def ad_detail(request: HttpRequest, pk: int) -> HttpResponse:
    ad = get_object_or_404(Ad.objects.select_related("adgroup__campaign__account"), pk=pk)
    brings = selectors.brings_per_ad([ad])[ad.ad_id]
    return _detail(
        request, title=f"Ad {ad.name}", ads=[ad], brings=brings, subject=ad, account=ad.adgroup.campaign.account
    )
