"""Reads of the Ads page and `/api/v1/ads/`: the tree, the daily metrics, and what each ad brings.

"What an ad brings" joins TikTok's spend with the conversations that came from the ad: a conversation counts for an
ad when its referral (stored by the Infobip and the direct webhooks, `Conversation.referral`) names the ad, as
`ad_id` (Infobip's REFERRAL_AD) or as `source_id` of an `AD` referral.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count, Exists, OuterRef, Q, Sum, TextField, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce, NullIf

from inbox.models import Conversation, Conversion, Message
from tiktok_channel.ads.models import Ad, AdAccount, AdMetricDaily, Campaign


def accounts():
    return AdAccount.objects.order_by("-in_use", "name", "advertiser_id")


def campaigns_tree(account_ids):
    return (
        Campaign.objects.filter(account_id__in=account_ids)
        .select_related("account")
        .prefetch_related("adgroups__ads")
        .order_by("-created_at")
    )


@dataclass
class Brings:
    conversations: int = 0
    replied: int = 0
    resolved: int = 0
    conversions: int = 0
    spend: Decimal = Decimal("0.00")
    impressions: int = 0
    clicks: int = 0
    tiktok_conversions: int = 0
    ad_ids: list[str] = field(default_factory=list)

    @property
    def cost_per_conversation(self) -> Decimal | None:
        if not self.conversations:
            return None
        return (self.spend / self.conversations).quantize(Decimal("0.01"))

    def add(self, other: Brings) -> None:
        for name in ("conversations", "replied", "resolved", "conversions", "spend", "impressions", "clicks"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.tiktok_conversions += other.tiktok_conversions

    def as_dict(self) -> dict:
        return {
            "conversations": self.conversations,
            "replied": self.replied,
            "resolved": self.resolved,
            "conversions_reported": self.conversions,
            "spend": str(self.spend.quantize(Decimal("0.01"))),
            "impressions": self.impressions,
            "clicks": self.clicks,
            "tiktok_conversions": self.tiktok_conversions,
            "cost_per_conversation": None if self.cost_per_conversation is None else str(self.cost_per_conversation),
        }


def _ad_key():
    return Coalesce(
        NullIf(KT("referral__ad_id"), Value("", output_field=TextField())),
        NullIf(KT("referral__source_id"), Value("", output_field=TextField())),
        output_field=TextField(),
    )


def brings_per_ad(ads: list[Ad], *, since: date | None = None, until: date | None = None) -> dict[str, Brings]:
    """Per TikTok ad id: the conversations from it (opened in the range, when given) and their replies,
    resolutions and reported conversions, beside the ad's spend in the range. Four queries whatever the count."""
    result = {ad.ad_id: Brings(ad_ids=[ad.ad_id]) for ad in ads}
    if not result:
        return result
    conversations = Conversation.objects.annotate(ad_key=_ad_key()).filter(
        Q(referral__has_key="ad_id") | Q(referral__source="ad"), ad_key__in=list(result)
    )
    if since:
        conversations = conversations.filter(created_at__date__gte=since)
    if until:
        conversations = conversations.filter(created_at__date__lte=until)
    replied = Message.objects.filter(
        conversation=OuterRef("pk"), direction=Message.Direction.OUT, author__isnull=False
    ).exclude(status="failed")
    rows = (
        conversations.annotate(has_reply=Exists(replied))
        .values("ad_key")
        .annotate(
            total=Count("pk", distinct=True),
            replied=Count("pk", filter=Q(has_reply=True), distinct=True),
            resolved=Count("pk", filter=Q(status=Conversation.Status.RESOLVED), distinct=True),
        )
    )
    for row in rows:
        brings = result[row["ad_key"]]
        brings.conversations, brings.replied, brings.resolved = row["total"], row["replied"], row["resolved"]
    ad_of_conversation = dict(conversations.values_list("pk", "ad_key"))
    reported = (
        Conversion.objects.filter(conversation_id__in=list(ad_of_conversation))
        .exclude(status=Conversion.Status.FAILED)
        .values("conversation_id")
        .annotate(total=Count("pk"))
    )
    for row in reported:
        result[ad_of_conversation[row["conversation_id"]]].conversions += row["total"]
    metrics = AdMetricDaily.objects.filter(ad__in=ads)
    if since:
        metrics = metrics.filter(date__gte=since)
    if until:
        metrics = metrics.filter(date__lte=until)
    for row in metrics.values("ad__ad_id").annotate(
        spend=Sum("spend"), impressions=Sum("impressions"), clicks=Sum("clicks"), conversions=Sum("conversions")
    ):
        brings = result[row["ad__ad_id"]]
        brings.spend = row["spend"] or Decimal("0.00")
        brings.impressions, brings.clicks = row["impressions"] or 0, row["clicks"] or 0
        brings.tiktok_conversions = row["conversions"] or 0
    return result


def brings_per_campaign(campaigns, per_ad: dict[str, Brings]) -> dict[int, Brings]:
    totals: dict[int, Brings] = {}
    for campaign in campaigns:
        total = Brings()
        for adgroup in campaign.adgroups.all():
            for ad in adgroup.ads.all():
                if ad.ad_id in per_ad:
                    total.add(per_ad[ad.ad_id])
                    total.ad_ids.append(ad.ad_id)
        totals[campaign.pk] = total
    return totals


def daily_series(*, ads: list[Ad], since: date, until: date) -> list[dict]:
    """One row per day in the range (zeros where TikTok had nothing): spend, impressions, clicks, conversions."""
    days: dict[date, dict] = {}
    rows = (
        AdMetricDaily.objects.filter(ad__in=ads, date__gte=since, date__lte=until)
        .values("date")
        .annotate(
            spend=Sum("spend"), impressions=Sum("impressions"), clicks=Sum("clicks"), conversions=Sum("conversions")
        )
    )
    for row in rows:
        days[row["date"]] = row
    series = []
    day = since
    while day <= until:
        row = days.get(day, {})
        series.append(
            {
                "date": day,
                "spend": row.get("spend") or Decimal("0.00"),
                "impressions": row.get("impressions") or 0,
                "clicks": row.get("clicks") or 0,
                "conversions": row.get("conversions") or 0,
            }
        )
        day += timedelta(days=1)
    return series
