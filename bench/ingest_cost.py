"""In-process cost of ingesting one result per POST: the webhook request, and the processor's batch.

(a) The webhook: CPU (`time.process_time`) and statements per request through Django's test client
    (`WEBHOOK_PROCESSING=deferred`), for the bare view, the one-INSERT floor and the Infobip webhook with one inbound
    result, alternated in rounds of `--posts` requests each. Each path goes through the middleware list the WSGI app
    serves it with: where the measured code has `config.handlers`, the webhook through `WEBHOOK_MIDDLEWARE` and the
    bare view and the floor through the full `MIDDLEWARE`, plus a second floor row through `WEBHOOK_MIDDLEWARE`
    (what the webhook's own middleware costs a single INSERT); older code: every path through the full list.
(b) The processor: the same requests applied by `inbox.processor.drain_once` in batches of `--batch` requests
    (1: what a light or spread load gives it), CPU, wall and statements per batch including the commit and the
    domain-event subscribers (live layer, report roll-ups deferred, automation), for inbound messages of new users,
    of existing conversations, and for delivery + seen reports of outbound messages.
Both also give PostgreSQL's side: the CPU of the backend serving this connection (/proc, same machine) and the WAL
this database wrote (`pg_walinspect`, created in `<db>_ingestcost`: the records touching its relations and the
commits of their transactions; the cluster's own counters also hold the neighbours' writes), with the records by
kind at the end.

Needs PostgreSQL and Redis: DATABASE_URL=postgres://…/<db> REDIS_URL=redis://…/<n>; it creates (and keeps) the
database `<db>_ingestcost` and runs the migrations there. A CODE_DIR argument measures another checkout on the same
database (alternate two checkouts for a before / after). Usage:
    python bench/ingest_cost.py [CODE_DIR] [--posts 2000] [--rounds 3] [--batch 1] [--profile FILE]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.inprocess import django_in, parser  # noqa: E402

os.environ["WEBHOOK_PROCESSING"] = "deferred"
os.environ.setdefault("REPORTS_ROLLUPS", "deferred")
os.environ["BENCH_BASELINE"] = "1"


def main(argv: list[str]) -> int:
    args_parser = parser()
    args_parser.add_argument("--posts", type=int, default=2000, help="requests per round and case")
    args_parser.add_argument("--rounds", type=int, default=3)
    args_parser.add_argument("--batch", type=int, default=1, help="requests per processor batch")
    args_parser.add_argument(
        "--per", type=int, default=1, help="inbound results per request in the processor's cases (100: the batch bench)"
    )
    args_parser.add_argument("--profile", default="", help="write a cProfile of the processor's batches here")
    args_parser.add_argument("--profile-web", default="", help="write a cProfile of the webhook's requests here")
    args_parser.add_argument("--only", nargs="*", default=["web", "inbound", "reports"])
    args = args_parser.parse_args(argv)
    django_in(args.code)

    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql":
        print("needs DATABASE_URL pointing at PostgreSQL", file=sys.stderr)
        return 2
    settings.DATABASES["default"]["TEST"].update(NAME=f"{settings.DATABASES['default']['NAME']}_ingestcost")
    connection.creation.create_test_db(verbosity=0, keepdb=True)
    from django.core.management import call_command

    call_command("flush", interactive=False, verbosity=0)  # every run starts from the same empty tables
    settings.ALLOWED_HOSTS = ["*"]

    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench import data, scenarios
    from inbox import processor
    from inbox.models import WebhookEvent
    from tiktok_channel.sandbox import payloads

    fx = data.setup_base(sandbox_url="http://127.0.0.1:9", agents=3)
    scenarios._create_floor_table()
    client = Client()
    try:  # the measured code serves webhooks through a short middleware list (config/handlers.py): as the WSGI app
        from config.handlers import client_handler
    except ImportError:  # older code: every path through the full list
        short_client = None
    else:
        client.handler = client_handler()
        short_client = Client()
        short_client.handler = client_handler(webhooks_only=True)
    hook = f"/webhooks/infobip/tiktok/{fx.token}/"
    headers = {data.SECRET_HEADER: fx.secret}
    run = uuid.uuid4().hex[:8]
    template = scenarios._single_body()

    def inbound_body(user: str, n: int) -> str:
        received = payloads.infobip_time()
        return (template.replace("@@U@@", user).replace("@@M@@", f"{run}-{n}").replace("@@T@@", f"hello {n}")).replace(
            "@@R@@", received
        )

    def inbound_bodies(users: list[str]) -> list[str]:
        """The processor's requests: `--per` results each (one user each), as the bench's 100/POST scenario."""
        if args.per == 1:
            return [inbound_body(user, next(counter)) for user in users]
        received = payloads.infobip_time()
        results = []
        for user in users:
            n = next(counter)
            results.append(
                item_template.replace("@@U@@", user).replace("@@M@@", f"{run}-{n}").replace("@@T@@", f"hello {n}")
            )
        return [
            '{"results":[' + ",".join(results[i : i + args.per]).replace("@@R@@", received) + "],"
            f'"messageCount":{len(results[i : i + args.per])},"pendingMessageCount":0}}'
            for i in range(0, len(results), args.per)
        ]

    item_template = scenarios._inbound_template()
    counter = iter(range(10**9))
    ticks = os.sysconf("SC_CLK_TCK")

    with connection.cursor() as cursor:  # WAL records of this database only (the cluster's WAL holds the neighbours')
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        cursor.execute("SELECT oid FROM pg_database WHERE datname = current_database()")
        rel_prefix = f"%rel 1663/{cursor.fetchone()[0]}/%"

    def server() -> tuple[float, str]:
        """The PostgreSQL backend serving this connection: its CPU seconds (/proc, same machine: what the server spent
        on our statements, whatever the neighbours do), and the WAL's insert position."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid(), pg_current_wal_insert_lsn()::text")
            pid, lsn = cursor.fetchone()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks, lsn

    wal_kinds: dict[str, dict[str, float]] = {}

    def server_delta(before: tuple[float, str], n: int, case: str = "") -> tuple[float, float, float]:
        """Per request or batch: PostgreSQL CPU µs, WAL bytes and records of this database (pg_walinspect: records
        touching its relations, and the commit records of the transactions that wrote them)."""
        cpu, end = server()
        if end == before[1]:  # nothing written (pg_walinspect refuses an empty range)
            return (cpu - before[0]) / n * 1e6, 0.0, 0.0
        with connection.cursor() as cursor:
            deadline = time.monotonic() + 10  # the batch commits asynchronously: its WAL reaches the disk soon after
            while time.monotonic() < deadline:
                cursor.execute("SELECT pg_current_wal_flush_lsn() >= %s::pg_lsn", [end])
                if cursor.fetchone()[0]:
                    break
                time.sleep(0.05)
            cursor.execute(
                "WITH r AS (SELECT * FROM pg_get_wal_records_info(%s::pg_lsn, %s::pg_lsn)),"
                " mine AS (SELECT DISTINCT xid FROM r WHERE block_ref LIKE %s AND xid <> '0')"
                " SELECT resource_manager || ' ' || split_part(record_type, ' ', 1), count(*), sum(record_length)"
                " FROM r WHERE block_ref LIKE %s"
                " OR (resource_manager = 'Transaction' AND xid IN (SELECT xid FROM mine))"
                " GROUP BY 1",
                [before[1], end, rel_prefix, rel_prefix],
            )
            rows = cursor.fetchall()
        if case:
            wal_kinds[case] = {kind: records / n for kind, records, _ in rows}
        return (
            (cpu - before[0]) / n * 1e6,
            sum(size for _, _, size in rows) / n,
            sum(records for _, records, _ in rows) / n,
        )

    def post(url: str, body: str, extra: dict, through=None) -> None:
        response = (through or client).post(url, body, content_type="application/json", headers=extra)
        assert response.status_code == 200, (response.status_code, response.content[:300])

    def web_round(case: str) -> tuple[float, float]:
        """CPU µs per request, statements per request."""
        bodies = []
        for _ in range(args.posts):
            n = next(counter)
            bodies.append(inbound_body(f"{run}-w-{n}", n))
        url, extra, through = {
            "bare view": ("/bench/noop", {}, None),
            "floor (one INSERT)": ("/bench/insert", {}, None),
            "floor, webhook middleware": ("/bench/insert", {}, short_client),
            "webhook, 1 inbound": (hook, headers, None),
        }[case]
        connection.queries_log.clear()  # it keeps 9,000 at most: a full log would count nothing
        db = server()
        with CaptureQueriesContext(connection) as queries:
            cpu = time.process_time()
            for body in bodies:
                post(url, body, extra, through)
            cpu = time.process_time() - cpu
        return cpu / args.posts * 1e6, len(queries) / args.posts, *server_delta(db, args.posts, case)

    def pending() -> int:
        return WebhookEvent.objects.filter(verdict=WebhookEvent.Verdict.PENDING).count()

    def apply_all(case: str = "") -> tuple[float, ...]:
        """Drain what is pending in batches of `--batch`: CPU µs, wall µs, statements per batch, batches, and per
        batch PostgreSQL's CPU µs, WAL bytes and records."""
        batches = statements = 0
        cpu = wall = 0.0
        db = server()
        while True:
            connection.queries_log.clear()
            with CaptureQueriesContext(connection) as queries:
                w, c = time.perf_counter(), time.process_time()
                n = processor.drain_once(args.batch)
                c, w = time.process_time() - c, time.perf_counter() - w
            if not n:
                break
            batches += 1
            statements += len(queries)
            cpu += c
            wall += w
        per_batch = (cpu / batches * 1e6, wall / batches * 1e6, statements / batches, batches)
        return *per_batch, *server_delta(db, batches, case)

    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU, not wall: what survives a loaded machine

    def processor_round(case: str, r: int) -> tuple[float, float, float, int]:
        WebhookEvent.objects.filter(verdict=WebhookEvent.Verdict.PENDING).update(verdict=WebhookEvent.Verdict.FAILED)
        n_posts = args.posts
        if case == "inbound, new users":
            for body in inbound_bodies([f"{run}-n{r}-{k}" for k in range(n_posts * args.per)]):
                post(hook, body, headers)
        elif case == "inbound, existing conversations":
            users = [f"{run}-e{r}-{k}" for k in range(n_posts * args.per)]
            for body in inbound_bodies(users):
                post(hook, body, headers)
            apply_all()  # the conversations exist; what follows is the measured second message of each
            for body in inbound_bodies(users):
                post(hook, body, headers)
        else:  # delivery + seen reports: one request each, alternating, as the bench's reports scenario
            made = data.conversations_with_messages(
                inbox_id=fx.inbox_id, conversations=-(-n_posts // 20), messages_per=20, prefix=f"{run}-r{r}"
            )
            reports = []
            for message_id in made["outbound_ids"][: n_posts // 2]:
                reports.append(("delivery", message_id))
                reports.append(("seen", message_id))
            for kind, message_id in reports:
                if kind == "delivery":
                    item = payloads.delivery_report(
                        message_id=message_id,
                        to="user",
                        sender=data.BUSINESS_ID,
                        sent_at=payloads.infobip_time(),
                        status=payloads.STATUS_DELIVERED,
                    )
                else:
                    item = payloads.seen_report(
                        message_id=message_id,
                        business_id=data.BUSINESS_ID,
                        user_id="user",
                        sent_at=payloads.infobip_time(),
                    )
                post(hook, json.dumps({"results": [item]}), headers)
        assert pending() == n_posts, pending()
        if profiler is not None:
            profiler.enable()
        figures = apply_all(case)
        if profiler is not None:
            profiler.disable()
        return figures

    print(
        f"code: {args.code}; batches of {args.batch} request(s); {args.posts} requests per round; "
        f"{args.per} inbound result(s) per request",
        flush=True,
    )
    if "web" in args.only:
        cases = ["bare view", "floor (one INSERT)", "webhook, 1 inbound"]
        if short_client is not None:
            cases.insert(2, "floor, webhook middleware")
        web = {case: [] for case in cases}
        for case in cases:  # warm up
            web_round(case)
        for _ in range(args.rounds):
            for case in cases:
                web[case].append(web_round(case))
        if args.profile_web:  # one more round of the webhook alone, under cProfile (CPU clock), not in the figures
            import cProfile

            web_profiler = cProfile.Profile(time.process_time)
            web_profiler.enable()
            web_round("webhook, 1 inbound")
            web_profiler.disable()
            web_profiler.dump_stats(args.profile_web)
            print(f"webhook profile: {args.profile_web}")
        WebhookEvent.objects.filter(verdict=WebhookEvent.Verdict.PENDING).update(verdict=WebhookEvent.Verdict.FAILED)
        print(
            f"{'(a) the request':<34} {'CPU µs/request (rounds)':>40} {'statements':>11}"
            f" {'PG CPU µs':>10} {'WAL B':>8} {'WAL rec':>8}"
        )
        for case in cases:
            cpus = [f"{row[0]:,.0f}" for row in web[case]]
            med = [statistics.median(row[i] for row in web[case]) for i in (0, 2, 3, 4)]
            print(
                f"{case:<34} {med[0]:>10,.0f} ({', '.join(cpus)}){'':>4} {web[case][0][1]:>8.1f}"
                f" {med[1]:>10,.0f} {med[2]:>8,.0f} {med[3]:>8.1f}",
                flush=True,
            )
    cases = []
    if "inbound" in args.only:
        cases += ["inbound, new users", "inbound, existing conversations"]
    if "reports" in args.only:
        cases.append("delivery + seen reports")
    if cases:
        print(
            f"{'(b) the processor, per batch':<34} {'CPU µs':>10} {'wall µs':>10} {'statements':>11} {'batches':>8}"
            f" {'PG CPU µs':>10} {'WAL B':>8} {'WAL rec':>8}"
        )
    for case in cases:
        figures = [processor_round(case, r) for r in range(args.rounds)]
        med = [statistics.median(f[i] for f in figures) for i in (0, 1, 2, 4, 5, 6)]
        cpus = ", ".join(f"{f[0]:,.0f}" for f in figures)
        print(
            f"{case:<34} {med[0]:>10,.0f} {med[1]:>10,.0f} {med[2]:>11.1f} {figures[0][3]:>8}"
            f" {med[3]:>10,.0f} {med[4]:>8,.0f} {med[5]:>8.1f}  (CPU {cpus})",
            flush=True,
        )
    print("WAL records per request / batch by kind (the last round of each case):")
    for case, kinds in wal_kinds.items():
        print(f"  {case}: " + ", ".join(f"{kind} {n:.1f}" for kind, n in sorted(kinds.items())), flush=True)
    if profiler is not None:
        profiler.dump_stats(args.profile)
        print(f"profile: {args.profile}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
