"""The webhook ledger, moved from tiktok_channel (its migration 0007 turned the account key into a connection
id): taken into this app's state on the existing table, given a provider column (every existing row came
through Infobip), then the table is renamed to this app's."""

from django.db import migrations, models

VERDICTS = [
    ("pending", "Stored, not processed yet"),
    ("processed", "Processed"),
    ("partial", "Processed with errors"),
    ("rejected", "Rejected (bad input)"),
    ("failed", "Processing failed"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0005_parked_report"),
        ("tiktok_channel", "0007_webhook_ledger_to_the_core"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="WebhookEvent",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "connection_id",
                            models.BigIntegerField(
                                help_text="The provider's connection (e.g. Infobip account) it came to."
                            ),
                        ),
                        (
                            "path_kind",
                            models.CharField(help_text="any, inbound, delivery or seen (from the URL)", max_length=16),
                        ),
                        ("received_at", models.DateTimeField(db_index=True)),
                        ("headers", models.JSONField(default=dict, help_text="Request headers, credentials removed.")),
                        ("body", models.TextField()),
                        ("result_count", models.PositiveIntegerField(default=0)),
                        ("verdict", models.CharField(choices=VERDICTS, max_length=16)),
                        ("summary", models.JSONField(blank=True, default=dict, help_text="Counts per outcome.")),
                        ("error", models.TextField(blank=True)),
                        (
                            "problems",
                            models.JSONField(
                                blank=True,
                                default=list,
                                help_text='Results kept but not applied, each {"index", "reason"}: a wrong shape, '
                                "or one we do not understand.",
                            ),
                        ),
                        ("replayed_at", models.DateTimeField(blank=True, null=True)),
                    ],
                    options={
                        "ordering": ["-received_at", "-id"],
                        "db_table": "tiktok_channel_webhookevent",
                        "indexes": [
                            models.Index(fields=["verdict", "received_at"], name="webhookevent_verdict_time"),
                            models.Index(
                                condition=models.Q(("verdict", "pending")), fields=["id"], name="webhookevent_pending"
                            ),
                        ],
                    },
                )
            ]
        ),
        migrations.AddField(
            model_name="webhookevent",
            name="provider",
            field=models.CharField(
                default="infobip", help_text="The backend that received it (inbox.providers).", max_length=32
            ),
            preserve_default=False,
        ),
        migrations.AddIndex(
            model_name="webhookevent",
            index=models.Index(fields=["provider", "connection_id", "-received_at"], name="webhookevent_connection"),
        ),
        migrations.AlterModelTable(name="webhookevent", table=None),
    ]
