"""The webhook request's own CPU, from the server to the answer: the bare view, the one-INSERT floor served through the
webhooks' middleware list (`/webhooks/bench/insert`) and the Infobip webhook with one inbound result, each case in
rounds, the cases and the checkouts alternated. Two ways:

- `--mode wsgi` (default): the WSGI application (`config.wsgi`, production settings) called directly with a
  gunicorn-like environ: no sockets and no test client, so what is measured is Django's handler, the middleware,
  the URL resolver, the view and the database driver. CPU per request (`time.process_time`) and PostgreSQL's CPU per
  request (the /proc times of the backend serving the process). Each checkout runs in a process of its own (Django is
  set up once per process); the rounds alternate between the checkouts' processes.
- `--mode gunicorn`: one gunicorn per checkout (`--workers`, sync by default, `--gunicorn-args` for another worker
  class), wrk with `--connections` connections on each case for `--seconds`: requests/s, the CPU of the workers and
  of the PostgreSQL backends (/proc) per request. This is the stack's web tier without the processor, the Celery
  worker or the websockets: the request as the stack's web serves it.

`WEBHOOK_PROCESSING=deferred`; the processors' waiting flag is lowered (as under load: no notification), and the
pending rows each round stored are deleted after it. Uses the database `<db>_ingestcost` that `bench/ingest_cost.py`
made (run that first: its account, secret and tables are used). Usage:
    python bench/web_cost.py [CODE_DIR ...] [--mode wsgi|gunicorn] [--requests 1000] [--rounds 3]
        [--seconds 5] [--workers 4] [--connections 16] [--gunicorn-args "--worker-class gthread --threads 4"]
        [--profile FILE]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = {  # case: (path, needs the account's secret header)
    "bare view": ("/bench/noop", False),
    "floor, webhook list": ("/webhooks/bench/insert", False),
    "webhook, 1 inbound": ("/webhooks/infobip/tiktok/{token}/", True),
}
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float:
    """A process's CPU seconds (user + system); 0 for one that is gone (a backend that ended meanwhile)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("needs DATABASE_URL pointing at PostgreSQL (and bench/ingest_cost.py run once on it)")
    base, _, name = url.rpartition("/")
    return f"{base}/{name.split('?')[0]}_ingestcost"


def _fixture(code: str, url: str) -> dict:
    """The bench account's token and secret, and the encryption keys they were stored with (the test settings')."""
    script = (
        "import json, django; django.setup()\n"
        "from django.conf import settings\n"
        "from tiktok_channel.models import InfobipAccount\n"
        "account = InfobipAccount.objects.order_by('id').first()\n"
        "print(json.dumps({'token': account.webhook_token, 'secret': account.webhook_secret,"
        " 'keys': ','.join(settings.FIELD_ENCRYPTION_KEYS)}))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": url}
    out = subprocess.run([sys.executable, "-c", script], cwd=code, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _server_env(url: str, fixture: dict) -> dict:
    """Production settings as the bench stack sets them (bench/stack.py), on the `_ingestcost` database."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "web-cost-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1",
        "FIELD_ENCRYPTION_KEYS": fixture["keys"],
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_HSTS_SECONDS": "0",
        "DATABASE_URL": url,
        "PUBLIC_BASE_URL": "http://127.0.0.1:1",
        "BENCH_BASELINE": "1",
        "WEBHOOK_PROCESSING": "deferred",
        "LOG_LEVEL": "WARNING",
        "DEMO": "0",
        "CONN_MAX_AGE": "60",
        "CONN_HEALTH_CHECKS": "false",
        "PYTHONWARNINGS": "ignore:No directory at",
    }


def _body() -> bytes:
    sys.path.insert(0, str(ROOT))
    from bench import scenarios

    values = {"U": "web-cost-user", "M": "web-cost-1", "T": "hello", "R": "2026-12-01T07:00:00.000+0000"}
    text = scenarios._single_body()
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    return text.encode()


def _reset(url: str) -> None:
    """No processor waiting (no notification, as under load) and drop what the rounds stored."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM inbox_webhookwaiter")  # a row per waiting processor (migration 0040)
        conn.execute("DELETE FROM inbox_webhookevent WHERE verdict = 'pending'")
        conn.execute("CREATE TABLE IF NOT EXISTS bench_floor (id bigserial PRIMARY KEY, body text NOT NULL)")
        conn.execute("TRUNCATE bench_floor")


# --- wsgi mode: one process per checkout -------------------------------------------------------------------------


def _child(code: str, requests: int, rounds: int, profile: str) -> None:
    """In a process of its own: the checkout's WSGI app called directly; prints one JSON line of figures."""
    import warnings

    warnings.simplefilter("ignore")
    fixture = json.loads(os.environ["WEB_COST_FIXTURE"])
    body = fixture["body"].encode()
    sys.path.insert(0, code)
    os.chdir(code)
    from django.db import connection

    from config.wsgi import application

    base = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "50000",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "wrk",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    statuses: list[str] = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    def one(environ: dict) -> None:
        result = application({**environ, "wsgi.input": io.BytesIO(body)}, start_response)
        for _ in result:
            pass
        result.close()

    def backend_cpu() -> float:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return _cpu(cursor.fetchone()[0])

    environs = {}
    for case, (path, secret) in CASES.items():
        path = path.format(token=fixture["token"])
        environs[case] = {**base, "PATH_INFO": path, "RAW_URI": path}
        if secret:
            environs[case]["HTTP_X_BENCH_SECRET"] = fixture["secret"]
    for environ in environs.values():  # warm up, and check every case answers 200
        for _ in range(100):
            one(environ)
    assert all(status.startswith("200") for status in statuses), set(statuses)
    figures: dict[str, list] = {case: [] for case in CASES}
    for _ in range(rounds):
        for case, environ in environs.items():
            pg, cpu = backend_cpu(), time.process_time()
            for _ in range(requests):
                one(environ)
            cpu = time.process_time() - cpu
            figures[case].append((cpu / requests * 1e6, (backend_cpu() - pg) / requests * 1e6))
    if profile:
        import cProfile

        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for _ in range(requests):
            one(environs["webhook, 1 inbound"])
        profiler.disable()
        profiler.dump_stats(profile)
    assert all(status.startswith("200") for status in statuses), set(statuses)
    print("WEBCOST " + json.dumps(figures), flush=True)


def _wsgi(args, codes: list[str], url: str, fixture: dict) -> dict:
    env = {**_server_env(url, fixture), "WEB_COST_FIXTURE": json.dumps({**fixture, "body": _body().decode()})}
    figures: dict = {(code, case): [] for code in codes for case in CASES}
    for round_ in range(args.rounds):
        for code in codes:
            _reset(url)
            command = [sys.executable, __file__, "--child", code, "--requests", str(args.requests), "--rounds", "1"]
            if args.profile and round_ == args.rounds - 1:
                command += ["--profile", f"{args.profile}.{codes.index(code)}"]
            out = subprocess.run(command, env=env, capture_output=True, text=True)
            lines = [line for line in out.stdout.splitlines() if line.startswith("WEBCOST ")]
            if out.returncode or not lines:
                raise SystemExit(f"{code}: {out.stderr[-2000:]}")
            for case, rows in json.loads(lines[0][len("WEBCOST ") :]).items():
                figures[(code, case)] += [(None, *row) for row in rows]
    _reset(url)
    return figures


# --- gunicorn mode: one server per checkout, wrk ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _gunicorn(args, codes: list[str], url: str, fixture: dict) -> dict:
    import psycopg

    env = _server_env(url, fixture)
    body = _body().decode()
    scripts = {}
    for case, (path, secret) in CASES.items():
        headers = {"Content-Type": "application/json"} | ({"X-Bench-Secret": fixture["secret"]} if secret else {})
        lua = f'wrk.method = "POST"\nwrk.path = "{path.format(token=fixture["token"])}"\nwrk.body = [==[{body}]==]\n'
        lua += "".join(f'wrk.headers["{name}"] = "{value}"\n' for name, value in headers.items())
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
            file.write(lua)
        scripts[case] = file.name
    servers = {}
    log_dir = ROOT / ".run"
    log_dir.mkdir(exist_ok=True)
    for index, code in enumerate(codes):
        port = _free_port()
        command = [sys.executable, "-m", "gunicorn", "config.wsgi", "--workers", str(args.workers), "--bind",
                   f"127.0.0.1:{port}", "--log-level", "warning", *shlex.split(args.gunicorn_args)]  # fmt: skip
        log = open(log_dir / f"web_cost-gunicorn-{index}.log", "w")  # noqa: SIM115 - closed with the server
        servers[code] = (subprocess.Popen(command, cwd=code, env=env, stdout=log, stderr=subprocess.STDOUT), port)
    monitor = psycopg.connect(url, autocommit=True)

    def run(code: str, case: str, seconds: int) -> tuple[float, float, float]:
        server, port = servers[code]
        workers = [int(pid) for pid in subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True,
                                                      text=True).stdout.split()]  # fmt: skip
        backends = [row[0] for row in monitor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()]  # fmt: skip
        before = {pid: _cpu(pid) for pid in workers + backends}
        out = subprocess.run(["wrk", "-t1", f"-c{args.connections}", f"-d{seconds}s", "-s", scripts[case],
                              f"http://127.0.0.1:{port}"], capture_output=True, text=True).stdout  # fmt: skip
        used = {pid: max(_cpu(pid) - cpu, 0.0) for pid, cpu in before.items()}
        web, pg = sum(used[pid] for pid in workers), sum(used[pid] for pid in backends)
        if "Non-2xx" in out:
            raise SystemExit(f"{code} {case}: answers other than 2xx\n{out}")
        requests = int(next(line for line in out.splitlines() if "requests in" in line).split()[0])
        return requests / seconds, web / requests * 1e6, pg / requests * 1e6

    figures: dict = {(code, case): [] for code in codes for case in CASES}
    try:
        for _, port in servers.values():
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)  # noqa: S310 - loopback
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        _reset(url)
        for code in codes:  # every worker connected and warm
            for case in CASES:
                run(code, case, 1)
        for _ in range(args.rounds):
            for code in codes:
                for case in CASES:
                    figures[(code, case)].append(run(code, case, args.seconds))
            _reset(url)
    finally:
        for server, _ in servers.values():
            server.send_signal(signal.SIGTERM)
            server.wait()
        monitor.close()
    return figures


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("code", nargs="*", default=[str(ROOT)])
    parser.add_argument("--mode", choices=["wsgi", "gunicorn"], default="wsgi")
    parser.add_argument("--requests", type=int, default=1000, help="wsgi: requests per round and case")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5, help="gunicorn: seconds per round and case")
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1), help="gunicorn workers")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (the stack's ingest: 16)")
    parser.add_argument("--gunicorn-args", default="", help='e.g. "--worker-class gthread --threads 4"')
    parser.add_argument("--profile", default="", help="wsgi: a cProfile (CPU clock) of the webhook, FILE.<n>")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.requests, args.rounds, args.profile)
        return 0
    codes = [str(Path(code).resolve()) for code in args.code]
    url = _database_url()
    fixture = _fixture(codes[0], url)
    figures = (_wsgi if args.mode == "wsgi" else _gunicorn)(args, codes, url, fixture)
    print(f"mode {args.mode}" + (f", {args.workers} workers {args.gunicorn_args}" if args.mode == "gunicorn" else ""))
    print(f"{'checkout':<24} {'case':<22} {'req/s':>7} {'web CPU µs/request (rounds)':>40} {'PG CPU µs':>10}")
    for (code, case), rows in figures.items():
        rate = f"{statistics.median(row[0] for row in rows):,.0f}" if rows[0][0] is not None else "-"
        cpus = ", ".join(f"{row[1]:,.0f}" for row in rows)
        web, pg = statistics.median(row[1] for row in rows), statistics.median(row[2] for row in rows)
        print(f"{code[-24:]:<24} {case:<22} {rate:>7} {web:>10,.0f} ({cpus}){'':>3} {pg:>10,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
