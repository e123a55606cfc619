"""`bench/run.py --trace`: one live tick broken into its legs, and what PostgreSQL did meanwhile.

Legs, from wall-clock times (`time.time()`, one clock for every process of the machine; the harness's and the
clients' `time.monotonic()` converted with one offset read in the harness):
POST sent (harness) → stored (`WebhookEvent.received_at`, the webhook view) → the processor's batch started,
claimed, applied, committed (its first on-commit callback), its subscribers done → published (the live publisher's
group_send returned) → the first and the last frame at the agents (clients). The processor and the publisher write
their times as `inbox.trace` log lines (`TRACE_LOG_LEVEL=DEBUG`, set by the harness), read back from the processor's
log after the run.

PostgreSQL: `pg_stat_activity` sampled every 10 ms (active backends of the bench's database, autovacuum included,
with the wait event's name, and the server's checkpointer), the per-table counters of `pg_stat_user_tables` before and
after the run (pg_stat_statements needs `shared_preload_libraries`, which the shared server does not have), and what
else the server was writing meanwhile: the checkpointer's counters (`pg_stat_bgwriter`) and the WAL written
(`pg_stat_wal`), both server-wide (the neighbours' databases included), and every 100 ms the backlogs a tick can
queue behind: ledger rows pending, conversations marked for the roll-up drain.
"""

from __future__ import annotations

import bisect
import json
import re
import threading
import time
from collections import Counter
from pathlib import Path

from bench.stack import LOG_DIR

LEGS = [
    ("POST sent → stored", "sent", "stored"),
    ("stored → batch started", "stored", "start"),
    ("batch started → claimed", "start", "claimed"),
    ("claimed → applied", "claimed", "applied"),
    ("applied → committed", "applied", "committed"),
    ("committed → handed to the publisher", "committed", "handed"),
    ("handed → published", "handed", "published"),
    ("published → first frame", "published", "first"),
    ("first → last frame", "first", "last"),
    ("POST sent → first frame", "sent", "first"),
    ("POST sent → POST answered", "sent", "answered"),
    ("batch started → subscribers done", "start", "done"),
]
TABLE_COUNTERS = ["seq_scan", "seq_tup_read", "idx_scan", "idx_tup_fetch", "n_tup_ins", "n_tup_upd", "n_tup_del"]
# Server-wide, before and after a run: checkpoints and what they wrote, and the WAL (bytes, full-page images).
SERVER_COUNTERS = [
    "checkpoints_timed",
    "checkpoints_req",
    "buffers_checkpoint",
    "checkpoint_write_time_ms",
    "checkpoint_sync_time_ms",
    "buffers_backend",
    "wal_records",
    "wal_fpi",
    "wal_bytes",
]
SERVER_COUNTERS_SQL = (
    "SELECT b.checkpoints_timed, b.checkpoints_req, b.buffers_checkpoint, b.checkpoint_write_time, "
    "b.checkpoint_sync_time, b.buffers_backend, w.wal_records, w.wal_fpi, w.wal_bytes "
    "FROM pg_stat_bgwriter b, pg_stat_wal w"
)
CHECKPOINTER_IDLE = "Activity:CheckpointerMain"  # its wait between checkpoints; anything else is one under way
_TRACE_LINE = re.compile(r"inbox\.trace (batch|publish) (\{.*\})\s*$")


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


class PgWatch:
    """During the run: what the bench database's backends were doing (sampled), and its tables' counters."""

    def __init__(self, every: float = 0.01) -> None:
        import psycopg
        from django.db import connection

        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        self.conn = psycopg.connect(**params, autocommit=True)
        self.every = every
        self.samples = 0
        self.active: Counter = Counter()
        self.checkpointing = 0  # samples in which the checkpointer was writing or syncing (not idle)
        # (wall-clock time, a checkpoint under way, an autovacuum worker at work in this database) per sample
        self.timeline: list[tuple[float, bool, bool]] = []
        self.backlog: dict[str, list[int]] = {"ledger rows pending": [], "conversations marked for the drain": []}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _tables(self) -> dict[str, tuple]:
        columns = ", ".join(TABLE_COUNTERS)  # this module's constants, not input
        sql = f"SELECT relname, {columns}, autovacuum_count, autoanalyze_count FROM pg_stat_user_tables"  # noqa: S608
        rows = self.conn.execute(sql).fetchall()
        return {row[0]: tuple(value or 0 for value in row[1:]) for row in rows}

    def _server(self) -> dict[str, float]:
        row = self.conn.execute(SERVER_COUNTERS_SQL).fetchone()
        return dict(zip(SERVER_COUNTERS, (float(value or 0) for value in row), strict=True))

    def __enter__(self) -> PgWatch:
        self.conn.execute("SELECT pg_stat_clear_snapshot()")
        self.before = self._tables()
        self.server_before = self._server()
        self._thread.start()
        return self

    def _run(self) -> None:
        query = (
            "SELECT backend_type, coalesce(wait_event_type || ':' || wait_event, '-'), "
            "left(regexp_replace(query, '\\s+', ' ', 'g'), 90) "
            "FROM pg_stat_activity WHERE (datname = current_database() AND pid <> pg_backend_pid() "
            "AND (state = 'active' OR backend_type <> 'client backend')) OR backend_type = 'checkpointer'"
        )
        backlog = (
            "SELECT (SELECT count(*) FROM inbox_webhookevent WHERE verdict = 'pending'), "
            "(SELECT count(*) FROM inbox_reportmarkbatch)"
        )
        while not self._stop.wait(self.every):
            self.samples += 1
            at, checkpoint, autovacuum = time.time(), False, False
            for row in self.conn.execute(query).fetchall():
                if row[0] == "checkpointer":
                    checkpoint = row[1] != CHECKPOINTER_IDLE
                autovacuum = autovacuum or row[0] == "autovacuum worker"
                self.active[row] += 1
            self.checkpointing += checkpoint
            self.timeline.append((at, checkpoint, autovacuum))
            if self.samples % 10 == 1:
                pending, marked = self.conn.execute(backlog).fetchone()
                self.backlog["ledger rows pending"].append(pending)
                self.backlog["conversations marked for the drain"].append(marked)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        time.sleep(1.1)  # backends flush their table counters at most once a second
        self.conn.execute("SELECT pg_stat_clear_snapshot()")
        after = self._tables()
        server_after = self._server()
        self.conn.close()
        self.server = {name: server_after[name] - self.server_before[name] for name in SERVER_COUNTERS}
        self.deltas = {}
        for name, values in after.items():
            before = self.before.get(name, (0,) * len(values))
            delta = [a - b for a, b in zip(values, before, strict=True)]
            if any(delta):
                self.deltas[name] = dict(zip([*TABLE_COUNTERS, "autovacuum", "autoanalyze"], delta, strict=True))

    def summary(self) -> dict:
        busiest = [
            {"backend": kind, "wait": wait, "query": query, "share_of_samples": round(n / max(1, self.samples), 3)}
            for (kind, wait, query), n in self.active.most_common(12)
        ]
        tables = dict(sorted(self.deltas.items(), key=lambda item: -item[1]["seq_tup_read"] - item[1]["idx_tup_fetch"]))
        return {
            "samples": self.samples,
            "active": busiest,
            "tables": tables,
            "checkpoint_share_of_samples": round(self.checkpointing / max(1, self.samples), 3),
            "server_counters": {name: round(value, 1) for name, value in self.server.items()},
            "backlog": {
                name: {"max": max(values), "mean": round(sum(values) / len(values), 1)}
                for name, values in self.backlog.items()
                if values
            },
        }


def trace_lines(path: Path, since: float) -> tuple[list[dict], list[dict]]:
    """The processor's batches and the publisher's sends logged since `since` (wall clock)."""
    batches, publishes = [], []
    if not path.exists():
        return batches, publishes
    for line in path.read_text(errors="replace").splitlines():
        match = _TRACE_LINE.search(line)
        if not match:
            continue
        record = json.loads(match.group(2))
        if match.group(1) == "batch" and record["start"] >= since:
            batches.append(record)
        elif match.group(1) == "publish" and record["sent"] >= since:
            publishes.append(record)
    return batches, publishes


def legs(
    *,
    since: float,
    offset: float,
    sent_at: dict[int, float],
    answered_at: dict[int, float],
    arrivals: dict[int, list[float]],
    provider_ids: dict[str, int],
    ledger_after: int,
    timeline: list[tuple[float, bool, bool]] | None = None,
) -> dict:
    """Per tick (message pk) the time of each point, then p50/p95 of each leg in ms. `offset` turns the
    harness's and clients' monotonic seconds into wall-clock ones."""
    from inbox.models import WebhookEvent

    points: dict[int, dict[str, float]] = {pk: {"sent": at + offset} for pk, at in sent_at.items()}
    for pk, at in answered_at.items():
        points[pk]["answered"] = at + offset
    for pk, times in arrivals.items():
        if pk in points and times:
            points[pk]["first"], points[pk]["last"] = min(times) + offset, max(times) + offset
    ledger: dict[int, int] = {}  # ledger row → message pk
    for row_id, received_at, body in WebhookEvent.objects.filter(pk__gt=ledger_after).values_list(
        "pk", "received_at", "body"
    ):
        for result in json.loads(body).get("results", []):
            pk = provider_ids.get(result.get("messageId"))
            if pk in points:
                points[pk]["stored"] = received_at.timestamp()
                ledger[row_id] = pk
    batches, publishes = trace_lines(LOG_DIR / "ingest.log", since)
    sizes = Counter()
    for batch in batches:
        sizes[len(batch["ledger"])] += 1
        for row_id in batch["ledger"]:
            if row_id in ledger:
                for name in ("start", "claimed", "applied", "committed", "done"):
                    if name in batch:
                        points[ledger[row_id]][name] = batch[name]
    for publish in publishes:
        for pk, handed in zip(publish["messages"], publish["handed"], strict=True):
            if pk in points and "published" not in points[pk]:
                points[pk]["handed"], points[pk]["published"] = handed, publish["sent"]
    out = {}
    for name, a, b in LEGS:
        values = [1000 * (p[b] - p[a]) for p in points.values() if a in p and b in p]
        if values:
            out[name] = {"p50": round(_pct(values, 50), 2), "p95": round(_pct(values, 95), 2), "n": len(values)}
    out["batch sizes (requests: batches)"] = dict(sorted(sizes.items()))
    if timeline:
        out.update(by_maintenance(points, timeline))
    return out


def by_maintenance(points: dict[int, dict[str, float]], timeline: list[tuple[float, bool, bool]]) -> dict:
    """The ticks split by what PostgreSQL's maintenance was doing between the POST and the tick's last frame (any
    sample in that span with a checkpoint under way or an autovacuum worker in the bench database): the same run's
    ticks with and without it, the comparison that survives the neighbours' load best."""
    times = [at for at, _, _ in timeline]
    groups: dict[str, dict[str, list[float]]] = {}
    for p in points.values():
        if "sent" not in p or "last" not in p:
            continue
        span = timeline[bisect.bisect_left(times, p["sent"]) : bisect.bisect_right(times, p["last"]) + 1]
        checkpoint = any(c for _, c, _ in span)
        autovacuum = any(a for _, _, a in span)
        kind = (
            "checkpoint and autovacuum"
            if checkpoint and autovacuum
            else "checkpoint"
            if checkpoint
            else "autovacuum"
            if autovacuum
            else "neither"
        )
        group = groups.setdefault(kind, {"POST sent → last frame": [], "POST sent → POST answered": []})
        group["POST sent → last frame"].append(1000 * (p["last"] - p["sent"]))
        if "answered" in p:
            group["POST sent → POST answered"].append(1000 * (p["answered"] - p["sent"]))
    out = {}
    for kind, legs_ in sorted(groups.items()):
        for leg, values in legs_.items():
            if values:
                out[f"{leg}, ticks during: {kind}"] = {
                    "p50": round(_pct(values, 50), 2),
                    "p95": round(_pct(values, 95), 2),
                    "n": len(values),
                }
    return out


def describe(title: str, trace: dict) -> str:
    """A few lines for the run's output."""
    lines = [f"trace: {title}"]
    for name, value in trace["legs"].items():
        if isinstance(value, dict) and "p50" in value:
            lines.append(f"  {name:40s} p50 {value['p50']:8.2f} ms  p95 {value['p95']:8.2f} ms  (n {value['n']})")
        else:
            lines.append(f"  {name}: {value}")
    pg = trace["postgres"]
    lines.append(f"  PostgreSQL, {pg['samples']} samples of pg_stat_activity (share of samples a backend was at it):")
    for item in pg["active"]:
        lines.append(f"    {item['share_of_samples']:6.3f}  {item['backend']} [{item['wait']}] {item['query']}")
    if "server_counters" in pg:
        lines.append(
            f"  checkpoint under way in {pg['checkpoint_share_of_samples']:.0%} of the samples; "
            "server-wide over the run: " + ", ".join(f"{k} {v:,.0f}" for k, v in pg["server_counters"].items())
        )
        lines.append(
            "  backlogs (every 100 ms): "
            + "; ".join(f"{k}: max {v['max']}, mean {v['mean']}" for k, v in pg.get("backlog", {}).items())
        )
    lines.append("  tables (counter deltas over the run):")
    for name, counters in list(pg["tables"].items())[:10]:
        lines.append(f"    {name}: " + ", ".join(f"{k} {v}" for k, v in counters.items() if v))
    return "\n".join(lines)
