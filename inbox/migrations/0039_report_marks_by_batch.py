"""The roll-ups' marks as one row per event batch (ReportMarkBatch) instead of one per conversation (ReportDirty):
the marks not drained yet are carried over, up to 500 conversations a row."""

from django.db import migrations, models

CHUNK = 500


def to_batches(apps, schema_editor):
    ReportDirty = apps.get_model("inbox", "ReportDirty")
    ReportMarkBatch = apps.get_model("inbox", "ReportMarkBatch")
    marks = list(ReportDirty.objects.order_by("conversation_id"))
    for start in range(0, len(marks), CHUNK):
        chunk = marks[start : start + CHUNK]
        ReportMarkBatch.objects.create(
            marked_at=min(mark.marked_at for mark in chunk),
            size=len(chunk),
            conversations=[
                [mark.conversation_id, mark.full, mark.opened and not mark.full, list(mark.message_ids or [])]
                for mark in chunk
            ],
        )


def to_conversations(apps, schema_editor):
    ReportDirty = apps.get_model("inbox", "ReportDirty")
    ReportMarkBatch = apps.get_model("inbox", "ReportMarkBatch")
    merged = {}
    for batch in ReportMarkBatch.objects.order_by("pk"):
        for pk, full, opened, messages in batch.conversations:
            mark = merged.setdefault(pk, ReportDirty(conversation_id=pk, marked_at=batch.marked_at, full=False))
            mark.full, mark.opened = mark.full or full, mark.opened or opened
            mark.message_ids = [*(mark.message_ids or []), *messages]
    ReportDirty.objects.bulk_create(merged.values())


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0038_conversation_activity_no_index_of_its_own"),
    ]

    operations = [
        migrations.CreateModel(
            name="ReportMarkBatch",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("marked_at", models.DateTimeField()),
                ("size", models.PositiveIntegerField(help_text="How many conversations `conversations` lists")),
                (
                    "conversations",
                    models.JSONField(
                        help_text="[conversation id, full, opened, [new customer message ids]] per conversation: "
                        "full False, only those new messages since (the fast path); opened, those messages opened it "
                        "(it had no figures before them)"
                    ),
                ),
            ],
        ),
        migrations.RunPython(to_batches, to_conversations),
        migrations.DeleteModel(name="ReportDirty"),
    ]
