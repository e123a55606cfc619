"""An ad review reaches staff sockets (the `staff` group) over the real Redis channel layer; agents hear nothing."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from tests.inbox.test_consumers import connect
from tiktok_channel.ads import services
from tiktok_channel.ads.models import Ad, AdAccount, AdGroup, AdvertiserAuthorization, Campaign

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def anyio_backend():
    return "asyncio"


def make_ad() -> Ad:
    authorization = AdvertiserAuthorization.objects.create(access_token="t")
    account = AdAccount.objects.create(authorization=authorization, advertiser_id="701", in_use=True)
    campaign = Campaign.objects.create(account=account, campaign_id="c1", name="C", objective_type="TRAFFIC")
    adgroup = AdGroup.objects.create(campaign=campaign, adgroup_id="g1", name="G")
    return Ad.objects.create(adgroup=adgroup, ad_id="a1", name="A")


async def test_staff_hear_an_ad_review_and_agents_do_not(django_user_model):
    ad = await sync_to_async(make_ad)()
    staff = await django_user_model.objects.acreate(username="lead", is_staff=True)
    agent = await django_user_model.objects.acreate(username="agent")
    staff_ws, agent_ws = await connect(staff), await connect(agent)

    changed = await sync_to_async(services.reviews_apply)([{"ad_id": ad.ad_id, "reject_reason": "Misleading"}])
    assert changed == 1
    event = await staff_ws.receive_json_from(timeout=5)
    assert event == {"type": "ad.review_changed", "ad_id": "a1", "review_status": "rejected"}
    assert await agent_ws.receive_nothing(timeout=0.5)
    await staff_ws.disconnect()
    await agent_ws.disconnect()
