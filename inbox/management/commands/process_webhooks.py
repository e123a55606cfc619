"""`manage.py process_webhooks`: apply stored webhook requests until SIGTERM or Ctrl-C (see processor.py)."""

from __future__ import annotations

import signal

from django.core.management.base import BaseCommand, CommandParser

from inbox.processor import Processor


class Command(BaseCommand):
    help = "Apply the webhook ledger's pending requests in batches (run one or more with WEBHOOK_PROCESSING=deferred)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=200, help="requests per transaction at most")
        parser.add_argument(
            "--idle-wait", type=float, default=1.0, help="seconds between looks when no wake-up arrives"
        )
        parser.add_argument(
            "--linger", type=float, default=0.02, help="seconds to wait after a batch, so the next one is larger"
        )

    def handle(self, *args, batch_size: int, idle_wait: float, linger: float, **options) -> None:
        processor = Processor(batch_size=batch_size, idle_wait=idle_wait, linger=linger)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: processor.stop())
        processor.run()
