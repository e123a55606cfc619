"""Report charts timed in-process on an existing bench database (the reporting scenario's, kept after a run).

    DATABASE_URL=postgres://…/<db>_bench python bench/chart_times.py [CODE_DIR] [--rounds N] [--explain]

CODE_DIR (default: this checkout) is the tree whose `inbox.reports.selectors` is timed, so two checkouts can be
alternated on the same data (before / after). Per chart, whole inbox and one team, 90 days: the median CPU time
of this process (`time.process_time`: what the chart's Python costs, the least disturbed by a shared machine),
the median wall time, PostgreSQL's own execution time of its statements (`EXPLAIN (ANALYZE, BUFFERS)`, with
--explain) and the statement count. Prints one JSON object.
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import timedelta

import inprocess  # bench/, this script's directory


def main() -> None:
    parser = inprocess.parser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()
    inprocess.django_in(args.code)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from inbox.automation.models import Team
    from inbox.models import Inbox
    from inbox.reports import selectors

    inbox = Inbox.objects.get(name="Bench reporting")
    team = Team.objects.filter(inbox=inbox).order_by("pk").first()
    until = timezone.localdate()
    whole = selectors.ReportScope(inbox_ids=(inbox.pk,), since=until - timedelta(days=89), until=until)
    members = tuple(sorted(team.members.values_list("pk", flat=True)))
    scopes = {"": whole, " (team)": selectors.ReportScope(**{**whole.__dict__, "agent_ids": members})}
    found = {}
    for suffix, scope in scopes.items():
        for name, chart in selectors.CHARTS.items():
            cpu, wall = [], []
            for _ in range(args.rounds):
                c0, w0 = time.process_time(), time.perf_counter()
                with CaptureQueriesContext(connection) as queries, selectors.report_reads():
                    chart(scope)
                cpu.append((time.process_time() - c0) * 1000)
                wall.append((time.perf_counter() - w0) * 1000)
            figure = {
                "cpu_ms": round(statistics.median(cpu), 1),
                "wall_ms": round(statistics.median(wall), 1),
                "statements": len(queries),
            }
            if args.explain:
                db_ms = 0.0
                with connection.cursor() as cursor:
                    for query in queries.captured_queries:
                        sql = query["sql"]
                        if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
                            continue
                        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql)
                        plan = cursor.fetchone()[0]
                        plan = json.loads(plan) if isinstance(plan, str) else plan
                        db_ms += plan[0]["Execution Time"]
                figure["db_ms"] = round(db_ms, 1)
            found[name + suffix] = figure
    print(json.dumps({"code": args.code, "charts": found}, indent=1))


if __name__ == "__main__":
    main()
