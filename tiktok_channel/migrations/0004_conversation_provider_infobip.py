"""Conversations from before providers were per connection all came through Infobip."""

from django.db import migrations


def infobip_provider(apps, schema_editor):
    Conversation = apps.get_model("inbox", "Conversation")
    Conversation.objects.filter(provider="", contact__channel="tiktok").update(provider="infobip")


class Migration(migrations.Migration):
    dependencies = [
        ("tiktok_channel", "0003_webhook_pending"),
        ("inbox", "0004_conversation_provider"),
    ]

    operations = [migrations.RunPython(infobip_provider, migrations.RunPython.noop)]
