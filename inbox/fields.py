"""Secrets encrypted at rest with Fernet (the `cryptography` package), for every app (providers' credentials,
automation's signing keys).

A small field rather than a third-party one so that the key is its own setting
(FIELD_ENCRYPTION_KEYS, not derived from SECRET_KEY) and rotation is plain MultiFernet:
the first key encrypts, every listed key decrypts (`manage.py rotate_encryption_keys` re-encrypts every column of
this field, found by its class over all models).
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, MultiFernet
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@lru_cache(maxsize=4)
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: set at least one Fernet key.")
    return MultiFernet([Fernet(key) for key in keys])


def fernet() -> MultiFernet:
    return _fernet_for(tuple(settings.FIELD_ENCRYPTION_KEYS))


class EncryptedTextField(models.TextField):
    """Stores `Fernet(plaintext)`; the model attribute is always the plaintext. Not searchable."""

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return fernet().encrypt(value.encode()).decode()

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return value
        return fernet().decrypt(value.encode()).decode()


def encrypted_columns() -> list[tuple[type[models.Model], list[str]]]:
    """Every concrete model with encrypted fields, and their attribute names."""
    found = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        names = [f.attname for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if names:
            found.append((model, names))
    return found
