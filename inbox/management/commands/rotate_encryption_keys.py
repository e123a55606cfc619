"""Re-encrypt every stored secret, in every app, with the first key of FIELD_ENCRYPTION_KEYS."""

from django.core.management.base import BaseCommand
from django.db import transaction

from inbox.fields import encrypted_columns

BATCH_SIZE = 500


class Command(BaseCommand):
    help = "Re-encrypt stored secrets with the newest key (the first of FIELD_ENCRYPTION_KEYS)."

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            for model, names in encrypted_columns():
                # Loading decrypts with whichever listed key matches; writing encrypts with the first. bulk_update
                # writes the columns only (no save() side effects, no other column touched).
                rows = list(model._default_manager.select_for_update().order_by("pk").only("pk", *names))
                model._default_manager.bulk_update(rows, names, batch_size=BATCH_SIZE)
                self.stdout.write(f"re-encrypted {len(rows)} {model._meta.label} row(s) ({', '.join(names)})")
