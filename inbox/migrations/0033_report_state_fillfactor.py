from django.db import migrations


def fillfactor(value: str):
    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":  # SQLite has no such storage parameter
            schema_editor.execute(f"ALTER TABLE inbox_reportstate {value}")

    return run


class Migration(migrations.Migration):
    """Room on each page of the roll-ups' states for their updates to stay on the page (HOT: no new index entry). A
    drain rewrites every marked conversation's state; at fillfactor 100 none of those updates was HOT (bench/README,
    "Roll-up maintenance, sixth session"). Existing pages get the room as they are rewritten (or by VACUUM FULL)."""

    dependencies = [
        ("inbox", "0032_report_dirty_opened"),
    ]

    operations = [
        migrations.RunPython(fillfactor("SET (fillfactor = 50)"), fillfactor("RESET (fillfactor)"), elidable=False),
    ]
