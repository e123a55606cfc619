"""The live tick's client processes (bench/live_client.py) against a real websocket server, the clock they share
with the harness, and the CPU accounting the scenario reports beside its figures (bench/stack.py CpuWindow)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import subprocess
import sys
import threading
import time

import psutil
import pytest
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from bench import live_client
from bench.run import table
from bench.scenarios import Row
from bench.stack import CpuWindow


class Server:
    """A websocket server on its own loop: greets each socket with a hello, then sends what `broadcast` gets."""

    def __init__(self) -> None:
        self.sockets: list = []
        self.cookies: list[str] = []
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def handler(ws) -> None:
            self.cookies.append(ws.request.headers.get("Cookie", ""))
            await ws.send(json.dumps({"type": "hello", "inboxes": 1}))
            self.sockets.append(ws)
            await ws.wait_closed()

        async def main() -> None:
            async with serve(handler, "127.0.0.1", 0) as server:
                self.port = server.sockets[0].getsockname()[1]
                self._stop = asyncio.Event()
                self._ready.set()
                await self._stop.wait()

        self.loop.run_until_complete(main())

    def broadcast(self, events: list[dict]) -> None:
        async def send() -> None:
            for ws in list(self.sockets):
                for event in events:
                    with contextlib.suppress(ConnectionClosed):  # the one dropped
                        await ws.send(json.dumps(event))

        asyncio.run_coroutine_threadsafe(send(), self.loop).result(10)

    def drop_first(self) -> None:
        """Close one socket from the server's side, as an overloaded server does on a keepalive timeout."""
        asyncio.run_coroutine_threadsafe(self.sockets[0].close(1011, "keepalive ping timeout"), self.loop).result(10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture
def server():
    srv = Server()
    yield srv
    srv.close()


def status(pk: int) -> dict:
    return {"type": "message.status", "conversation_id": 1, "message_id": pk, "status": "delivered", "version": 2}


def start(server: Server, keys: list[str], expected: list[int], processes: int) -> live_client.Clients:
    url = f"ws://127.0.0.1:{server.port}/ws/inbox/"
    return live_client.Clients.start(url, "http://127.0.0.1", keys, expected, processes)


def test_agents_spread_over_processes_record_each_expected_frame_on_the_harness_clock(server):
    keys = [f"key-{i}" for i in range(6)]
    clients = start(server, keys, [1, 2], processes=3)
    try:
        assert len(set(clients.pids)) == 3 and not {*clients.pids} & {multiprocessing.current_process().pid}
        assert sorted(server.cookies) == sorted(f"sessionid={key}" for key in keys)
        before = time.monotonic()
        # Frames that are not an expected message.status are not counted.
        server.broadcast([{"type": "message.created", "message_id": 1}, status(99), status(1), status(2)])
        reports = clients.finish(timeout=20)
        after = time.monotonic()
    finally:
        clients.kill()
    # Each process reported as soon as its agents had every frame, not at the timeout.
    assert after - before < 15
    assert sorted(r.agents for r in reports) == [2, 2, 2]
    assert not [r.error for r in reports if r.error]
    for report in reports:
        assert sorted(pk for pk, _ in report.arrivals) == [1, 1, 2, 2]
        # Arrival times taken in another process fall inside this process's window: one clock.
        assert all(before <= at <= after for _, at in report.arrivals)
        assert report.cpu_seconds > 0


def test_a_process_still_waiting_is_stopped_at_the_timeout_and_reports_what_it_saw(server):
    clients = start(server, ["a", "b"], [1, 2, 3], processes=2)
    try:
        server.broadcast([status(1)])
        started = time.monotonic()
        reports = clients.finish(timeout=1)
        waited = time.monotonic() - started
    finally:
        clients.kill()
    assert 1 <= waited < 20
    assert [sorted(pk for pk, _ in r.arrivals) for r in reports] == [[1], [1]]


def test_a_socket_the_server_drops_is_reported_and_its_frames_count_as_missing(server):
    clients = start(server, ["a", "b"], [1], processes=1)
    try:
        server.drop_first()
        server.broadcast([status(1)])
        reports = clients.finish(timeout=2)
    finally:
        clients.kill()
    [report] = reports
    assert not report.error
    assert [pk for pk, _ in report.arrivals] == [1]
    assert len(report.closed) == 1 and "1011" in report.closed[0]


def test_a_refused_socket_fails_the_start_with_the_reason():
    with pytest.raises(RuntimeError, match="failed before it was ready"):
        live_client.Clients.start("ws://127.0.0.1:9/ws/inbox/", "http://127.0.0.1", ["a"], [1], 1)


def test_agents_are_dealt_over_the_processes():
    assert live_client.chunks(list("abcdefg"), 3) == [["a", "d", "g"], ["b", "e"], ["c", "f"]]
    assert live_client.chunks(["a"], 4) == [["a"]]


@pytest.mark.skipif(sys.platform != "linux", reason="the claim is about Linux")
def test_monotonic_is_one_clock_for_every_process_on_linux():
    assert time.get_clock_info("monotonic").implementation == "clock_gettime(CLOCK_MONOTONIC)"
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        pool.apply(time.monotonic)  # the child is up
        for _ in range(5):
            before = time.monotonic()
            child = pool.apply(time.monotonic)
            after = time.monotonic()
            assert before <= child <= after


def test_cpu_window_counts_a_busy_process_and_the_machine():
    code = (
        "import sys, time\n"
        "t = time.process_time()\n"
        "while time.process_time() - t < 0.4: pass\n"
        "print('spun', flush=True)\n"
        "sys.stdin.read()\n"
    )
    busy = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        with CpuWindow(lambda: {"busy": [psutil.Process(busy.pid)]}) as window:
            assert busy.stdout.readline().strip() == "spun"
    finally:
        busy.stdin.close()
        busy.wait(10)
    assert window.seconds >= 0.4
    # 0.4 s of CPU inside the window, plus the interpreter's start-up.
    assert window.percent["busy"] * window.seconds / 100 >= 0.35
    assert window.percent["machine busy (all processes)"] >= window.percent["busy"] * 0.9
    assert "busy" in window.summary()


def test_every_ratio_names_its_baseline_in_the_table():
    rows = [
        Row("x", "req/s after", 90.0, "req/s", baseline=100.0, baseline_of="the bare view before the scenarios"),
        Row("y", "figure", 5.0, "req/s"),
    ]
    text = table(rows)
    assert "100 (the bare view before the scenarios)" in text
    assert "0.90" in text
