from django.db import migrations

SEQUENCE = "inbox_webhookevent_waiting"


def create(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":  # elsewhere the wake-up is a Redis PUBLISH, always sent
        # Starts raised: until a processor says it is busy, every stored request notifies (the old behaviour).
        schema_editor.execute(f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE} MINVALUE 0 START 1")


def drop(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP SEQUENCE IF EXISTS {SEQUENCE}")


class Migration(migrations.Migration):
    """The processors' "someone is waiting for a wake-up" flag, read by the webhook's INSERT (inbox/processor.py,
    `WAITING_FLAG`): a sequence, because `setval` takes effect at once for every session and is never rolled back."""

    dependencies = [
        ("inbox", "0034_webhookevent_indexes"),
    ]

    operations = [migrations.RunPython(create, drop)]
