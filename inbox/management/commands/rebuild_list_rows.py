"""`manage.py rebuild_list_rows`: recompute the conversations' list-row columns from their messages."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from inbox.models import Conversation
from inbox.services.summary import conversations_summary_rebuild


class Command(BaseCommand):
    help = "Recompute each conversation's newest message and unread count from its messages (after a bulk import)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--inbox", type=int, action="append", help="Only this inbox id (repeatable)")

    def handle(self, *args, **options) -> None:
        conversations = Conversation.objects.all()
        if options["inbox"]:
            conversations = conversations.filter(inbox_id__in=options["inbox"])
        count = conversations_summary_rebuild(conversations)
        self.stdout.write(f"rebuilt the list rows of {count} conversations")
