"""Concurrent webhook INSERTs alone: how many ledger rows a second `--clients` connections store with the measured
checkout's own statement (`inbox.processor._INSERT_AND_NOTIFY`, synchronous commit, one row per transaction, as the
webhook does), and PostgreSQL's CPU per INSERT (its backends' /proc times: same machine).

What it isolates: the ledger's indexes and the wake-up's cost at commit, without Django, wrk or the processor
(bench/README.md, "Ingest 1/POST: the ledger's fixed cost"). `--flag up|down` sets the processors' waiting flag
where the code has one (`up`: a processor waits, every request notifies — what every request did before;
`down`: a processor is busy, as under load). Rounds of each setting alternate.

Uses the database `<db>_ingestcost` that `bench/ingest_cost.py` made for the same checkout (run that first; its rows
are kept; these are stored as pending rows of connection 0 and deleted at the end). Usage:
    python bench/ledger_inserts.py [CODE_DIR] [--clients 8] [--seconds 3] [--rounds 3] [--flag up down]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.inprocess import django_in, parser  # noqa: E402


def main(argv: list[str]) -> int:
    args_parser = parser()
    args_parser.add_argument("--clients", type=int, default=8)
    args_parser.add_argument("--seconds", type=float, default=3.0)
    args_parser.add_argument("--rounds", type=int, default=3)
    args_parser.add_argument("--flag", nargs="*", default=["up", "down"])
    args = args_parser.parse_args(argv)
    django_in(args.code)

    import psycopg
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from bench import scenarios
    from inbox import processor

    settings.DATABASES["default"]["NAME"] = f"{settings.DATABASES['default']['NAME']}_ingestcost"
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    flag = getattr(processor, "WAITING_FLAG", None)  # the eighth session's shared flag (a sequence)
    waiter_rows = hasattr(processor, "_WAITER_ADD")  # since the ninth: a row per waiting processor
    flags = args.flag if flag or waiter_rows else ["(none: always notifies)"]
    body = scenarios._single_body()
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu_of(pid: int) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    def run(setting: str) -> tuple[float, float]:
        with psycopg.connect(**params, autocommit=True) as admin:
            if flag:
                admin.execute(f"SELECT setval('{flag}', %s)", [1 if setting == "up" else 0])
            elif waiter_rows:  # this connection's row stands for a waiting processor (it stays after it closes)
                admin.execute(processor._WAITER_ADD if setting == "up" else "DELETE FROM inbox_webhookwaiter")
        counts = [0] * args.clients
        cpu = [0.0] * args.clients
        start = threading.Barrier(args.clients + 1)
        stop_at = [0.0]

        def client(i: int) -> None:
            with psycopg.connect(**params, autocommit=True) as conn:
                pid = conn.info.backend_pid
                n = 0
                text = body.replace("@@U@@", f"li-{i}").replace("@@T@@", "hello").replace("@@R@@", "")
                start.wait()
                before = cpu_of(pid)
                while time.monotonic() < stop_at[0]:
                    n += 1
                    values = [
                        "infobip",
                        0,
                        "inbound",
                        timezone.now(),
                        json.dumps({}),
                        text.replace("@@M@@", f"{i}-{n}"),
                        1,
                    ]
                    conn.execute(processor._INSERT_AND_NOTIFY, values).fetchall()
                cpu[i] = cpu_of(pid) - before
                counts[i] = n

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for thread in threads:
            thread.start()
        stop_at[0] = time.monotonic() + args.seconds
        start.wait()
        for thread in threads:
            thread.join()
        total = sum(counts)
        return total / args.seconds, sum(cpu) / total * 1e6

    print(f"code: {args.code}; {args.clients} clients, {args.seconds} s a round", flush=True)
    figures: dict[str, list[tuple[float, float]]] = {setting: [] for setting in flags}
    for _ in range(args.rounds):
        for setting in flags:
            figures[setting].append(run(setting))
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute("DELETE FROM inbox_webhookevent WHERE connection_id = 0")
        if flag:
            admin.execute(f"SELECT setval('{flag}', 1)")
        elif waiter_rows:
            admin.execute("DELETE FROM inbox_webhookwaiter")
    print(f"{'waiting flag':<26} {'INSERTs/s (rounds)':>36} {'PostgreSQL CPU µs/INSERT':>26}")
    for setting, rows in figures.items():
        rates = ", ".join(f"{rate:,.0f}" for rate, _ in rows)
        print(
            f"{setting:<26} {statistics.median(r for r, _ in rows):>10,.0f} ({rates})"
            f" {statistics.median(c for _, c in rows):>14,.0f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
