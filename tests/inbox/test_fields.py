"""The core's encrypted field and `manage.py rotate_encryption_keys` over every app's encrypted columns."""

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.db import connection

from inbox.automation import rules
from inbox.automation.models import AutomationRule
from inbox.fields import EncryptedTextField, encrypted_columns


def raw_secret(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT webhook_secret FROM inbox_automationrule WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_encrypted_columns_are_found_by_the_field_class_in_every_app():
    found = {model._meta.label: names for model, names in encrypted_columns()}
    assert found["inbox.AutomationRule"] == ["webhook_secret"]
    assert found["tiktok_channel.InfobipAccount"] == ["api_key", "webhook_secret", "basic_password"]
    assert set(found["tiktok_channel.TikTokConnection"]) == {"access_token", "refresh_token"}
    assert found["tiktok_channel.TikTokApp"] == ["client_secret"]


def test_the_old_import_paths_of_migrations_are_the_same_field():
    from inbox.automation.fields import EncryptedSecretField
    from tiktok_channel.fields import EncryptedTextField as ProviderField

    assert EncryptedSecretField is EncryptedTextField and ProviderField is EncryptedTextField


@pytest.mark.django_db
def test_rotation_reencrypts_an_automation_rule_secret(inbox, settings):
    rule = rules.rule_create(
        inbox_id=inbox.pk,
        name="Notify the CRM",
        actor=None,
        event="conversation_created",
        no_reply_minutes=None,
        conditions=[],
        actions=[{"type": "webhook", "url": "https://crm.example.com/hook"}],
    )
    secret = AutomationRule.objects.get(pk=rule.pk).webhook_secret
    assert secret
    before = raw_secret(rule.pk)
    assert secret not in before and before.startswith("gAAAA")  # a Fernet token, not the secret
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    with pytest.raises(InvalidToken):
        Fernet(new_key.encode()).decrypt(before.encode())

    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_encryption_keys", verbosity=0)
    after = raw_secret(rule.pk)
    assert after != before
    assert Fernet(new_key.encode()).decrypt(after.encode()).decode() == secret

    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key is gone: the secret must still read
    assert AutomationRule.objects.get(pk=rule.pk).webhook_secret == secret
