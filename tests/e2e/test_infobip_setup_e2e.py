"""Done when (issue 23): an account is set up against the sandbox from nothing, twice without duplicates; a signed
inbound message arrives through the subscription it created; the health page is green; a broken subscription in the
sandbox turns it red."""

from __future__ import annotations

import pytest

from inbox.models import Message
from tiktok_channel import setup
from tiktok_channel.models import InfobipAccount

pytestmark = [pytest.mark.e2e]


def health_state(client, account) -> str:
    page = client.get("/connections/infobip/").content.decode()
    marker = f'data-account="{account.pk}" data-state="'
    assert marker in page, page[:2000]
    return page.split(marker, 1)[1].split('"', 1)[0]


def test_set_up_twice_deliver_through_the_subscription_then_break_it(stack, client, django_user_model, settings):
    # From nothing: an API key and a sender, no webhook secret (what "paste your API key" leaves).
    InfobipAccount.objects.filter(pk=stack.account.pk).update(webhook_auth="hmac", webhook_secret="")
    account = stack.account

    first = setup.account_setup(account.pk)
    second = setup.account_setup(account.pk)

    assert first.state == "complete", first.as_dict()
    assert [s["outcome"] for s in first.steps] == ["ok", "created", "created", "created"]
    assert second.state == "complete", second.as_dict()
    assert [s["outcome"] for s in second.steps[1:]] == ["unchanged", "unchanged", "unchanged"]
    assert stack.sandbox.sandbox.subscriptions.summary() == {"security": 1, "profiles": 1, "subscriptions": 1}
    account.refresh_from_db()
    assert account.webhook_secret and account.setup_state == InfobipAccount.SetupState.COMPLETE

    # A TikTok user writes: the sandbox posts to the subscription's profile URL, signed with its security settings.
    result = stack.sandbox.sandbox.inbound({"sender": stack.business_id, "user": "tt-setup", "text": "Hi via setup"})
    assert result["status"] == 200, result
    stack.wait_processed()
    assert Message.objects.filter(direction="in", text="Hi via setup").exists()
    [posted] = [d for d in stack.sandbox.deliveries() if d["kind"] == "inbound"]
    assert posted["url"] == account.webhook_url

    staff = django_user_model.objects.create_user("lead", password="pw-123456789", is_staff=True)
    client.force_login(staff)
    reply = stack.reply(stack.conversation("tt-setup").pk, "Hello back")
    assert reply.status_code == 201, reply.text
    stack.wait_for(lambda: Message.objects.get(pk=reply.json()["id"]).status == "seen", 15, "the reply to be seen")
    assert health_state(client, account) == "green"

    # Break the subscription: Infobip accepts sends, nothing arrives any more.
    stack.sandbox.control(subscriptions_broken=True)
    settings.INFOBIP_HEALTH_SILENCE_SECONDS = 1
    silent = stack.reply(stack.conversation("tt-setup").pk, "Anyone there?")
    assert silent.status_code == 201, silent.text
    stack.wait_for(lambda: Message.objects.get(pk=silent.json()["id"]).status == "accepted", 15, "the send accepted")
    stack.wait_for(lambda: health_state(client, account) == "red", 10, "the health page to turn red")
    assert stack.sandbox.counters().get("webhooks_delivery_unsubscribed", 0) >= 1
