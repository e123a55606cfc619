"""`manage.py rebuild_reports`: recreate the report roll-ups from the raw rows (see inbox/reports/rollups.py)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from inbox.reports.rollups import rebuild


class Command(BaseCommand):
    help = "Rebuild the report roll-ups from conversations, messages, audit log and conversions."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--inbox", type=int, action="append", help="Only this inbox id (repeatable)")

    def handle(self, *args, **options) -> None:
        count = rebuild(inbox_ids=options["inbox"])
        self.stdout.write(f"rebuilt the reports of {count} conversations")
