"""CPU per list / thread request, in-process (issue 20): figures a loaded, shared machine cannot blur much.

`time.process_time()` around Django's test client (token auth, production settings, DEBUG off) for the
conversation list (`/api/v1/conversations/`, default page of 25) and a thread (`…/messages/`, default page of 50),
and PostgreSQL's own time for the list's page query (`EXPLAIN (ANALYZE, BUFFERS)`, planning + execution).

    # once: drops and creates `<DATABASE_URL's db>_bench`, migrates, loads the reads scenario's data
    DATABASE_URL=postgres://…/h5 REDIS_URL=redis://…/5 .venv/bin/python bench/cpu_reads.py load --conversations 20000
    # then from each worktree to compare (same database; Redis db = REDIS_URL's + 10):
    cd <worktree> && DATABASE_URL=… REDIS_URL=… /path/to/.venv/bin/python /path/to/bench/cpu_reads.py measure

`measure` imports the project from the current directory, so one data set serves main and a branch alternated.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from urllib.parse import urlsplit, urlunsplit

READER_INBOX = "Bench reads"


def _environment(*, create: bool) -> None:
    from cryptography.fernet import Fernet

    sys.path.insert(0, os.getcwd())
    database_url = os.environ["DATABASE_URL"]
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    bench_name = name if name.endswith("_bench") else f"{name}_bench"
    if create:
        import psycopg

        admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{bench_name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{bench_name}"')
    redis = urlsplit(os.environ["REDIS_URL"])
    redis_db = int(redis.path.lstrip("/") or 0) + 10
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY="bench-cpu-reads-" + "k" * 40,
        ALLOWED_HOSTS="testserver",
        FIELD_ENCRYPTION_KEYS=os.environ.get("FIELD_ENCRYPTION_KEYS") or Fernet.generate_key().decode(),
        SECURE_SSL_REDIRECT="false",
        SECURE_HSTS_SECONDS="0",
        DATABASE_URL=urlunsplit(parts._replace(path=f"/{bench_name}")),
        REDIS_URL=urlunsplit(redis._replace(path=f"/{redis_db}")),
        LOG_LEVEL="WARNING",
        DEMO="0",
    )
    import django

    django.setup()


def load(conversations: int, messages_per: int) -> None:
    _environment(create=True)
    from django.core.management import call_command

    from bench import data

    call_command("migrate", "--noinput", verbosity=0)
    inbox_id, _token = data.reads_user(inbox_name=READER_INBOX)
    started = time.perf_counter()
    data.conversations_with_messages(
        inbox_id=inbox_id,
        conversations=conversations,
        messages_per=messages_per,
        prefix="r",
        outbound_status="seen",
    )
    print(f"loaded {conversations:,} conversations in {time.perf_counter() - started:.0f} s")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(requests: int, explains: int) -> dict:
    _environment(create=False)
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from rest_framework.authtoken.models import Token

    from inbox.models import Conversation

    token = Token.objects.select_related("user").get(user__username__startswith="bench-reader-")
    conversation = Conversation.objects.filter(inbox__name=READER_INBOX).order_by("-last_activity_at").first()
    headers = {"Authorization": f"Token {token.key}"}
    client = Client()
    result: dict = {}
    for name, path in (
        ("list", "/api/v1/conversations/"),
        ("thread", f"/api/v1/conversations/{conversation.pk}/messages/"),
    ):
        for _ in range(5):  # warm up: imports, connection, caches
            assert client.get(path, headers=headers).status_code == 200
        cpu = []
        for _ in range(requests):
            before = time.process_time()
            response = client.get(path, headers=headers)
            cpu.append((time.process_time() - before) * 1000)
            assert response.status_code == 200
        with CaptureQueriesContext(connection) as queries:
            client.get(path, headers=headers)
        page_sql = [q["sql"] for q in queries if "LIMIT" in q["sql"]][-1]
        result[name] = {
            "cpu_ms_p50": round(statistics.median(cpu), 2),
            "cpu_ms_p95": round(_percentile(cpu, 0.95), 2),
            "queries": len(queries),
            "rows": len(response.json()["results"]),
        }
        times = []
        with connection.cursor() as cursor:
            for _ in range(explains):
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + page_sql)
                plan = cursor.fetchone()[0]
                plan = plan[0] if isinstance(plan, list) else json.loads(plan)[0]
                times.append(plan["Planning Time"] + plan["Execution Time"])
        result[name]["pg_ms_median"] = round(statistics.median(times), 2)
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    loading = sub.add_parser("load")
    loading.add_argument("--conversations", type=int, default=20_000)
    loading.add_argument("--messages-per", type=int, default=10)
    measuring = sub.add_parser("measure")
    measuring.add_argument("--requests", type=int, default=60)
    measuring.add_argument("--explains", type=int, default=15)
    args = parser.parse_args(argv)
    if args.command == "load":
        load(args.conversations, args.messages_per)
    else:
        print(json.dumps(measure(args.requests, args.explains)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
