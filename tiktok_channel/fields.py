"""The encrypted field lives in the core (`inbox/fields.py`); this path stays for the migrations that name it."""

from inbox.fields import EncryptedTextField

__all__ = ["EncryptedTextField"]
