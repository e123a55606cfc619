"""`/api/v1/ads/…` for staff: the tree with what each ad and campaign brings, one ad's or campaign's daily figures,
and enable / pause / delete (TikTok's refusal as `{"code": "tiktok_<code>", "message"}`, 422)."""

from __future__ import annotations

from datetime import timedelta

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response

from inbox.errors import ApplicationError
from tiktok_channel.ads import selectors, services
from tiktok_channel.ads.models import Ad, Campaign

DAYS = 30


class BringsSerializer(serializers.Serializer):
    conversations = serializers.IntegerField(help_text="Conversations whose referral names the ad")
    replied = serializers.IntegerField(help_text="Of them, answered by an agent")
    resolved = serializers.IntegerField()
    conversions_reported = serializers.IntegerField(help_text="Conversions agents reported (not failed)")
    spend = serializers.CharField(help_text="TikTok's spend, decimal as a string, in the account's currency")
    impressions = serializers.IntegerField()
    clicks = serializers.IntegerField()
    tiktok_conversions = serializers.IntegerField(help_text="Conversions in TikTok's report")
    cost_per_conversation = serializers.CharField(allow_null=True, help_text="spend / conversations")


def _ad(ad: Ad, brings) -> dict:
    return {
        "id": ad.pk,
        "ad_id": ad.ad_id,
        "name": ad.name,
        "operation_status": ad.operation_status,
        "review_status": ad.review_status,
        "reject_reason": ad.reject_reason,
        "brings": brings.as_dict(),
    }


class AdsIndexView(GenericAPIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        summary="Ad accounts in use, their campaigns → ad groups → ads, and what each ad and campaign brings",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        accounts = [a for a in selectors.accounts() if a.in_use]
        campaigns = list(selectors.campaigns_tree([a.pk for a in accounts]))
        ads = [ad for c in campaigns for g in c.adgroups.all() for ad in g.ads.all()]
        per_ad = selectors.brings_per_ad(ads)
        per_campaign = selectors.brings_per_campaign(campaigns, per_ad)
        out = []
        for account in accounts:
            out.append(
                {
                    "id": account.pk,
                    "advertiser_id": account.advertiser_id,
                    "name": account.name,
                    "currency": account.currency,
                    "timezone": account.timezone,
                    "campaigns": [
                        {
                            "id": c.pk,
                            "campaign_id": c.campaign_id,
                            "name": c.name,
                            "objective_type": c.objective_type,
                            "operation_status": c.operation_status,
                            "brings": per_campaign[c.pk].as_dict(),
                            "adgroups": [
                                {
                                    "id": g.pk,
                                    "adgroup_id": g.adgroup_id,
                                    "name": g.name,
                                    "operation_status": g.operation_status,
                                    "ads": [_ad(ad, per_ad[ad.ad_id]) for ad in g.ads.all()],
                                }
                                for g in c.adgroups.all()
                            ],
                        }
                        for c in campaigns
                        if c.account_id == account.pk
                    ],
                }
            )
        return Response({"accounts": out})


def _daily(ads: list[Ad], account) -> list[dict]:
    until = services.account_today(account)
    series = selectors.daily_series(ads=ads, since=until - timedelta(days=DAYS - 1), until=until)
    return [{**row, "date": row["date"].isoformat(), "spend": str(row["spend"])} for row in series]


class AdDetailView(GenericAPIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        summary="One ad (by TikTok's ad id): what it brings and its last 30 days",
        responses={
            200: inline_serializer("AdBrings", {"brings": BringsSerializer(), "ad_id": serializers.CharField()})
        },
    )
    def get(self, request: Request, ad_id: str) -> Response:
        ad = Ad.objects.select_related("adgroup__campaign__account").filter(ad_id=ad_id).first()
        if ad is None:
            raise ApplicationError("not_found", "no such ad", status=404)
        brings = selectors.brings_per_ad([ad])[ad.ad_id]
        return Response({**_ad(ad, brings), "daily": _daily([ad], ad.adgroup.campaign.account)})


class CampaignDetailView(GenericAPIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        summary="One campaign (by TikTok's id): what its ads bring and its last 30 days",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, campaign_id: str) -> Response:
        campaign = (
            Campaign.objects.select_related("account")
            .prefetch_related("adgroups__ads")
            .filter(campaign_id=campaign_id)
            .first()
        )
        if campaign is None:
            raise ApplicationError("not_found", "no such campaign", status=404)
        ads = [ad for g in campaign.adgroups.all() for ad in g.ads.all()]
        per_ad = selectors.brings_per_ad(ads)
        brings = selectors.brings_per_campaign([campaign], per_ad)[campaign.pk]
        return Response(
            {
                "campaign_id": campaign.campaign_id,
                "name": campaign.name,
                "operation_status": campaign.operation_status,
                "brings": brings.as_dict(),
                "ads": [_ad(ad, per_ad[ad.ad_id]) for ad in ads],
                "daily": _daily(ads, campaign.account),
            }
        )


class StatusView(GenericAPIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        summary="Enable, pause (DISABLE) or delete a campaign, ad group or ad at TikTok",
        request=inline_serializer(
            "AdsStatusChange", {"operation_status": serializers.ChoiceField(services.OPERATION_STATUSES)}
        ),
        responses={200: OpenApiTypes.OBJECT},
    )
    def post(self, request: Request, level: str, pk: int) -> Response:
        status = request.data.get("operation_status") if isinstance(request.data, dict) else None
        row = services.status_change(level=level, pk=pk, operation_status=str(status or ""))
        return Response({"id": row.pk, "operation_status": row.operation_status})
