"""`make bench` / `make bench-smoke`: start the production-shaped stack, run every scenario, print one table.

Writes bench/results/bench-<time>.json (+ latest.json) and a chart of latency distributions (PNG).
Exits non-zero if a scenario produced no figure (smoke) — targets missed do not fail the run.
Usage: python bench/run.py [--smoke] [--only NAME ...] [--read-conversations N] [--reporting-ingest-only]
       [--live-processes N] [--trace] [--ticks-unsettled]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import stack as stack_mod  # noqa: E402
from bench import wrk  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SCENARIOS = ["ingest", "batch", "reports", "live", "outbound", "reads", "reporting"]


def config(smoke: bool):
    from bench.scenarios import Config

    if smoke:
        return Config(
            smoke=True,
            seconds=2,
            read_conversations=2_000,
            read_messages_per=10,
            report_conversations=20,
            report_messages_per=200,
            ticks=20,
        )
    return Config(
        smoke=False,
        seconds=10,
        read_conversations=100_000,
        read_messages_per=10,
        report_conversations=200,
        report_messages_per=400,
        ticks=200,
    )


def fmt(value, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"
    else:
        text = f"{value:,}"
    return f"{text} {unit}".strip()


def table(rows) -> str:
    header = ["scenario", "figure", "value", "baseline", "ratio", "target", "met?"]
    lines = [header]
    for row in rows:
        met = "—" if row.met is None else ("yes" if row.met else "NO")
        ratio = f"{row.ratio:.2f}" if row.ratio is not None and row.unit != "ms" else "—"
        base = fmt(row.baseline) + (f" ({row.baseline_of})" if row.baseline_of and row.baseline is not None else "")
        lines.append([row.scenario, row.figure, fmt(row.value, row.unit), base, ratio, row.target, met])
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    out = []
    for index, line in enumerate(lines):
        out.append("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)))
        if index == 0:
            out.append("  ".join("-" * width for width in widths))
    return "\n".join(out)


def chart(curves: dict[str, dict[float, float]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 6.5))
    for name, curve in curves.items():
        if not curve:
            continue
        points = sorted((float(p), v) for p, v in curve.items() if float(p) < 100)
        ax.plot([p for p, _ in points], [max(v, 0.01) for _, v in points], marker=".", label=name)
    ax.set_yscale("log")
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (ms, log)")
    ax.axhline(50, color="grey", linestyle=":", linewidth=1)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="seconds, small data: every scenario end to end")
    parser.add_argument("--only", nargs="*", choices=SCENARIOS, default=SCENARIOS)
    parser.add_argument(
        "--read-conversations",
        type=int,
        help="conversations of the reads scenario (default 100,000; 2,000 smoke): fewer load faster",
    )
    parser.add_argument(
        "--reporting-ingest-only",
        action="store_true",
        help="the reporting scenario's roll-up cost on ingest only (skips seeding 100,000 conversations for charts)",
    )
    parser.add_argument(
        "--live-processes",
        type=int,
        help="client processes holding the live tick's 100 agents (default 4; a one-process run is always made too)",
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="the live tick broken into legs (processor and publisher log their times) and PostgreSQL's activity",
    )
    parser.add_argument(
        "--ticks-unsettled",
        action="store_true",
        help="the live tick right after the previous scenarios, in their autovacuum and checkpoint (not settled first)",
    )
    args = parser.parse_args(argv)
    if not wrk.available():
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    cfg = config(args.smoke)
    if args.read_conversations:
        cfg.read_conversations = args.read_conversations
    cfg.reporting_ingest_only = args.reporting_ingest_only
    cfg.trace = args.trace
    cfg.settle_ticks = not args.ticks_unsettled
    if args.live_processes:
        cfg.live_processes = args.live_processes
    started = time.monotonic()
    stack = stack_mod.prepare(smoke=args.smoke)
    if args.trace:  # the processor and the live publisher log their times (inbox.trace); off in every other run
        stack.env["TRACE_LOG_LEVEL"] = "DEBUG"
    for note in stack.notes:
        print(note, flush=True)

    # SIGTERM (CI timeouts) unwinds through the finally below, which stops every process.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.environ.update(stack.env)
    os.environ.pop("TRACE_LOG_LEVEL", None)  # the stack's processes trace, the harness's own publishes do not
    import django

    django.setup()
    from bench import data, scenarios

    res = scenarios.Results()
    failures: list[str] = []
    try:
        fx = data.setup_base(sandbox_url=f"http://127.0.0.1:{stack.sandbox_port}", agents=cfg.agents)
        print(f"stack: starting (logs in {stack_mod.LOG_DIR})", flush=True)
        stack.start_servers()
        with stack_mod.MemorySampler(stack) as sampler:
            # The bare view before and after the scenarios, whichever run: a neighbour's load that moved shows.
            before = scenarios.baseline(stack, cfg, res, "before")
            baseline, baseline_of = before, "bare view before the scenarios"
            steps = [
                ("ingest", lambda: scenarios.baseline_and_ingest(stack, fx, cfg, res)),
                ("batch", lambda: scenarios.ingest_batch(stack, fx, cfg, res)),
                ("reports", lambda: scenarios.reports(stack, fx, cfg, res, baseline, baseline_of)),
                ("live", lambda: scenarios.live_tick(stack, fx, cfg, res)),
                ("outbound", lambda: scenarios.outbound(stack, fx, cfg, res)),
                ("reads", lambda: scenarios.reads(stack, fx, cfg, res)),
                ("reporting", lambda: scenarios.reporting(stack, fx, cfg, res)),
            ]
            for name, step in steps:
                if name not in args.only:
                    continue
                print(f"scenario {name} ...", flush=True)
                t0 = time.monotonic()
                try:
                    value = step()
                    if name == "ingest":
                        baseline, baseline_of = value, scenarios.INGEST_BASE
                except Exception:  # noqa: BLE001 - report it, run the others, fail at the end
                    traceback.print_exc()
                    failures.append(name)
                print(f"scenario {name}: {time.monotonic() - t0:.1f}s", flush=True)
                # Wall-clock times, to line a scenario up with the server's log (checkpoints, autovacuum).
                res.info.setdefault("scenario_times_utc", {})[name] = {
                    "ended": datetime.now(UTC).isoformat(timespec="seconds"),
                    "seconds": round(time.monotonic() - t0, 1),
                }
            scenarios.baseline(stack, cfg, res, "after", before=before)
        scenarios.memory(sampler, res)
    finally:
        stack.stop_all()

    empty = [f"{row.scenario} / {row.figure}" for row in res.rows if row.value is None]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    description = (
        f"{'SMOKE ' if args.smoke else ''}{stamp}: {stack.database}, gunicorn {stack.web_workers} sync workers, "
        f"uvicorn {stack.ws_workers} workers, celery 1 process, {stack_mod.cores()} cores, wrk -t1"
    )
    print()
    print(description)
    print(table(res.rows))
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "when": stamp,
        "smoke": args.smoke,
        "stack": description,
        "python": platform.python_version(),
        "notes": stack.notes,
        "info": res.info,
        "seconds": round(time.monotonic() - started, 1),
        "rows": [
            {
                "scenario": row.scenario,
                "figure": row.figure,
                "value": row.value,
                "unit": row.unit,
                "baseline": row.baseline,
                "baseline_of": row.baseline_of,
                "ratio": row.ratio,
                "target": row.target,
                "met": row.met,
                "note": row.note,
            }
            for row in res.rows
        ],
        "latency_percentiles_ms": res.curves,
        "failed_scenarios": failures,
    }
    name = f"bench-{'smoke-' if args.smoke else ''}{stamp}"
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2, default=str))
    (RESULTS / "latest.json").write_text(json.dumps(payload, indent=2, default=str))
    chart(res.curves, RESULTS / f"{name}.png", description)
    print("\nnotes:\n" + "\n".join(f"  {row.figure}: {row.note}" for row in res.rows if row.note))
    print(f"\nwritten: {RESULTS / name}.json, .png ({payload['seconds']}s)")
    if failures or empty:
        print(f"FAILED: scenarios {failures}; no figure for {empty}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
