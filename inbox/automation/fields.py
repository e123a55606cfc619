"""The automation's secrets use the core's encrypted field (`inbox/fields.py`); this name stays for migration 0018."""

from inbox.fields import EncryptedTextField

EncryptedSecretField = EncryptedTextField

__all__ = ["EncryptedSecretField"]
