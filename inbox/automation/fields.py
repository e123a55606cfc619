"""Secrets of the automation (outgoing-webhook signing keys), encrypted at rest with the project's Fernet keys.

The same scheme as the provider's credentials (FIELD_ENCRYPTION_KEYS, MultiFernet: the first key encrypts, every
listed key decrypts); `inbox/` may not import the provider app, so the small field lives here too.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@lru_cache(maxsize=4)
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: set at least one Fernet key.")
    return MultiFernet([Fernet(key) for key in keys])


class EncryptedSecretField(models.TextField):
    """Stores `Fernet(plaintext)`; the model attribute is always the plaintext."""

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return _fernet_for(tuple(settings.FIELD_ENCRYPTION_KEYS)).encrypt(value.encode()).decode()

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return value
        return _fernet_for(tuple(settings.FIELD_ENCRYPTION_KEYS)).decrypt(value.encode()).decode()
