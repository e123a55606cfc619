from __future__ import annotations

import pytest

from tiktok_channel.ads.models import Ad, AdAccount, AdGroup, AdvertiserAuthorization, Campaign

API = "https://ads-api.example.test/open_api/v1.3"
TOKEN = "adv-token-secret-123"
ADVERTISER = "7012345678901234567"


def envelope(data=None, code: int = 0, message: str = "OK") -> dict:
    return {"code": code, "message": message, "request_id": "r-1", "data": data if data is not None else {}}


@pytest.fixture(autouse=True)
def _marketing_settings(settings):
    settings.TIKTOK_MARKETING_API_BASE = API
    settings.TIKTOK_MARKETING_AUTH_URL = "https://ads-auth.example.test/portal/auth"
    settings.TIKTOK_MARKETING_APP_ID = "app-123"
    settings.TIKTOK_MARKETING_APP_SECRET = "app-secret-xyz"
    settings.TIKTOK_ADS_WEBHOOK_PATH_TOKEN = ""
    settings.TIKTOK_ADS_DEFAULT_COUNTRY_CODE = "44"


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("adboss", password="boss-pass-123", is_staff=True)


@pytest.fixture
def ad_account(db) -> AdAccount:
    authorization = AdvertiserAuthorization.objects.create(access_token=TOKEN, advertiser_ids=[ADVERTISER])
    return AdAccount.objects.create(
        authorization=authorization,
        advertiser_id=ADVERTISER,
        name="Shop",
        currency="EUR",
        timezone="Europe/Berlin",
        in_use=True,
    )


@pytest.fixture
def campaign(ad_account) -> Campaign:
    return Campaign.objects.create(
        account=ad_account, campaign_id="1780000000000001", name="Spring", objective_type="LEAD_GENERATION"
    )


@pytest.fixture
def adgroup(campaign) -> AdGroup:
    return AdGroup.objects.create(campaign=campaign, adgroup_id="1780000000000002", name="UK")


@pytest.fixture
def ad(adgroup) -> Ad:
    return Ad.objects.create(adgroup=adgroup, ad_id="1780000000000003", name="Ask us")
