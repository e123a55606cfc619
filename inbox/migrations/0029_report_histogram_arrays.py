# The report histograms as two integer arrays (tenths of a minute, samples) instead of a JSON map, so PostgreSQL can
# merge them per chart group (inbox.reports.selectors). The rows are refilled from the cycles already kept, as
# migration 0028 first filled them: an upgrade needs no rebuild.

import django.db.models.deletion
from django.db import migrations, models

import inbox.reports.models

# As migration 0028 created it (its reverse needs it back).
HISTOGRAM_ADD = """
CREATE OR REPLACE FUNCTION inbox_report_histogram_add(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(jsonb_object_agg(key, total), '{}'::jsonb)
  FROM (SELECT key, sum(value::bigint) AS total
        FROM (SELECT * FROM jsonb_each_text(a) UNION ALL SELECT * FROM jsonb_each_text(b)) AS e(key, value)
        GROUP BY key) AS sums
  WHERE total <> 0
$$
"""


def shown_tenths(seconds: int) -> int:
    """As inbox.reports.rollups.shown_tenths (copied: a migration must not change when the code does)."""
    return round(round(seconds / 60, 1) * 10)


def fill_from_cycles(apps, schema_editor):
    """The histograms from the cycles kept (what `rebuild_reports` would write): the cycles' samples grouped by
    (inbox, day, agent, seconds), rounded here, in Python, exactly as the code rounds them."""
    connection = schema_editor.connection
    histograms = {}
    with connection.cursor() as cursor:
        for metric, day, agent, seconds in (
            ("first_response", "first_response_day", "responder_id", "first_response_seconds"),
            ("resolution", "resolved_day", "agent_id", "resolution_seconds"),
        ):
            cursor.execute(
                f"SELECT inbox_id, {day}, {agent}, {seconds}, count(*) FROM inbox_reportcycle "  # noqa: S608
                f"WHERE {day} IS NOT NULL AND {seconds} IS NOT NULL GROUP BY 1, 2, 3, 4"
            )
            for inbox_id, on, agent_id, value, n in cursor.fetchall():
                counts = histograms.setdefault((inbox_id, metric, on, agent_id), {})
                tenths = shown_tenths(value)
                counts[tenths] = counts.get(tenths, 0) + n
    ReportHistogram = apps.get_model("inbox", "ReportHistogram")
    ReportHistogram.objects.using(connection.alias).bulk_create(
        [
            ReportHistogram(
                inbox_id=inbox_id,
                metric=metric,
                day=on,
                agent_id=agent_id,
                tenths=sorted(counts),
                samples=[counts[tenths] for tenths in sorted(counts)],
            )
            for (inbox_id, metric, on, agent_id), counts in histograms.items()
        ],
        batch_size=1000,
    )


def drop_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("DROP FUNCTION IF EXISTS inbox_report_histogram_add(jsonb, jsonb)")


def create_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(HISTOGRAM_ADD)


class Migration(migrations.Migration):

    dependencies = [
        ('inbox', '0028_report_histograms'),
    ]

    operations = [
        migrations.RunPython(drop_function, create_function),
        migrations.DeleteModel(name='ReportHistogram'),
        migrations.CreateModel(
            name='ReportHistogram',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('metric', models.CharField(choices=[('first_response', 'First response'), ('resolution', 'Resolution')], max_length=16)),
                ('day', models.DateField()),
                ('agent_id', models.BigIntegerField(default=0)),
                ('tenths', inbox.reports.models.IntegerListField(default=list, help_text='Durations shown, tenths of a minute, ascending')),
                ('samples', inbox.reports.models.IntegerListField(default=list, help_text='How many samples took each of `tenths` (none zero)')),
                ('inbox', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='inbox.inbox')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('inbox', 'metric', 'day', 'agent_id'), name='reporthistogram_unique_key')],
            },
        ),
        migrations.RunPython(fill_from_cycles, migrations.RunPython.noop),
    ]
