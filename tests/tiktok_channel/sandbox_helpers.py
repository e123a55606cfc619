"""What the three sandboxes' tests share (Infobip's, TikTok's, the Marketing API's): a webhook receiver on loopback
(its fixture is `receiver`, in tests/tiktok_channel/conftest.py), waiting for a condition, a running sandbox's
control and state, and a sandbox's management command run as a real process until SIGTERM."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Captured:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A tiny webhook receiver on loopback: records every POST, answers the next queued status (else 200)."""

    url: str = ""
    requests: list[Captured] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Captured]:
        wait_until(lambda: len(self.requests) >= count, timeout, f"{count} webhook requests, got {self.requests}")
        return list(self.requests)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def verify_signature(header: str, body: bytes, secret: str, max_age_s: int = 300) -> bool:
    """Our own small verifier of `TikTok-Signature: t=…,s=…` (`/work/shared/tiktok/README.md` §10), independent of
    the sandboxes' signer (both TikTok sandboxes sign this way)."""
    parts = dict(p.strip().split("=", 1) for p in header.split(",") if "=" in p)
    t, s = parts.get("t", ""), parts.get("s", "")
    if not t.isdigit() or not re.fullmatch(r"[0-9a-f]{64}", s):
        return False
    expected = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, s) and abs(time.time() - int(t)) <= max_age_s


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium through Playwright (the sandboxes' consent pages in a real browser)."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.test_browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def receiving() -> Iterator[Receiver]:
    """A `Receiver` listening on a free loopback port while the block runs."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with state.lock:
                state.requests.append(Captured(self.path, dict(self.headers.items()), body))
                status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class RunningTikTok:
    """A TikTok sandbox (Business Messaging or the Marketing API) serving in this process, and the receiver of its
    webhooks; the control and state endpoints both have."""

    server: Any
    receiver: Receiver

    @property
    def url(self) -> str:
        return self.server.url

    def state(self) -> dict:
        return requests.get(f"{self.url}/sandbox/state", timeout=5).json()

    def counter(self, name: str) -> int:
        return self.state()["counters"].get(name, 0)


@dataclass
class CommandRun:
    url: str = ""
    output: str = ""  # everything printed, once it stopped


@contextmanager
def serving_command(*args: str) -> Iterator[CommandRun]:
    """`manage.py <args>` as a real process: yields once it printed `listening on <url>`; then SIGTERM, and the run
    must end with status 0 (its whole output in `output`)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    process = subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    run = CommandRun()
    try:
        first = process.stdout.readline()
        url = re.search(r"listening on (http://\S+)", first)
        assert url, first + process.stderr.read()
        run.url = url.group(1)
        yield run
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=15)
    run.output = first + out
    assert process.returncode == 0, run.output
