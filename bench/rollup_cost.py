"""The report roll-ups' cost on ingest, measured in CPU time (survives a loaded machine better than wall clock).

Usage: DATABASE_URL=postgres://…/<db> REDIS_URL=redis://…/<n> BENCH_REDIS_DB=<n+10> \
       python bench/rollup_cost.py [--rounds 6] [--batches 40] [--per 200] [--users 5000]

Drops and creates `<db>_bench` (as bench/run.py does), migrates it, starts no server. The stream is the reporting
scenario's ingest part (bench/scenarios.py `_ingest_rate`): batches of inbound events through the batch service
over a pool of existing open conversations, REPORTS_ROLLUPS "off" and "deferred" alternated (a warm round each
first, so every conversation exists and has its figures), the marks drained after the batches. Per round it
records the CPU time of this process (time.process_time) and of its PostgreSQL backend (/proc/<pid>/stat, same
machine), for the ingest and for the drain, and how many marked conversations the drain took on its fast path
("fast": new messages added; "opened": a conversation's first messages) or recomputed whole ("full").

`--pair-with OTHER/inbox/reports/rollups.py` then drains in pairs in this one process: ingest a stream, drain it with
the other version of rollups.py (loaded from that file beside this checkout's), ingest again, drain with this
checkout's, alternating which goes first, `--pair-reps` times; the paired differences (this − other, CPU ms per event,
client and backend) survive a loaded machine better than separate runs. `--pair-users` beyond `--users` opens new
conversations (10,000,000: nearly every event opens one). The other file must work on this checkout's schema.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) of the PostgreSQL backend serving this process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="measured rounds, alternating off / deferred")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--per", type=int, default=200)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--json", help="write the rounds here")
    parser.add_argument("--profile", help="cProfile the drains of the rounds with roll-ups into this file (pstats)")
    parser.add_argument("--gc-time", action="store_true", help="record the garbage collector's CPU time in the drains")
    parser.add_argument(
        "--explain-slow",
        type=float,
        metavar="MS",
        help="auto_explain (ANALYZE, BUFFERS) every statement of this session slower than MS into the JSON's plans",
    )
    parser.add_argument("--pair-with", metavar="ROLLUPS_PY", help="another rollups.py to drain against, in pairs")
    parser.add_argument("--pair-reps", type=int, default=10)
    parser.add_argument("--pair-batches", type=int, default=20)
    parser.add_argument("--pair-users", type=int, default=5000)
    args = parser.parse_args(argv)

    from bench import stack as stack_mod

    stack = stack_mod.prepare(smoke=False)
    if stack.database != "postgresql":
        print("needs DATABASE_URL of a PostgreSQL server on this machine", file=sys.stderr)
        return 2
    os.environ.update(stack.env)
    import django

    django.setup()
    from unittest import mock

    from django.db import connection
    from django.test import override_settings

    from bench import data
    from bench.scenarios import _ingest_batches
    from inbox.models import Inbox
    from inbox.reports import rollups
    from inbox.services import messages_receive

    data.setup_base(sandbox_url="http://127.0.0.1:9", agents=1)
    inbox = Inbox.objects.create(name="Bench roll-up cost")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [[pid]] = cursor.fetchall()
    # The plans of slow statements, as notices of this session (a drain's backend CPU sometimes jumps severalfold
    # for whole runs: bench/README.md, sixth and seventh sessions); each tagged with the round it came in.
    plans: list[dict] = []
    current = {"round": "setup"}
    if args.explain_slow is not None:
        with connection.cursor() as cursor:
            cursor.execute("LOAD 'auto_explain'")
            cursor.execute(f"SET auto_explain.log_min_duration = {float(args.explain_slow)}")
            for setting in ("log_analyze", "log_buffers", "log_nested_statements"):
                cursor.execute(f"SET auto_explain.{setting} = on")
            cursor.execute("SET auto_explain.log_level = notice")
        connection.connection.add_notice_handler(
            lambda notice: plans.append({**current, "plan": notice.message_primary})
        )

    profiler = cProfile.Profile() if args.profile else None
    # The garbage collector's own time, by generation (a drain allocates many small containers: JSON, tuples).
    gc_time: dict[int, float] = {}
    gc_started: list[float] = []

    def gc_timer(phase: str, info: dict) -> None:
        if phase == "start":
            gc_started[:] = [time.process_time()]
        elif gc_started:
            generation = info["generation"]
            gc_time[generation] = gc_time.get(generation, 0.0) + time.process_time() - gc_started[0]

    if args.gc_time:  # its own cost (a clock read per collection) is a few per cent of a drain's
        gc.callbacks.append(gc_timer)

    def one_round(prefix: str, mode: str) -> dict:
        batches = _ingest_batches(
            inbox.pk, prefix=prefix, batches=args.batches, per=args.per, users=args.users, rollups=mode
        )
        stats: dict[str, int] = {}
        current["round"] = f"{prefix} ingest"
        with override_settings(REPORTS_ROLLUPS=mode), mock.patch.object(rollups, "schedule_drain"):
            cpu0, db0, wall0 = time.process_time(), backend_cpu(pid), time.perf_counter()
            for items in batches:
                messages_receive(items)
            cpu1, db1, wall1 = time.process_time(), backend_cpu(pid), time.perf_counter()
            gc_time.clear()
            current["round"] = f"{prefix} drain"
            if profiler is not None and mode == "deferred" and not prefix.startswith("warm"):
                profiler.runcall(rollups.drain, stats=stats)
            else:
                rollups.drain(stats=stats)
            cpu2, db2, wall2 = time.process_time(), backend_cpu(pid), time.perf_counter()
        events = args.batches * args.per
        return {
            "mode": mode,
            "events": events,
            "ingest_cpu_ms_per_event": 1000 * (cpu1 - cpu0) / events,
            "ingest_db_cpu_ms_per_event": 1000 * (db1 - db0) / events,
            "drain_cpu_ms_per_event": 1000 * (cpu2 - cpu1) / events,
            "drain_db_cpu_ms_per_event": 1000 * (db2 - db1) / events,
            "ingest_wall_s": wall1 - wall0,
            "drain_wall_s": wall2 - wall1,
            "drain_gc_cpu_ms_per_event_by_generation": [1000 * gc_time.get(g, 0.0) / events for g in range(3)],
            **stats,
        }

    for mode in ("off", "deferred"):
        one_round(f"warm-{mode}", mode)
    # Statistics as a running database has them: the tables grew from empty in the warm rounds, and before
    # autoanalyze gets to them the planner takes inbox_message for a few rows (the drain's read of its new messages by
    # id was a sequential scan of every message, per chunk: the "6×" backend CPU of some runs).
    current["round"] = "analyze"
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    rounds = [one_round(f"round{n}", "deferred" if n % 2 else "off") for n in range(args.rounds)]
    for r in rounds:
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}), flush=True)

    def total(r: dict) -> float:
        return sum(r[k] for k in r if k.endswith("_ms_per_event"))

    off = statistics.median(total(r) for r in rounds if r["mode"] == "off")
    on = [r for r in rounds if r["mode"] == "deferred"]
    with_ = statistics.median(total(r) for r in on)
    drain = statistics.median(r["drain_cpu_ms_per_event"] + r["drain_db_cpu_ms_per_event"] for r in on)
    summary = {
        "cpu_ms_per_event_without": round(off, 3),
        "cpu_ms_per_event_with": round(with_, 3),
        "cost_percent": round(100 * (with_ - off) / off, 1),
        "drain_cpu_ms_per_event": round(drain, 3),
        "drain_percent_of_ingest_without": round(100 * drain / off, 1),
        "fast_path": sum(r.get("fast", 0) for r in on),
        "opened": sum(r.get("opened", 0) for r in on),
        "full_recompute": sum(r.get("full", 0) for r in on),
    }
    print(json.dumps(summary), flush=True)
    if args.pair_with:
        summary["pairs"] = pairs(args, inbox, pid, rollups)
        print(json.dumps(summary["pairs"]), flush=True)
    if profiler is not None:
        profiler.dump_stats(args.profile)
    if args.json:
        Path(args.json).write_text(json.dumps({"rounds": rounds, "summary": summary, "plans": plans}, indent=1))
    if plans:
        print(f"{len(plans)} slow statements' plans in the JSON", flush=True)
    return 0


def pairs(args, inbox, pid: int, this) -> dict:
    """Drains of the same kind of stream by the other rollups.py and this one, alternated (see the module's doc)."""
    import importlib.util
    from unittest import mock

    from django.test import override_settings

    from bench.scenarios import _ingest_batches
    from inbox.services import messages_receive

    spec = importlib.util.spec_from_file_location("rollups_other", args.pair_with)
    other = importlib.util.module_from_spec(spec)
    sys.modules["rollups_other"] = other  # dataclasses look their module up
    spec.loader.exec_module(other)
    events = args.pair_batches * args.per
    found: dict[str, list] = {"other": [], "this": []}
    for n in range(args.pair_reps):
        order = (("other", other), ("this", this)) if n % 2 == 0 else (("this", this), ("other", other))
        for name, module in order:
            batches = _ingest_batches(
                inbox.pk,
                prefix=f"pair-{n}-{name}",
                batches=args.pair_batches,
                per=args.per,
                users=args.pair_users,
                rollups="deferred",
            )
            stats: dict[str, int] = {}
            with (
                override_settings(REPORTS_ROLLUPS="deferred"),
                mock.patch.object(this, "schedule_drain"),
                mock.patch.object(other, "schedule_drain"),
            ):
                for items in batches:
                    messages_receive(items)
                cpu0, db0 = time.process_time(), backend_cpu(pid)
                module.drain(stats=stats)
                cpu1, db1 = time.process_time(), backend_cpu(pid)
            found[name].append(
                {"client": 1000 * (cpu1 - cpu0) / events, "backend": 1000 * (db1 - db0) / events, **stats}
            )

    def median(name: str, part: str) -> float:
        return round(statistics.median(r[part] for r in found[name]), 4)

    def paired(part: str) -> float:
        differences = [t[part] - o[part] for t, o in zip(found["this"], found["other"], strict=True)]
        return round(statistics.median(differences), 4)

    return {
        "other": {part: median("other", part) for part in ("client", "backend")},
        "this": {part: median("this", part) for part in ("client", "backend")},
        "this_minus_other": {part: paired(part) for part in ("client", "backend")},
        "marks_per_drain": {k: v for k, v in found["this"][0].items() if k not in ("client", "backend")},
        "drains": found,
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
