from django.db import migrations, models

SEQUENCE = "inbox_webhookevent_waiting"
LEDGER_FILLFACTOR = 50


def drop_sequence(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP SEQUENCE IF EXISTS {SEQUENCE}")


def create_sequence(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":  # as 0035 made it: raised
        schema_editor.execute(f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE} MINVALUE 0 START 1")


def ledger_fillfactor(percent: int | None):
    def alter(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            setting = f"SET (fillfactor = {percent})" if percent else "RESET (fillfactor)"
            schema_editor.execute(f"ALTER TABLE inbox_webhookevent {setting}")

    return alter


class Migration(migrations.Migration):
    """The processors' waiting flag becomes a row per waiting processor (inbox/models.py `WebhookWaiter`): with one
    shared flag, a processor that lowered it after a busy batch silenced another that was waiting.

    And the ledger's pages filled by INSERTs only half (`fillfactor` 50): each row's verdict UPDATE then finds room on
    the row's own page, and its WAL record carries the changed bytes instead of a copy of the whole row (the body:
    ~900 bytes fewer per request, bench/README.md "ninth session, branch proc5"). Pages already written keep theirs.
    The table is no larger for it: without the room, every verdict moved its row to a new page, the old version dead."""

    dependencies = [
        ("inbox", "0039_report_marks_by_batch"),
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
        migrations.RunPython(ledger_fillfactor(LEDGER_FILLFACTOR), ledger_fillfactor(None)),
    ]
