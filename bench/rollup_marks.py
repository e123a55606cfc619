"""The roll-up marks' own statements, old (a row per conversation, upserted; deleted by key) against new (a row per
event batch; deleted by id), alternated in one process on two scratch tables (r5_dirty, r5_batch: created, dropped
after) of DATABASE_URL's database: CPU of its PostgreSQL backend and of this process per event, medians of 10 pairs
after 2 warm ones, and the paired differences. bench/README.md, ninth session.

Usage: DATABASE_URL=postgres://…/<db> python bench/rollup_marks.py [--batches 40] [--per 200] [--users 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from pathlib import Path

import psycopg

PICK_OLD = """SELECT coalesce(json_agg(json_build_array(conversation_id, "full", message_ids, opened)
                                  ORDER BY conversation_id), '[]')
              FROM (SELECT conversation_id, "full", message_ids, opened FROM r5_dirty
                    ORDER BY conversation_id LIMIT 500 FOR UPDATE SKIP LOCKED) AS picked"""
MARK_OLD = """INSERT INTO r5_dirty (conversation_id, marked_at, "full", message_ids, opened)
              SELECT v.id, now(), v."full", coalesce(%s::jsonb -> v.id::text, '[]'::jsonb), v.opened
              FROM unnest(%s::bigint[], %s::boolean[], %s::boolean[]) AS v(id, "full", opened) ORDER BY v.id
              ON CONFLICT (conversation_id) DO UPDATE SET "full" = r5_dirty."full" OR EXCLUDED."full",
                message_ids = r5_dirty.message_ids || EXCLUDED.message_ids,
                opened = r5_dirty.opened OR EXCLUDED.opened"""
PICK_NEW = """SELECT coalesce(json_agg(json_build_array(id, conversations) ORDER BY id), '[]')
              FROM (SELECT id, conversations FROM r5_batch WHERE id = ANY(ARRAY(
                      SELECT id FROM (SELECT id, size, sum(size) OVER (ORDER BY id) AS upto
                                      FROM (SELECT id, size FROM r5_batch ORDER BY id LIMIT 10000) AS head) AS running
                      WHERE upto <= 10000 OR upto = size))
                    ORDER BY id FOR UPDATE SKIP LOCKED) AS picked"""


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def array(values) -> str:
    return "{" + ",".join(("t" if v else "f") if isinstance(v, bool) else str(int(v)) for v in values) + "}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--per", type=int, default=200)
    parser.add_argument("--users", type=int, default=5000)
    args = parser.parse_args()
    conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    cur = conn.cursor()
    cur.execute("SELECT pg_backend_pid()")
    [pid] = cur.fetchone()
    cur.execute("DROP TABLE IF EXISTS r5_dirty, r5_batch")
    cur.execute(
        'CREATE TABLE r5_dirty (conversation_id bigint PRIMARY KEY, marked_at timestamptz NOT NULL, "full" boolean '
        "NOT NULL, message_ids jsonb NOT NULL, opened boolean NOT NULL DEFAULT false)"
    )
    cur.execute(
        "CREATE TABLE r5_batch (id bigserial PRIMARY KEY, marked_at timestamptz NOT NULL, size integer NOT NULL, "
        "conversations jsonb NOT NULL)"
    )
    rng, message = random.Random(7), [10_000_000]

    def stream() -> list[dict[int, list[int]]]:
        batches = []
        for _ in range(args.batches):
            appended: dict[int, list[int]] = {}
            for _ in range(args.per):
                message[0] += 1
                appended.setdefault(rng.randrange(1, args.users), []).append(message[0])
            batches.append(appended)
        return batches

    def old(batches) -> float:
        for appended in batches:
            ordered = sorted(appended)
            with conn.transaction():
                no = array(False for _ in ordered)
                document = json.dumps({str(pk): appended[pk] for pk in ordered})
                cur.execute(MARK_OLD, [document, array(ordered), no, no])
        marked = backend_cpu(pid)
        while True:
            with conn.transaction():
                cur.execute(PICK_OLD)
                marks = cur.fetchone()[0]
                if not marks:
                    return marked
                cur.execute(
                    "DELETE FROM r5_dirty WHERE conversation_id = ANY(%s::bigint[])", [array(m[0] for m in marks)]
                )

    def new(batches) -> float:
        for appended in batches:
            entries = [[pk, False, False, appended[pk]] for pk in sorted(appended)]
            with conn.transaction():
                cur.execute(
                    "INSERT INTO r5_batch (marked_at, size, conversations) VALUES (now(), %s, %s)",
                    [len(entries), json.dumps(entries)],
                )
        marked = backend_cpu(pid)
        while True:
            with conn.transaction():
                cur.execute(PICK_NEW)
                picked = cur.fetchone()[0]
                if not picked:
                    return marked
                cur.execute("DELETE FROM r5_batch WHERE id = ANY(%s::bigint[])", [array(b[0] for b in picked)])

    found: dict[str, list[dict]] = {"old": [], "new": []}
    events = args.batches * args.per
    for rep in range(12):
        for name, run in [("old", old), ("new", new)][:: 1 if rep % 2 == 0 else -1]:
            batches = stream()
            cpu0, db0 = time.process_time(), backend_cpu(pid)
            marked = run(batches)
            cpu1, db1 = time.process_time(), backend_cpu(pid)
            found[name].append(
                {
                    "mark_backend": 1000 * (marked - db0) / events,
                    "drain_backend": 1000 * (db1 - marked) / events,
                    "client": 1000 * (cpu1 - cpu0) / events,
                }
            )
        cur.execute("VACUUM r5_dirty")
        cur.execute("VACUUM r5_batch")
    cur.execute("DROP TABLE r5_dirty, r5_batch")
    parts = list(found["old"][0])
    for name, runs in found.items():
        print(name, {part: round(statistics.median(r[part] for r in runs[2:]), 4) for part in parts})
    pairs = list(zip(found["new"][2:], found["old"][2:], strict=True))
    print("new - old", {part: round(statistics.median(n[part] - o[part] for n, o in pairs), 4) for part in parts})


if __name__ == "__main__":
    main()
