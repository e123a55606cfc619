"""The ledger row's life in plain SQL, for designs of the pending queue: WAL and PostgreSQL CPU per request.

Each request: the webhook's INSERT (one transaction each), the processor's claim and verdict UPDATE (batches of
`--batch`, one transaction each), then a VACUUM of the tables (what autovacuum would do later), interleaved as
under load (`--batch` inserts, one batch, …). Designs, each on its own fresh tables:
- `partial`: main's ledger — the queue is the partial index `(id) WHERE verdict = 'pending'`, the verdicts worth a
  look a partial index on `verdict`; the claim locks the rows (`FOR UPDATE SKIP LOCKED`), the verdict UPDATE is not
  HOT (`verdict` is in both predicates). `partial70`, `partial50`: the same with fill factor 70 / 50 (room on the
  page: the new row version stays there, and its WAL record carries only the changed bytes, not the whole row).
- `queue`: the pending ids in a table of their own (INSERTed with the row in the webhook's one statement; the claim
  DELETEs them with `SKIP LOCKED`), the ledger keeping the trouble index on `verdict` (so still not HOT).
- `queue-hot`, `queue-hot70`, `queue-hot50`: the same without any index on `verdict` (the upper bound: the trouble
  index would have to live elsewhere), fill factor 100 / 70 / 50 (a HOT update needs room on the row's page).
WAL is read back with pg_walinspect (records touching this database's relations, and their commits); the CPU is the
backend's (/proc: same machine). Uses (drops and creates) the database `<db>_ledgerqueue`. Usage:
    python bench/ledger_queue.py [--requests 400] [--batch 40] [--rounds 3] [--designs partial queue-hot50 …]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import psycopg

DESIGNS = ["partial", "partial70", "partial50", "queue", "queue-hot", "queue-hot70", "queue-hot50"]
LEDGER = """
CREATE TABLE ledger (
    id bigserial PRIMARY KEY, provider varchar(32) NOT NULL, connection_id bigint NOT NULL,
    path_kind varchar(16) NOT NULL, received_at timestamptz NOT NULL, headers jsonb NOT NULL, body text NOT NULL,
    result_count integer NOT NULL, verdict varchar(16) NOT NULL, summary jsonb NOT NULL, error text NOT NULL,
    problems jsonb NOT NULL, replayed_at timestamptz
) WITH (fillfactor = {fillfactor});
CREATE INDEX ledger_received_at ON ledger (received_at);
"""
TROUBLE = (
    "CREATE INDEX ledger_trouble ON ledger (verdict, received_at DESC)"
    " WHERE verdict IN ('partial', 'rejected', 'failed')"
)
PENDING = "CREATE INDEX ledger_pending ON ledger (id) WHERE verdict = 'pending';"
QUEUE = "CREATE TABLE pending (id bigint PRIMARY KEY);"
COLUMNS = (
    "provider, connection_id, path_kind, received_at, headers, body, result_count, verdict, summary, error, problems"
)
VALUES = "VALUES ('infobip', 1, 'inbound', now(), '{}', %s, 1, 'pending', '{}', '', '[]')"
INSERT = {
    "partial": f"INSERT INTO ledger ({COLUMNS}) {VALUES} RETURNING id",
    "queue": f"WITH stored AS (INSERT INTO ledger ({COLUMNS}) {VALUES} RETURNING id) "  # noqa: S608 - constants
    "INSERT INTO pending SELECT id FROM stored RETURNING id",
}
CLAIM = {
    "partial": "SELECT * FROM ledger WHERE verdict = 'pending' ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
    "queue": "WITH taken AS (DELETE FROM pending WHERE id IN "
    "(SELECT id FROM pending ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id) "
    "SELECT * FROM ledger WHERE id IN (SELECT id FROM taken) ORDER BY id",
}
VERDICTS = (
    "UPDATE ledger SET verdict = v.verdict, summary = v.summary, error = v.error, problems = v.problems "
    "FROM json_to_recordset(%s) AS v(id bigint, verdict text, summary jsonb, error text, problems jsonb) "
    "WHERE ledger.id = v.id"
)


def main(argv: list[str]) -> int:
    args = argparse.ArgumentParser()
    args.add_argument("--requests", type=int, default=400)
    args.add_argument("--batch", type=int, default=40)
    args.add_argument("--rounds", type=int, default=3)
    args.add_argument("--designs", nargs="*", default=DESIGNS)
    args = args.parse_args(argv)
    url = urlparse(os.environ["DATABASE_URL"])
    params = dict(host=url.hostname, port=url.port or 5432, user=url.username, password=url.password)
    name = f"{url.path.lstrip('/')}_ledgerqueue"
    with psycopg.connect(**params, dbname="postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    conn = psycopg.connect(**params, dbname=name, autocommit=True)
    conn.execute("CREATE EXTENSION pg_walinspect")
    oid = conn.execute("SELECT oid FROM pg_database WHERE datname = current_database()").fetchone()[0]
    prefix = f"%rel 1663/{oid}/%"
    pid = conn.info.backend_pid
    ticks = os.sysconf("SC_CLK_TCK")
    body = json.dumps({"results": [{"from": "u" * 20, "to": "biz-1", "content": {"text": "x" * 700}}]})

    def mark() -> tuple[float, str]:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks, conn.execute(
            "SELECT pg_current_wal_insert_lsn()::text"
        ).fetchone()[0]

    def since(start: tuple[float, str]) -> tuple[float, float, float]:
        cpu, end = mark()
        deadline = time.monotonic() + 10  # pg_walinspect reads only WAL already flushed
        while not conn.execute("SELECT pg_current_wal_flush_lsn() >= %s::pg_lsn", [end]).fetchone()[0]:
            if time.monotonic() > deadline:
                break
            conn.execute("SELECT pg_sleep(0.02)")
        rows = conn.execute(
            "WITH r AS (SELECT * FROM pg_get_wal_records_info(%s::pg_lsn, %s::pg_lsn)),"
            " mine AS (SELECT DISTINCT xid FROM r WHERE block_ref LIKE %s AND xid <> '0')"
            " SELECT count(*), coalesce(sum(record_length), 0) FROM r WHERE block_ref LIKE %s"
            " OR (resource_manager = 'Transaction' AND xid IN (SELECT xid FROM mine))",
            [start[1], end, prefix, prefix],
        ).fetchone()
        return cpu - start[0], float(rows[1]), float(rows[0])

    def run(design: str) -> dict[str, tuple[float, float, float]]:
        shape = "partial" if design.startswith("partial") else "queue"
        fillfactor = int(design[-2:]) if design[-2:].isdigit() else 100
        conn.execute("DROP TABLE IF EXISTS ledger, pending")
        conn.execute(LEDGER.format(fillfactor=fillfactor))
        if not design.startswith("queue-hot"):
            conn.execute(TROUBLE)
        conn.execute(PENDING if shape == "partial" else QUEUE)
        conn.execute("CHECKPOINT")  # full-page images alike for every design: each starts after a checkpoint
        totals = {"insert": [0.0, 0.0, 0.0], "process": [0.0, 0.0, 0.0]}
        done = 0
        while done < args.requests:
            start = mark()
            for _ in range(args.batch):
                conn.execute(INSERT[shape], [body]).fetchall()
            for i, value in enumerate(since(start)):
                totals["insert"][i] += value
            start = mark()
            with conn.transaction():
                rows = conn.execute(CLAIM[shape], [args.batch]).fetchall()
                verdicts = [
                    {"id": row[0], "verdict": "processed", "summary": {"inbound": 1}, "error": "", "problems": []}
                    for row in rows
                ]
                conn.execute(VERDICTS, [json.dumps(verdicts)])
            for i, value in enumerate(since(start)):
                totals["process"][i] += value
            done += len(rows)
        start = mark()
        conn.execute("VACUUM ledger")
        if shape == "queue":
            conn.execute("VACUUM pending")
        totals["vacuum"] = list(since(start))
        hot = conn.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'ledger'"
        ).fetchone()
        size = conn.execute("SELECT pg_relation_size('ledger')").fetchone()[0]
        figures = {leg: tuple(v / done for v in values) for leg, values in totals.items()}
        figures["hot"] = (hot[1], hot[0], size / done)
        return figures

    results: dict[str, list[dict]] = {design: [] for design in args.designs}
    for _ in range(args.rounds):
        for design in args.designs:
            time.sleep(0.5)  # pg_stat_user_tables is updated at the end of a transaction, with a short delay
            results[design].append(run(design))
    print(f"per request, median of {args.rounds} rounds; {args.requests} requests in batches of {args.batch}")
    print(f"{'design':<12} {'leg':<8} {'PG CPU µs':>10} {'WAL B':>8} {'WAL rec':>8}")
    for design, rounds in results.items():
        for leg in ("insert", "process", "vacuum"):
            cpu, size, records = (statistics.median(r[leg][i] for r in rounds) for i in range(3))
            print(f"{design:<12} {leg:<8} {cpu * 1e6:>10,.0f} {size:>8,.0f} {records:>8.2f}")
        hot, updates, heap = rounds[-1]["hot"]
        print(f"{design:<12} HOT updates {hot:.0f} of {updates:.0f}; heap bytes per row {heap:,.0f}")
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
