import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from tiktok_channel.models import InfobipAccount

SECRETS = {"api_key": "App-key-SUPERSECRET-1", "webhook_secret": "hmac-SUPERSECRET-2", "basic_password": "pw-3"}


def raw_columns(pk: int) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT api_key, webhook_secret, basic_password FROM tiktok_channel_infobipaccount WHERE id = %s", [pk]
        )
        return dict(zip(SECRETS, cursor.fetchone(), strict=True))


@pytest.mark.django_db
def test_secrets_are_encrypted_in_the_raw_columns_and_readable_through_the_model(make_account):
    account = make_account(**SECRETS)
    raw = raw_columns(account.pk)
    for name, secret in SECRETS.items():
        assert secret not in raw[name]
        assert raw[name].startswith("gAAAA")  # a Fernet token
    fresh = InfobipAccount.objects.get(pk=account.pk)
    assert {name: getattr(fresh, name) for name in SECRETS} == SECRETS


@pytest.mark.django_db
def test_key_rotation_reencrypts_with_the_new_key(make_account, settings):
    account = make_account(**SECRETS)
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    before = raw_columns(account.pk)

    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_encryption_keys", verbosity=0)
    after = raw_columns(account.pk)
    assert all(after[name] != before[name] for name in SECRETS)

    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key is gone: secrets must still read
    fresh = InfobipAccount.objects.get(pk=account.pk)
    assert fresh.api_key == SECRETS["api_key"]
    assert Fernet(new_key.encode()).decrypt(after["api_key"].encode()).decode() == SECRETS["api_key"]
