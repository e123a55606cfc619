from django.db import migrations

# The contacts' pages half filled by INSERTs (80 % since 0031): an inbound batch moves `last_seen_at` of every contact
# it touches in one statement, so each of a page's contacts needs room for its new version on the page at once (the
# versions the same transaction replaces cannot be pruned yet). At 80 % a quarter of them found it (1,106 HOT of 4,400
# in a profile) and the rest went to another page: a heap LOCK record, the new version, and an entry in both indexes —
# 4 WAL records an event instead of 1 (bench/README.md "Set-based intake, tenth session"). Pages written before this
# migration keep their fill until they are rewritten (VACUUM FULL); new pages take the new setting.

CONTACT_FILLFACTOR = 50


def contact_fillfactor(percent: int):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"ALTER TABLE inbox_contact SET (fillfactor = {percent})")

    return apply


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0042_report_source_name_named_only"),
    ]

    operations = [
        migrations.RunPython(contact_fillfactor(CONTACT_FILLFACTOR), contact_fillfactor(80)),
    ]
