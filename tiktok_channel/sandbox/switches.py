"""What the sandboxes (Infobip's, TikTok's and the Marketing API's) share: switches settable at start and at run
time, the state's plumbing (lock, scheduler, counters, webhook deliveries kept, the control endpoint's reset and
set, a webhook posted with retries), and the HTTP server's (start in a thread, stop, send a body with its length,
read a bounded body, loopback-only control). Each wire format stays in its own sandbox."""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import ipaddress
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import requests

logger = logging.getLogger(__name__)

KEPT_DELIVERIES = 500


class Switches:
    """Base of a sandbox's `Behaviour` dataclass: partial all-or-nothing updates, "next N" counters."""

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """One command-line flag per switch (`--fail-next 2`, `--no-send-read`, `--image-types a,b`)."""
        defaults = cls()
        for f in dataclasses.fields(cls):
            flag = "--" + f.name.replace("_", "-")
            default = getattr(defaults, f.name)
            if f.type == "bool":
                parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
            elif f.type == "list[str]":
                parser.add_argument(flag, default=",".join(default), help="comma-separated")
            else:
                parser.add_argument(flag, type={"int": int, "float": float, "str": str}[f.type], default=default)

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> Any:
        """The switches the flags of `add_arguments` gave; raises ValueError."""
        values = {}
        for f in dataclasses.fields(cls):
            value = options[f.name]
            values[f.name] = [v for v in value.split(",") if v] if f.type == "list[str]" else value
        return cls(**values)

    def validate(self) -> None:
        """Each sandbox adds its own rules and calls this for the shared one: no number is negative."""
        numbers = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.type in ("int", "float")}
        negative = [name for name, value in numbers.items() if value < 0]
        if negative:
            raise ValueError(f"must not be negative: {', '.join(negative)}")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update (the control endpoint's body); all or nothing, raises ValueError."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        unknown = set(changes) - set(fields)
        if unknown:
            raise ValueError(f"unknown switches: {', '.join(sorted(unknown))}")
        candidate = dataclasses.replace(self)
        for name, value in changes.items():
            setattr(candidate, name, coerce(name, fields[name].type, value))
        candidate.validate()
        for name in changes:
            setattr(self, name, getattr(candidate, name))
        self.updated(set(changes))

    def updated(self, names: set[str]) -> None:
        """Hook after an update took effect (e.g. reseed a random generator)."""

    def take(self, counter: str) -> bool:
        """Consume one from a "next N" counter; True if there was one."""
        if getattr(self, counter) > 0:
            setattr(self, counter, getattr(self, counter) - 1)
            return True
        return False


class Scheduler:
    """Runs callables at a time in one background thread (reports, webhook retries, scripted users)."""

    def __init__(self) -> None:
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._counter = itertools.count()
        self._wake = threading.Condition()
        self._stopped = False
        self._running = 0  # jobs started and not finished (0 or 1: one thread)
        self._thread = threading.Thread(target=self._run, name="sandbox-scheduler", daemon=True)
        self._thread.start()

    def at(self, delay_s: float, job: Callable[[], None]) -> None:
        with self._wake:
            heapq.heappush(self._queue, (time.monotonic() + delay_s, next(self._counter), job))
            self._wake.notify_all()  # all: `wait_idle` callers wait on the same condition

    def pending(self) -> int:
        with self._wake:
            return len(self._queue)

    @property
    def idle(self) -> bool:
        """Nothing scheduled and nothing running: every report, retry and scripted message so far is done."""
        with self._wake:
            return not self._queue and not self._running

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until the scheduler is idle (an event, not a guess of how long the work takes); False on timeout.

        What a test needs to say that something did *not* happen: once idle, nothing more is on its way."""
        with self._wake:
            return self._wake.wait_for(lambda: self._stopped or (not self._queue and not self._running), timeout)

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify_all()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (not self._queue or self._queue[0][0] > time.monotonic()):
                    self._wake.wait(timeout=self._queue[0][0] - time.monotonic() if self._queue else None)
                if self._stopped:
                    return
                _, _, job = heapq.heappop(self._queue)
                self._running += 1
            try:
                job()
            except Exception:  # a failing job must not stop the scheduler
                logger.exception("sandbox job failed")
            finally:
                with self._wake:
                    self._running -= 1
                    self._wake.notify_all()


class SandboxState:
    """Base of a sandbox's state: its switches (and those it started with, for a reset), one lock guarding all of
    it, the scheduler of later work, counters, and the webhook deliveries kept (the newest KEPT_DELIVERIES)."""

    def __init__(self, behaviour: Switches) -> None:
        self.behaviour = behaviour
        self.initial_behaviour = behaviour.as_dict()
        self.lock = threading.RLock()
        self.scheduler = Scheduler()
        self.deliveries: deque[dict] = deque(maxlen=KEPT_DELIVERIES)
        self.counters: dict[str, int] = {}

    def close(self) -> None:
        self.scheduler.stop()

    def now(self) -> float:
        """The sandbox's clock (a sandbox may move its own)."""
        return time.time()

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counters[name] = self.counters.get(name, 0) + n

    def reset(self) -> None:
        """`{"reset": true}`: the switches the sandbox started with (a sandbox adds what else it resets)."""
        self.behaviour.update(self.initial_behaviour)

    def control_switches(self, body: Any, actions: set[str]) -> None:
        """The control endpoint's shared part, under the lock: `reset`, then `set` (a partial update of the
        switches); any other key must be one of the sandbox's own `actions`. Raises ValueError."""
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        unknown = set(body) - {"reset", "set", *actions}
        if unknown:
            raise ValueError(f"unknown control keys: {', '.join(sorted(unknown))}")
        with self.lock:
            if body.get("reset"):
                self.reset()
            changes = body.get("set") or {}
            if not isinstance(changes, dict):
                raise ValueError("set must be a JSON object of switches")
            self.behaviour.update(changes)

    def post_webhook(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        attempt: int,
        *,
        record: dict,
        counter: str,
        what: str,
        again: Callable[[], Any],
    ) -> dict:
        """POST one try of a webhook and keep it (`record`'s fields first) among the deliveries; count
        `<counter>_ok|failed`; a non-200 answer is tried again (`again()`) after `webhook_retry_ms × 2^(n-1)`
        while `webhook_retries` allow (the TikTok sandboxes' rule)."""
        with self.lock:
            b = self.behaviour
            timeout, retries, retry_ms = b.webhook_timeout_s, b.webhook_retries, b.webhook_retry_ms
        status, error = None, ""
        try:
            response = requests.post(url, data=body, headers=headers, timeout=timeout)
            status = response.status_code
            error = "" if status == 200 else response.text[:500]
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        ok = status == 200  # every non-200 answer is retried
        entry = {**record, "url": url, "attempt": attempt, "status": status, "error": error, "at": time.time()}
        with self.lock:
            self.deliveries.append(entry)
        self.count(f"{counter}_{'ok' if ok else 'failed'}")
        if not ok and attempt <= retries:
            logger.warning("%s webhook to %s failed (try %d): %s", what, url, attempt, status)
            self.scheduler.at(retry_ms / 1000 * 2 ** (attempt - 1), again)
        return entry


def is_url(value: str) -> bool:
    """An absolute http(s) URL."""
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def redirect_uris(spec: dict) -> list[str]:
    """An app's OAuth redirect URIs from its control spec: `redirect_uris` (a list) and `redirect_uri` (one), each
    an absolute http(s) URL; raises ValueError."""
    uris = spec.get("redirect_uris", [])
    if "redirect_uri" in spec:
        uris = [*uris, spec["redirect_uri"]]
    if not isinstance(uris, list) or not all(isinstance(u, str) and is_url(u) for u in uris):
        raise ValueError("redirect_uri(s) must be absolute http(s) URLs")
    return uris


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.removeprefix("::ffff:")).is_loopback
    except ValueError:
        return False


def interval(value: str) -> tuple[float, float]:
    """A command-line interval in seconds: "30-60" or "45"."""
    low, _, high = value.partition("-")
    return float(low), float(high or low)


def coerce(name: str, kind: str, value: Any) -> Any:
    # bool is an int in Python: reject it where a number is meant, and numbers where a bool is meant.
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number")
        return float(value)
    if kind == "str":
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string")
        return value
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{name} must be a list of strings")
    return list(value)


class SandboxHandler(BaseHTTPRequestHandler):
    """Request plumbing shared by both sandboxes' handlers."""

    max_body_bytes = 25 * 1024 * 1024

    def send_body(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def read_body(self, too_large: Callable[[], Exception]) -> bytes:
        """The request body; `too_large()` is raised (the sandbox's own 413 answer) past `max_body_bytes`."""
        length = int(self.headers.get("Content-Length") or 0)
        if length > self.max_body_bytes:
            raise too_large()
        return self.rfile.read(length)


class SandboxHTTPServer(ThreadingHTTPServer):
    """A sandbox served on `host:port` (port 0: any free one); `start` serves in a background thread."""

    daemon_threads = True
    handler: type[BaseHTTPRequestHandler]
    thread_name = "sandbox"
    poll_interval_s = 0.5

    def __init__(self, sandbox: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sandbox = sandbox
        self.stopping = threading.Event()
        super().__init__((host, port), self.handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> threading.Thread:
        """Serve in a background thread (tests, embedding)."""
        thread = threading.Thread(
            target=self.serve_forever, args=(self.poll_interval_s,), name=self.thread_name, daemon=True
        )
        thread.start()
        return thread

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
        self.sandbox.close()
