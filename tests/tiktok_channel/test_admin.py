import pytest

from tiktok_channel.models import InfobipAccount, TikTokSender


def account_form(**overrides) -> dict:
    data = {
        "name": "Main",
        "base_url": "https://abc.api.infobip.com",
        "active": "on",
        "api_key": "APIKEY-abcdef-9876",
        "webhook_auth": "hmac",
        "hmac_algorithm": "HMAC_SHA_256",
        "signature_header": "X-Hub-Signature",
        "signature_encoding": "hex",
        "signature_prefix": "",
        "webhook_secret": "whsec-value",
        "basic_username": "",
        "basic_password": "",
        "senders-TOTAL_FORMS": "1",
        "senders-INITIAL_FORMS": "0",
        "senders-MIN_NUM_FORMS": "0",
        "senders-MAX_NUM_FORMS": "1000",
        "senders-0-business_account_id": "biz-77",
        "senders-0-display_name": "Shop",
        "senders-0-active": "on",
    }
    data.update(overrides)
    return data


@pytest.mark.django_db
def test_admin_creates_account_and_shows_webhook_url_but_never_secrets(admin_client, inbox):
    response = admin_client.post(
        "/admin/tiktok_channel/infobipaccount/add/", account_form(**{"senders-0-inbox": inbox.pk})
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    account = InfobipAccount.objects.get()
    assert account.api_key == "APIKEY-abcdef-9876" and account.webhook_secret == "whsec-value"
    assert TikTokSender.objects.get().inbox == inbox

    page = admin_client.get(f"/admin/tiktok_channel/infobipaccount/{account.pk}/change/").content.decode()
    assert account.webhook_url in page
    assert "whsec-value" not in page
    assert "APIKEY-abcdef-9876" not in page
    assert "9876" in page  # the last four characters identify the key


@pytest.mark.django_db
def test_editing_with_empty_secret_boxes_keeps_the_stored_secrets(admin_client, make_account):
    account = make_account(name="Main", api_key="APIKEY-abcdef-9876", webhook_secret="whsec-value")
    sender = account.senders.get()
    data = account_form(
        api_key="",
        webhook_secret="",
        name="Renamed",
        **{
            "senders-INITIAL_FORMS": "1",
            "senders-0-id": sender.pk,
            "senders-0-account": account.pk,
            "senders-0-business_account_id": sender.business_account_id,
            "senders-0-inbox": sender.inbox_id,
        },
    )
    response = admin_client.post(f"/admin/tiktok_channel/infobipaccount/{account.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    account.refresh_from_db()
    assert (account.name, account.api_key, account.webhook_secret) == ("Renamed", "APIKEY-abcdef-9876", "whsec-value")


@pytest.mark.django_db
def test_admin_refuses_a_secret_header_without_secret(admin_client, inbox):
    form = account_form(webhook_secret="", webhook_auth="header", **{"senders-0-inbox": inbox.pk})
    response = admin_client.post("/admin/tiktok_channel/infobipaccount/add/", form)
    assert response.status_code == 200
    assert "Required for header authentication." in response.content.decode()
    assert not InfobipAccount.objects.exists()


@pytest.mark.django_db
def test_admin_takes_just_the_api_key_for_set_up_and_refuses_webhooks_until_then(admin_client, inbox, client):
    """Paste the API key, save, press Set up: HMAC without a secret is allowed, and nothing is accepted meanwhile."""
    response = admin_client.post(
        "/admin/tiktok_channel/infobipaccount/add/", account_form(webhook_secret="", **{"senders-0-inbox": inbox.pk})
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    account = InfobipAccount.objects.get()
    assert account.webhook_secret == "" and account.subscription_channel == "TIKTOK"
    refused = client.post(
        f"/webhooks/infobip/tiktok/{account.webhook_token}/",
        b'{"results": []}',
        content_type="application/json",
        headers={"X-Hub-Signature": "anything"},
    )
    assert refused.status_code == 401
    assert "no webhook secret yet" in refused.json()["message"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/admin/inbox/conversation/?q=anything&status__exact=open",
        "/admin/inbox/message/?q=hello&direction__exact=in",
        "/admin/inbox/contact/?q=x",
        "/admin/inbox/auditlog/",
    ],
)
def test_inbox_admin_lists_search_and_filter(admin_client, url):
    assert admin_client.get(url).status_code == 200


@pytest.mark.django_db
def test_an_account_set_up_in_infobip_is_disconnected_before_it_can_be_deleted(admin_client, make_account):
    account = make_account(infobip_profile_id="tiktok-inbox-profile-1")
    delete = f"/admin/tiktok_channel/infobipaccount/{account.pk}/delete/"
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert InfobipAccount.objects.filter(pk=account.pk).exists()
    InfobipAccount.objects.filter(pk=account.pk).update(infobip_profile_id="")
    assert admin_client.post(delete, {"post": "yes"}).status_code == 302
    assert not InfobipAccount.objects.filter(pk=account.pk).exists()
