"""Delete uploaded images no message refers to (a crash between writing the file and the reply's row)."""

from datetime import timedelta

from django.core.management.base import BaseCommand

from inbox.uploads import uploads_sweep


class Command(BaseCommand):
    help = "Delete files under MEDIA_ROOT/uploads/ that no message refers to and that are older than --minutes."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--minutes", type=int, default=60, help="only files older than this (default 60)")

    def handle(self, *args, minutes: int, **options) -> None:
        deleted = uploads_sweep(older_than=timedelta(minutes=minutes))
        self.stdout.write(f"deleted {len(deleted)} orphan upload(s)")
