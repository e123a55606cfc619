"""What both sandboxes (Infobip's and TikTok's) share: switches settable at start and at run time, and the HTTP
server's plumbing (start in a thread, stop, send a body with its length, read a bounded body)."""

from __future__ import annotations

import argparse
import dataclasses
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


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
