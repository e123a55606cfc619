"""The fast path's locked read of the stored states, main's statement against the branch's, alternated in one process
on the roll-up states `bench/rollup_cost.py` left in its database (`<db>_bench`): each statement on the same 500 random
states in its own transaction (rolled back, so both take the same row locks), then its result decoded as the drain
decodes it. CPU of the PostgreSQL backend and of this process, and wall clock, per state; sums over the reps (the
backend's clock has 10 ms ticks). bench/README.md, tenth session.

Usage: DATABASE_URL=postgres://…/<db>_bench python bench/rollup_state_read.py [--reps 200]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import psycopg
import psycopg.types.string

# main at 87a5770: the inbox joined per state, the parts built as one jsonb per state.
OLD = """WITH locked AS (
           SELECT s.conversation_id, i.id AS inbox_id, i.time_zone,
                  jsonb_build_array(s.contributions -> 'c' -> -1, s.contributions -> 'd',
                                    s.contributions -> 'n', s.contributions -> 'm') AS parts
           FROM inbox_reportstate s LEFT JOIN inbox_inbox i ON i.id = (s.contributions -> 'd' -> 0 ->> 0)::bigint
           WHERE s.conversation_id = ANY(%s::bigint[]) ORDER BY s.conversation_id FOR UPDATE OF s)
         SELECT json_build_array(
           (SELECT coalesce(json_agg(json_build_array(conversation_id, inbox_id, time_zone, parts)), '[]')
            FROM locked))"""
# The branch: the parts as columns, the inboxes' time zones once per inbox.
NEW = """WITH locked AS (
           SELECT s.conversation_id, s.contributions -> 'c' -> -1 AS c, s.contributions -> 'd' AS d,
                  s.contributions -> 'n' AS n, s.contributions -> 'm' AS m
           FROM inbox_reportstate s
           WHERE s.conversation_id = ANY(%s::bigint[]) ORDER BY s.conversation_id FOR UPDATE OF s)
         SELECT json_build_array(
           (SELECT coalesce(json_agg(json_build_array(conversation_id, c, d, n, m)), '[]') FROM locked),
           (SELECT coalesce(json_object_agg(id, time_zone), '{}') FROM inbox_inbox
            WHERE id IN (SELECT (d -> 0 ->> 0)::bigint FROM locked)))"""


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def decode_old(text: str) -> dict:
    [stored] = json.loads(text)
    return {pk: (*parts, inbox_id, tz) for pk, inbox_id, tz, parts in stored}


def decode_new(text: str) -> dict:
    stored, zones_of = json.loads(text)
    found = {}
    for pk, last, days, counted, highest in stored:
        inbox_id = days[0][0] if days and str(days[0][0]) in zones_of else None
        found[pk] = (last, days, counted, highest, inbox_id, zones_of.get(str(inbox_id)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument("--json", help="write the totals here")
    args = parser.parse_args()
    conn = psycopg.connect(os.environ["DATABASE_URL"])
    # JSON as text, decoded here by json.loads (as Django's cursor hands it to the drain).
    conn.adapters.register_loader("json", psycopg.types.string.TextLoader)
    cur = conn.cursor()
    cur.execute("SELECT pg_backend_pid()")
    [pid] = cur.fetchone()
    cur.execute("SELECT conversation_id FROM inbox_reportstate WHERE contributions ? 'd'")
    ids = [pk for (pk,) in cur.fetchall()]
    conn.rollback()
    rng = random.Random(16)
    totals = {name: {"backend_s": 0.0, "client_s": 0.0, "wall_s": 0.0} for name in ("old", "new")}
    variants = {"old": (OLD, decode_old), "new": (NEW, decode_new)}
    for rep in range(args.reps):
        chunk = sorted(rng.sample(ids, args.chunk))
        literal = "{" + ",".join(map(str, chunk)) + "}"
        results = {}
        for name in ("old", "new") if rep % 2 == 0 else ("new", "old"):
            sql, decode = variants[name]
            db0, cpu0, wall0 = backend_cpu(pid), time.process_time(), time.perf_counter()
            cur.execute(sql, [literal])
            results[name] = decode(cur.fetchone()[0])
            conn.rollback()
            db1, cpu1, wall1 = backend_cpu(pid), time.process_time(), time.perf_counter()
            totals[name]["backend_s"] += db1 - db0
            totals[name]["client_s"] += cpu1 - cpu0
            totals[name]["wall_s"] += wall1 - wall0
        assert results["old"] == results["new"], "the two reads disagree"
    states = args.reps * args.chunk
    per_state = {
        name: {key.removesuffix("_s") + "_us_per_state": round(1e6 * value / states, 2) for key, value in t.items()}
        for name, t in totals.items()
    }
    print(json.dumps({"reps": args.reps, "chunk": args.chunk, **per_state}), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"reps": args.reps, "chunk": args.chunk, **per_state}, indent=1))


if __name__ == "__main__":
    main()
