"""The reads scenario's wrk runs on the full stack, against data kept between runs (issue 20, seventh session).

`bench/run.py --only reads` seeds 100,000 conversations (~2 minutes) into a fresh database every run; this starts
the same stack (bench/stack.py: gunicorn, uvicorn, processor, Celery worker, sandbox; production settings) from
any worktree against the database `cpu_reads.py load` filled, so main and a branch can be alternated on one data set:

    DATABASE_URL=…/h1 REDIS_URL=…/1 .venv/bin/python bench/cpu_reads.py load --conversations 100000
    DATABASE_URL=…/h1 REDIS_URL=…/1 .venv/bin/python bench/reads_stack.py --root /path/to/worktree [--py-spy]

It runs, 10 s each with 2 wrk connections, the bare view, the list, a thread and the bare view again (the reads
scenario's shape), and prints per run wrk's rate and percentiles and the CPU every process used meanwhile
(psutil: each gunicorn worker, PostgreSQL backends by kind, the processor, Celery, uvicorn, the sandbox, wrk, and
the rest of the machine), as % of one core and as ms per request. `--py-spy` records the gunicorn workers during
the list run (speedscope JSON, `reads-stack-pyspy-<pid>.json` in the temporary directory). Redis db = REDIS_URL's + 10.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench import stack as stack_mod  # noqa: E402
from bench import wrk  # noqa: E402

PY_SPY = os.environ.get("PY_SPY", "/work/main/.venv/bin/py-spy")
SPY_DIR = Path(tempfile.gettempdir())


def _environment(root: Path) -> tuple[dict[str, str], str]:
    from cryptography.fernet import Fernet

    parts = urlsplit(os.environ["DATABASE_URL"])
    name = parts.path.lstrip("/")
    bench_name = name if name.endswith("_bench") else f"{name}_bench"
    redis = urlsplit(os.environ["REDIS_URL"])
    redis_db = int(redis.path.lstrip("/") or 0) + 10
    database_url = urlunsplit(parts._replace(path=f"/{bench_name}"))
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY=secrets.token_urlsafe(40),
        ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        SECURE_SSL_REDIRECT="false",
        SECURE_HSTS_SECONDS="0",
        DATABASE_URL=database_url,
        REDIS_URL=urlunsplit(redis._replace(path=f"/{redis_db}")),
        BENCH_BASELINE="1",
        CELERY_TASK_DEFAULT_QUEUE=f"bench-{secrets.token_hex(4)}",
        CHANNEL_LAYER_PREFIX=f"bench-{secrets.token_hex(4)}",
        REPLY_QUOTA_PER_WINDOW="100000000",  # as bench/stack.py's environment
        LOG_LEVEL="WARNING",
        DEMO="0",
        PYTHONUNBUFFERED="1",
        PYTHONWARNINGS="ignore:No directory at",
    )
    env.pop("DJANGO_DEBUG", None)
    return env, database_url


def _reader(database_url: str) -> tuple[str, list[int]]:
    import psycopg

    url = urlunsplit(urlsplit(database_url)._replace(scheme="postgresql"))
    with psycopg.connect(url) as conn:
        key = conn.execute(
            "SELECT t.key FROM authtoken_token t JOIN auth_user u ON u.id = t.user_id "
            "WHERE u.username LIKE 'bench-reader-%%' ORDER BY u.id DESC LIMIT 1"
        ).fetchone()[0]
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT c.id FROM inbox_conversation c JOIN inbox_inbox i ON i.id = c.inbox_id "
                "WHERE i.name = 'Bench reads' ORDER BY c.id"
            )
        ]
    return key, ids


def _roles(stack: stack_mod.Stack, database: str) -> dict[str, list[psutil.Process]]:
    """Every process by role, gunicorn workers and PostgreSQL backends one by one."""
    groups: dict[str, list[psutil.Process]] = {}
    for name, popen in stack.processes.items():
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(popen.pid)
            if name == "web":
                groups["web: gunicorn master"] = [root]
                for index, child in enumerate(sorted(root.children(), key=lambda p: p.pid)):
                    groups[f"web: worker {index}"] = [child]
            else:
                groups[name] = [root, *root.children(recursive=True)]
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if cmdline.startswith("postgres:"):
            if f" {database} " in f"{cmdline} ":
                kind = "client backend" if "127.0.0.1" in cmdline or "[local]" in cmdline else cmdline
                groups.setdefault(f"postgres ({database}): {kind[:60]}", []).append(proc)
            elif any(word in cmdline for word in ("autovacuum", "walwriter", "checkpointer", "background writer")):
                groups.setdefault("postgres: background (all databases)", []).append(proc)
        elif proc.info["name"] == "redis-server":
            groups.setdefault("redis (shared)", []).append(proc)
        elif proc.info["name"] == "wrk":
            groups.setdefault("wrk", []).append(proc)
    return groups


class Window:
    """CPU seconds of each role between enter and exit (new processes counted from zero), and the machine's."""

    def __init__(self, roles) -> None:
        self.roles = roles
        self.used: dict[str, float] = {}

    def _snap(self) -> dict[tuple[int, float], tuple[str, float]]:
        out = {}
        for name, procs in self.roles().items():
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    t = proc.cpu_times()
                    out[(proc.pid, proc.create_time())] = (name, t.user + t.system)
        return out

    def __enter__(self) -> Window:
        self.start = self._snap()
        self.machine = psutil.cpu_times()
        self.t0 = time.monotonic()
        self._stop = threading.Event()
        self._late: dict[tuple[int, float], tuple[str, float]] = {}
        # wrk starts after enter: sample the roles while the window is open so short-lived processes count.
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            self._late.update(self._snap())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        machine = psutil.cpu_times()
        self.seconds = time.monotonic() - self.t0
        end = {**self._late, **self._snap()}
        for key, (name, seconds) in end.items():
            before = self.start.get(key, (name, 0.0))[1]
            self.used[name] = self.used.get(name, 0.0) + max(0.0, seconds - before)
        idle = (machine.idle + machine.iowait) - (self.machine.idle + self.machine.iowait)
        total = stack_mod._machine_total(machine) - stack_mod._machine_total(self.machine)
        self.busy = max(0.0, total - idle)


def run(args) -> dict:
    root = Path(args.root).resolve()
    env, database_url = _environment(root)
    stack_mod.ROOT = root
    stack_mod.LOG_DIR = Path(tempfile.gettempdir()) / f"reads-stack-{os.getpid()}"
    n = stack_mod.cores()
    stack = stack_mod.Stack(
        env=env,
        database="postgresql",
        web_port=stack_mod.free_port(),
        ws_port=stack_mod.free_port(),
        sandbox_port=stack_mod.free_port(),
        web_workers=args.workers or 2 * n,
        ws_workers=n,
    )
    stack.env["CSRF_TRUSTED_ORIGINS"] = stack.web
    stack.env["PUBLIC_BASE_URL"] = stack.web
    key, ids = _reader(database_url)
    database = urlsplit(database_url).path.lstrip("/")
    headers = {"Authorization": f"Token {key}"}
    sample = ids[:: max(1, len(ids) // 5000)][:5000]
    get = "request = function() return wrk.format(nil, nil) end"
    thread = f"""
math.randomseed(20260101)
local ids = {{{", ".join(map(str, sample))}}}
request = function()
  return wrk.format(nil, "/api/v1/conversations/" .. ids[math.random(1, #ids)] .. "/messages/")
end
"""
    out: dict = {"root": str(root), "load_before": os.getloadavg()[0], "runs": []}
    try:
        stack.start_servers()
        web = stack.web
        for url, script in ((f"{web}/bench/noop", get), (f"{web}/api/v1/conversations/", get), (web, thread)):
            wrk.run(url, wrk.Script("GET", headers, script), seconds=2, connections=2)  # warm every worker up
        time.sleep(args.settle)
        for label, url, script in (
            ("bare view", f"{web}/bench/noop", get),
            ("list", f"{web}/api/v1/conversations/", get),
            ("thread", web, thread),
            ("bare view again", f"{web}/bench/noop", get),
        ):
            spy = None
            if args.py_spy and label == "list":
                pids = [str(p.pid) for p in psutil.Process(stack.processes["web"].pid).children()]
                spy = [
                    subprocess.Popen(  # noqa: S603 - our own tool
                        [
                            PY_SPY,
                            "record",
                            "--nonblocking",
                            "-r",
                            "200",
                            "-d",
                            str(args.seconds + 1),
                            "-f",
                            "speedscope",
                            "-o",
                            str(SPY_DIR / f"reads-stack-pyspy-{pid}.json"),
                            "-p",
                            pid,
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )  # fmt: skip
                    for pid in pids
                ]
            with Window(lambda: _roles(stack, database)) as window:
                result = wrk.run(url, wrk.Script("GET", headers, script), seconds=args.seconds, connections=2)
            for proc in spy or []:
                proc.wait()
            row = {
                "run": label,
                "rate": round(result.rate, 1),
                "p50": result.pct(50),
                "p95": result.pct(95),
                "p99": result.pct(99),
                "errors": result.errors,
                "load": round(os.getloadavg()[0], 2),
                "cpu_pct": {k: round(100 * v / window.seconds, 1) for k, v in sorted(window.used.items())},
                "cpu_ms_per_request": {
                    k: round(1000 * v / max(1, result.requests), 2) for k, v in sorted(window.used.items())
                },
                "machine_busy_pct": round(100 * window.busy / window.seconds, 1),
                "others_pct": round(100 * (window.busy - sum(window.used.values())) / window.seconds, 1),
            }
            out["runs"].append(row)
            print(json.dumps(row), flush=True)
    finally:
        stack.stop_all()
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=str(HERE.parent), help="the worktree whose code serves (default: this)")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--settle", type=float, default=2, help="seconds idle after warm-up, before measuring")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default 2 × cores, as the stack)")
    parser.add_argument("--py-spy", action="store_true", help="record the gunicorn workers during the list run")
    parser.add_argument("--out", help="write the JSON here too")
    args = parser.parse_args(argv)
    result = run(args)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
