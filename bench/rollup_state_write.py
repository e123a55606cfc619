"""What the fast path's write of a state costs PostgreSQL, in parts: the row lock alone, the lock and the row written
(`updated_at` only, from the same JSON document), the lock and the fast path's UPDATE (the stored document merged with
its new "d", "n", "m"); each on the same 500 random states in its own transaction (rolled back), in random order per
rep; backend CPU per state summed over the reps. Runs on the states `bench/rollup_cost.py` left (`<db>_bench`).
bench/README.md, tenth session.

Usage: DATABASE_URL=postgres://…/<db>_bench python bench/rollup_state_write.py [REPS]
"""

import json
import os
import random
import sys
from pathlib import Path

import psycopg


def backend_cpu(pid):
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


LOCK = """SELECT conversation_id FROM inbox_reportstate WHERE conversation_id = ANY(%s::bigint[])
          ORDER BY conversation_id FOR UPDATE"""
MERGE = """UPDATE inbox_reportstate s SET contributions = CASE WHEN jsonb_array_length(v.value) > 2
             THEN s.contributions || (v.value -> 1) ELSE v.value -> 1 END
           FROM jsonb_array_elements(%s::jsonb) AS v WHERE s.conversation_id = (v.value ->> 0)::bigint"""
FLOOR = """UPDATE inbox_reportstate s SET updated_at = now()
           FROM jsonb_array_elements(%s::jsonb) AS v WHERE s.conversation_id = (v.value ->> 0)::bigint"""
conn = psycopg.connect(os.environ["DATABASE_URL"])
cur = conn.cursor()
cur.execute("SELECT pg_backend_pid()")
[pid] = cur.fetchone()
cur.execute(
    "SELECT conversation_id, contributions -> 'd', contributions -> 'n', contributions -> 'm' "
    "FROM inbox_reportstate WHERE contributions ? 'd'"
)
rows = {pk: (d, n, m) for pk, d, n, m in cur.fetchall()}
conn.rollback()
rng = random.Random(7)
reps = int(sys.argv[1]) if len(sys.argv) > 1 else 100
tot = {k: 0.0 for k in ("lock", "lock+floor", "lock+merge")}
for _rep in range(reps):
    chunk = sorted(rng.sample(list(rows), 500))
    lit = "{" + ",".join(map(str, chunk)) + "}"
    doc = json.dumps(
        [[pk, {"d": rows[pk][0], "n": rows[pk][1], "m": rows[pk][2]}, 1] for pk in chunk], separators=(",", ":")
    )
    order = list(tot)
    rng.shuffle(order)
    for name in order:
        b0 = backend_cpu(pid)
        cur.execute(LOCK, [lit])
        cur.fetchall()
        if name == "lock+floor":
            cur.execute(FLOOR, [doc])
        if name == "lock+merge":
            cur.execute(MERGE, [doc])
        conn.rollback()
        tot[name] += backend_cpu(pid) - b0
print(json.dumps({k: round(1e6 * v / (reps * 500), 2) for k, v in tot.items()}), "backend µs per state")
