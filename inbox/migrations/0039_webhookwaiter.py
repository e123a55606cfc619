from django.db import migrations, models

SEQUENCE = "inbox_webhookevent_waiting"


def drop_sequence(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP SEQUENCE IF EXISTS {SEQUENCE}")


def create_sequence(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":  # as 0035 made it: raised
        schema_editor.execute(f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE} MINVALUE 0 START 1")


class Migration(migrations.Migration):
    """The processors' waiting flag becomes a row per waiting processor (inbox/models.py `WebhookWaiter`): with one
    shared flag, a processor that lowered it after a busy batch silenced another that was waiting."""

    dependencies = [
        ("inbox", "0038_conversation_activity_no_index_of_its_own"),
    ]

    operations = [
        migrations.CreateModel(
            name="WebhookWaiter",
            fields=[
                (
                    "pid",
                    models.IntegerField(
                        help_text="The listening connection's backend process id.", primary_key=True, serialize=False
                    ),
                ),
                (
                    "backend_start",
                    models.DateTimeField(help_text="When that backend started (a process id can be reused)."),
                ),
            ],
        ),
        migrations.RunPython(drop_sequence, create_sequence),
    ]
