"""Re-encrypt every stored secret with the first key of FIELD_ENCRYPTION_KEYS."""

from django.core.management.base import BaseCommand
from django.db import transaction

from tiktok_channel.models import InfobipAccount

ENCRYPTED_FIELDS = ["api_key", "webhook_secret", "basic_password"]


class Command(BaseCommand):
    help = "Re-encrypt stored secrets with the newest key (the first of FIELD_ENCRYPTION_KEYS)."

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            # Loading decrypts with whichever listed key matches; saving encrypts with the first.
            accounts = list(InfobipAccount.objects.select_for_update().order_by("pk"))
            for account in accounts:
                account.save(update_fields=ENCRYPTED_FIELDS)
        self.stdout.write(f"re-encrypted {len(accounts)} account(s)")
