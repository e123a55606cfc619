"""In-process cost of draining the outbox (issue 20): CPU and statements per reply, the sandbox over real HTTP.

A queue of replies (default 400 over 200 conversations of one sender, two each, as `bench/run.py --only outbound`)
is queued through `reply_queue` with the tasks held back, then the tasks are run one after another in this thread
in queue order — one worker thread's view of the Celery queue: an order wait goes to the back of the queue instead
of sleeping. The Infobip sandbox runs in a thread of this process (reports withheld), so the HTTP calls are real;
its own CPU is left out by measuring this thread's CPU (`time.thread_time`). Reports the CPU per reply, the
statements, the provider calls, what each task returned; `--profile` adds cProfile's top functions.

Usage: python bench/outbound_cpu.py [CODE_DIR] [--rounds 3] [--conversations 200] [--per 2] [--profile]
CODE_DIR is the checkout whose code is measured (default this one: two checkouts alternated give a before / after).
Needs PostgreSQL: DATABASE_URL=postgres://…/<db>; it creates (and keeps) `<db>_outcpu` and migrates it. REDIS_URL:
the leases and the live layer (use your own database number).
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.inprocess import django_in, parser  # noqa: E402

os.environ.setdefault("REPORTS_ROLLUPS", "deferred")  # as in production


def main(argv: list[str]) -> int:
    args_parser = parser()
    args_parser.add_argument("--rounds", type=int, default=3)
    args_parser.add_argument("--conversations", type=int, default=200)
    args_parser.add_argument("--per", type=int, default=2)
    args_parser.add_argument("--profile", action="store_true", help="cProfile the last round")
    args_parser.add_argument("--sort", default="tottime", help="pstats order (tottime, cumulative)")
    args_parser.add_argument("--filter", default="", help="only functions whose path matches this regex")
    args = args_parser.parse_args(argv)
    django_in(args.code)

    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql":
        print("needs DATABASE_URL pointing at PostgreSQL", file=sys.stderr)
        return 2
    settings.DATABASES["default"]["TEST"].update(NAME=f"{settings.DATABASES['default']['NAME']}_outcpu")
    connection.creation.create_test_db(verbosity=0, keepdb=True)
    settings.REPLY_QUOTA_PER_WINDOW = 10**8
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"

    import logging
    import uuid
    from datetime import timedelta

    from celery.exceptions import Retry
    from django.contrib.auth import get_user_model
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from inbox import outbox
    from inbox.models import Contact, Conversation, Inbox, Message
    from inbox.services import reply_queue
    from inbox.tasks import send_message
    from tiktok_channel.models import InfobipAccount, TikTokSender
    from tiktok_channel.sandbox.accounts import SandboxAccount, StaticAccounts
    from tiktok_channel.sandbox.behaviour import Behaviour
    from tiktok_channel.sandbox.server import Sandbox, SandboxServer
    from tiktok_channel.webhook_auth import WebhookAuth

    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)  # one line per task otherwise
    queue: list[tuple[int, dict]] = []
    outbox.schedule_send = lambda message_id, attempt_id=None: queue.append(
        (message_id, {"attempt_id": attempt_id} if attempt_id else {})  # main before the marker takes no attempt_id
    )

    def back_of_the_queue(*_, args, kwargs, **__):
        queue.append((args[0], kwargs))
        raise Retry()

    send_message.retry = back_of_the_queue

    run = uuid.uuid4().hex[:8]
    business_id = f"out-cpu-{run}"
    api_key = f"out-cpu-key-{run}-0123456789abcdef"
    sandbox = SandboxServer(
        Sandbox(
            StaticAccounts(
                [
                    SandboxAccount(
                        name="out-cpu",
                        api_key=api_key,
                        webhook_url="http://127.0.0.1:9/",
                        auth=WebhookAuth(mode="hmac", secret="x"),
                        sender_ids=(business_id,),
                    )
                ]
            ),
            Behaviour(withhold_reports=True, send_seen=False),
        )
    )
    sandbox.start()
    inbox = Inbox.objects.create(name=f"out-cpu-{run}")
    agent = get_user_model().objects.create_user(f"out-cpu-{run}")
    inbox.members.add(agent)
    account = InfobipAccount.objects.create(
        name=f"out-cpu-{run}", base_url=sandbox.url, api_key=api_key, webhook_auth="hmac", webhook_secret="x"
    )
    TikTokSender.objects.create(account=account, business_account_id=business_id, inbox=inbox)

    print(f"code: {args.code}; {args.conversations} conversations × {args.per} replies per round")
    rows = []
    for round_ in range(args.rounds):
        conversations = [
            Conversation.objects.create(
                provider="infobip",
                inbox=inbox,
                contact=Contact.objects.create(
                    channel="tiktok", endpoint_id=business_id, channel_user_id=f"{run}-{round_}-{n}"
                ),
                provider_conversation_id=f"{run}-{round_}-{n}",
                last_activity_at=timezone.now(),
                last_inbound_at=timezone.now() - timedelta(hours=1),
            )
            for n in range(args.conversations)
        ]
        for per in range(args.per):
            for conversation in conversations:
                reply_queue(conversation_id=conversation.pk, author=agent, type="text", text=f"reply {per}")
        total = len(queue)
        accepted_before = sandbox.sandbox.counters.get("messages_accepted", 0)
        fates: Counter[str] = Counter()
        profile = None
        if args.profile and round_ == args.rounds - 1:
            import cProfile

            profile = cProfile.Profile()
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        with CaptureQueriesContext(connection) as queries:
            if profile:
                profile.enable()
            while queue:
                message_id, kwargs = queue.pop(0)
                try:
                    fates[send_message.apply(args=[message_id], kwargs=kwargs, throw=True).result] += 1
                except Retry:
                    fates["order wait"] += 1
            if profile:
                profile.disable()
        wall, cpu = time.perf_counter() - wall0, time.thread_time() - cpu0
        left = Message.objects.filter(conversation__in=conversations, status=Message.Status.QUEUED).count()
        calls = sandbox.sandbox.counters.get("messages_accepted", 0) - accepted_before
        rows.append((cpu, wall, len(queries)))
        print(
            f"round {round_ + 1}: {total} replies, {1000 * cpu / total:.2f} ms CPU/reply "
            f"({1000 * wall / total:.2f} ms wall), {len(queries) / total:.1f} statements/reply, "
            f"{calls} accepted by the sandbox, {left} left queued; tasks: {dict(fates)}"
        )
        if profile:
            import io
            import pstats

            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats(args.sort).print_stats(args.filter, 30)
            print(out.getvalue())
    sandbox.stop()
    best = min(rows)
    n = args.conversations * args.per
    print(f"best round: {1000 * best[0] / n:.2f} ms CPU/reply, {best[2] / n:.1f} statements/reply")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
