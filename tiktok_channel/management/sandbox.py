"""What the three sandbox commands share (`infobip_sandbox`, `tiktok_sandbox`, `tiktok_ads_sandbox`): their server
made or a clear CommandError, and serving until SIGINT / SIGTERM with the lines `make run` and the tests wait for."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError


def listening(sandbox: Any, make_server: Callable[[], Any], host: str, port: int) -> Any:
    """`make_server()` (which may configure the sandbox first); when it fails the sandbox is closed and the reason
    is a CommandError: the address is taken, or the configuration is refused."""
    try:
        return make_server()
    except OSError as exc:
        sandbox.close()
        raise CommandError(f"cannot listen on {host}:{port}: {exc}") from None
    except ValueError as exc:
        sandbox.close()
        raise CommandError(str(exc)) from None
    except CommandError:
        sandbox.close()
        raise


def serve_until_stopped(
    command: BaseCommand,
    server: Any,
    name: str,
    *,
    lines: Callable[[], list[str]] = list,
    ready: Callable[[], None] | None = None,
    then: Callable[[], None] | None = None,
) -> None:
    """Serve in a thread until SIGINT / SIGTERM (so the main thread can shut it down cleanly). Once serving:
    `ready()` (what must be done before `<name> listening on <url>` is printed: whoever waits for that line finds
    it done), the line and `lines()`, then `then()`; on the signal the server stops and `<name> stopped` is printed."""
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    server.start()
    if ready is not None:
        ready()
    command.stdout.write(f"{name} listening on {server.url}  (state: {server.url}/sandbox/state)")
    for line in lines():
        command.stdout.write(line)
    command.stdout.flush()
    if then is not None:
        then()
    done.wait()
    server.stop()
    command.stdout.write(f"{name} stopped")
