"""The webhook ledger moves to the core (inbox.WebhookEvent), shared by every provider: the Infobip account
foreign key becomes a plain connection id (the provider column is added on the core's side), then the model
leaves this app's state; inbox 0006 takes it over and renames the table."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tiktok_channel", "0006_webhookevent_problems"),
    ]

    operations = [
        migrations.AlterField(
            model_name="webhookevent",
            name="account",
            field=models.BigIntegerField(db_column="account_id"),
        ),
        migrations.RenameField(model_name="webhookevent", old_name="account", new_name="connection_id"),
        migrations.AlterField(
            model_name="webhookevent",
            name="connection_id",
            field=models.BigIntegerField(help_text="The provider's connection (e.g. Infobip account) it came to."),
        ),
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="WebhookEvent")]),
    ]
