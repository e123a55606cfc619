"""In-process cost of the inbound batch service (`inbox.services.messages_receive`), per event.

CPU (`time.process_time`) and wall time per event of one batch, new users and existing conversations, batch
sizes 100 and 5,000; the service alone (inside its transaction) and with the commit and the domain-event
subscribers (live layer, roll-ups deferred); "PG CPU", the PostgreSQL backend's CPU per event with the commit
(/proc/<pid>/stat, 10 ms ticks: read it on the 5,000-event batches). CPU time is the figure that survives a
loaded machine.

Beside them, per size, **the batch floor**: the same batch's message rows and nothing else — one
`INSERT … SELECT` of the record set (`db.insert_rows`) into the messages table with its real indexes and foreign key (to
conversations that exist), committed — what any set-based intake pays at least. Its events/s (1 / wall per event,
with the commit) and each case's "real ÷ floor" are printed at the end: the distance measured, not argued.

Needs PostgreSQL: DATABASE_URL=postgres://…/<db>; it creates (and keeps) the database `<db>_intake` and runs
the migrations there. Usage: python bench/intake.py [--rounds N] [--sizes 100 5000] [--profile FILE] [--statements]

`--profile FILE`: cProfile of the measured batches (with the commit and subscribers), written to FILE.
`--statements`: PostgreSQL's own time per statement of the last measured batch of each case (`auto_explain` loaded
in this session, its plans sent to the client as notices), grouped by the statement's first words.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import re
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ.setdefault("REPORTS_ROLLUPS", "deferred")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="*", default=[100, 5000])
    parser.add_argument("--profile", help="write a cProfile of the measured batches here")
    parser.add_argument("--statements", action="store_true", help="PostgreSQL's time per statement (auto_explain)")
    args = parser.parse_args(argv)

    import django
    from django.conf import settings

    django.setup()
    from django.db import connection, transaction

    if connection.vendor != "postgresql":
        print("needs DATABASE_URL pointing at PostgreSQL", file=sys.stderr)
        return 2
    settings.DATABASES["default"]["TEST"].update(NAME=f"{settings.DATABASES['default']['NAME']}_intake")
    connection.creation.create_test_db(verbosity=0, keepdb=True, serialize=False)  # no dump of the kept rows

    from django.utils import timezone

    from inbox.db import insert_rows
    from inbox.events import InboundMessage
    from inbox.models import Inbox, Message
    from inbox.services import messages_receive
    from inbox.services.inbound import inbound_message_fields

    inbox, _ = Inbox.objects.get_or_create(name="intake-bench")
    run = uuid.uuid4().hex[:8]

    def events(users: list[str], tag: str) -> list[tuple[int, InboundMessage]]:
        now = timezone.now()
        return [
            (
                inbox.pk,
                InboundMessage(
                    channel="tiktok",
                    endpoint_id="bench-biz",
                    channel_user_id=user,
                    provider_message_id=f"{tag}-{n}",
                    provider_conversation_id="",
                    sent_at=now,
                    type="text",
                    text=f"hello {n}",
                    provider="infobip",
                ),
            )
            for n, user in enumerate(users)
        ]

    profiler = cProfile.Profile() if args.profile else None
    notices: list[str] = []
    if args.statements:
        connection.ensure_connection()
        connection.connection.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        with connection.cursor() as cursor:
            cursor.execute("LOAD 'auto_explain'")
            for name, value in (
                ("log_min_duration", "0"),
                ("log_analyze", "on"),
                ("log_buffers", "on"),
                ("log_timing", "off"),
                ("log_wal", "on"),
                ("log_level", "notice"),
            ):
                cursor.execute(f"SET auto_explain.{name} = '{value}'")

    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend_stat = Path(f"/proc/{cursor.fetchone()[0]}/stat")  # absent when PostgreSQL runs elsewhere
    ticks_per_second = os.sysconf("SC_CLK_TCK")

    def backend_cpu() -> float:
        """The PostgreSQL backend's CPU seconds (user + system), from /proc (one tick: 10 ms); 0 if not local."""
        if not backend_stat.exists():
            return 0.0
        fields = backend_stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks_per_second

    def measure(items) -> tuple[float, ...]:
        notices.clear()
        if profiler:
            profiler.enable()
        pg0 = backend_cpu()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        with transaction.atomic():
            received = messages_receive(items)
            wall1, cpu1 = time.perf_counter(), time.process_time()
        wall2, cpu2 = time.perf_counter(), time.process_time()
        pg2 = backend_cpu()
        if profiler:
            profiler.disable()
        assert len(received) == len(items)
        n = len(items) / 1e6
        return (cpu1 - cpu0) / n, (wall1 - wall0) / n, (cpu2 - cpu0) / n, (wall2 - wall0) / n, (pg2 - pg0) / n

    def floor(items, conversation_ids: list[int]) -> tuple[float, ...]:
        """The batch's message rows in one statement, nothing else (the same columns the service writes)."""
        notices.clear()
        pg0 = backend_cpu()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        with transaction.atomic():
            rows = [inbound_message_fields(event) for _, event in items]
            columns = {name: [row[name] for row in rows] for name in rows[0]}
            columns["conversation_id"] = conversation_ids
            columns["created_at"] = [timezone.now()] * len(items)
            insert_rows(Message, columns)
            wall1, cpu1 = time.perf_counter(), time.process_time()
        wall2, cpu2 = time.perf_counter(), time.process_time()
        pg2 = backend_cpu()
        n = len(items) / 1e6
        return (cpu1 - cpu0) / n, (wall1 - wall0) / n, (cpu2 - cpu0) / n, (wall2 - wall0) / n, (pg2 - pg0) / n

    print(f"{'case':<28} {'CPU µs/ev':>10} {'wall µs/ev':>11} {'+commit CPU':>12} {'+commit wall':>13} {'PG CPU':>7}")
    per_second: dict[tuple[int, str], float] = {}
    for size in args.sizes:
        for case in ("new users", "existing conversations", "floor"):
            figures = []
            for r in range(args.rounds):
                users = [f"{run}-{size}-{r}-{n}" for n in range(size)]
                if case == "new users":
                    figures.append(measure(events(users, f"{run}-{size}-{r}-n")))
                    continue
                users = [f"{user}-{case[0]}" for user in users]
                first = messages_receive(events(users, f"{run}-{size}-{r}-{case[0]}-first"))
                if case == "existing conversations":
                    figures.append(measure(events(users, f"{run}-{size}-{r}-e")))
                else:
                    conversation_ids = [message.conversation_id for message, _ in first]
                    figures.append(floor(events(users, f"{run}-{size}-{r}-f"), conversation_ids))
            med = [statistics.median(f[i] for f in figures) for i in range(5)]
            per_second[(size, case)] = 1e6 / med[3]
            label = f"{case}, {size}"
            print(
                f"{label:<28} {med[0]:>10,.0f} {med[1]:>11,.0f} {med[2]:>12,.0f} {med[3]:>13,.0f} {med[4]:>7,.0f}",
                flush=True,
            )
            if args.statements:
                statements_print(notices, size)
    print("events/s, one stream (1 / wall per event with the commit), and real path ÷ floor:")
    for size in args.sizes:
        floor_rate = per_second[(size, "floor")]
        for case in ("new users", "existing conversations"):
            rate = per_second[(size, case)]
            print(f"  {case}, {size}: {rate:,.0f} ÷ floor {floor_rate:,.0f} = {rate / floor_rate:.2f}")
    if profiler:
        profiler.dump_stats(args.profile)
    return 0


def statements_print(notices: list[str], size: int) -> None:
    """auto_explain's notices of one batch: PostgreSQL's time per statement (the foreign-key checks' nested
    statements summed per table), µs per event, WAL records per event (what survives a loaded machine: index and
    heap writes), and the statement's first words."""
    total = records = 0.0
    grouped: dict[str, list[tuple[float, int]]] = {}
    for notice in notices:
        match = re.match(r"duration: ([0-9.]+) ms\s+plan:\s*Query Text: (.*?)\n", notice, re.S)
        if not match:
            continue
        ms, text = float(match[1]), " ".join(match[2].split())
        wal = re.search(r"WAL: records=(\d+)", notice)
        n = int(wal[1]) if wal else 0
        total += ms
        records += n
        key = text[:100] if not text.startswith("SELECT 1 FROM ONLY") else text[:60] + " (foreign-key checks)"
        grouped.setdefault(key, []).append((ms, n))
    for text, figures in grouped.items():
        ms, n = sum(f[0] for f in figures), sum(f[1] for f in figures)
        print(f"    {ms:>9.1f} ms {ms * 1000 / size:>7.1f} µs/ev {n / size:>6.2f} WAL/ev ×{len(figures):<5} {text}")
    print(f"    {total:>9.1f} ms {total * 1000 / size:>7.1f} µs/ev {records / size:>6.2f} WAL/ev  all statements")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
