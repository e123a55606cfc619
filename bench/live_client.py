"""The live-tick scenario's agents: websocket clients spread over processes of their own, so that the client is
not what the figure measures (issue 20 "Ticks").

Each process holds a share of the agents' sockets on one event loop and notes, per frame, the message id and
`time.monotonic()`. On Linux that is CLOCK_MONOTONIC, one clock for the whole system, so the harness can subtract
the time it sent a report POST (its own `time.monotonic()`) from the arrival a client process noted
(`tests/bench/test_live_client.py` checks both). No Django here: a spawned process imports only this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import time
from dataclasses import dataclass, field

# What a client process sends back: ("ready", pid) once its sockets are open and greeted, then
# ("done", Report) once every agent saw every expected frame or the harness said stop.


@dataclass
class Report:
    pid: int
    agents: int
    arrivals: list[tuple[int, float]] = field(default_factory=list)  # (message id, monotonic seconds)
    cpu_seconds: float = 0.0  # the process's own user + system time, from start to report
    error: str = ""
    reported: bool = False
    closed: list[str] = field(default_factory=list)  # sockets the server closed during the run, and why


def chunks(keys: list[str], processes: int) -> list[list[str]]:
    """The agents dealt out over `processes` (round robin; none empty)."""
    processes = max(1, min(processes, len(keys)))
    return [keys[i::processes] for i in range(processes)]


def run_agents(url: str, origin: str, keys: list[str], expected: list[int], conn) -> None:
    """A client process's body (multiprocessing target): connect, say ready, record, report."""
    report = Report(pid=os.getpid(), agents=len(keys))
    try:
        asyncio.run(_agents(url, origin, keys, set(expected), conn, report))
    except Exception as exc:  # noqa: BLE001 - the harness reports it; a traceback in a child is lost
        if not report.reported:  # a failure closing the sockets after the report is not the run's
            report.error = f"{type(exc).__name__}: {exc}"
            _send_report(conn, report)
    conn.close()


def _send_report(conn, report: Report) -> None:
    times = os.times()
    report.cpu_seconds = times.user + times.system
    report.reported = True
    conn.send(("done", report))


async def _agents(url: str, origin: str, keys: list[str], expected: set[int], conn, report: Report) -> None:
    import websockets

    want = len(expected) * len(keys)
    arrivals = report.arrivals
    all_seen = asyncio.Event()

    async def agent(ws) -> None:
        try:
            await read(ws)
        except websockets.ConnectionClosed as exc:
            # An overloaded server may drop a socket (keepalive ping timeout): its frames count as missing.
            report.closed.append(str(exc))

    async def read(ws) -> None:
        async for frame in ws:
            now = time.monotonic()
            # The frame is matched cheaply first: most of what arrives is the tick's own message.status.
            if '"message.status"' not in frame:
                continue
            pk = json.loads(frame).get("message_id")
            if pk in expected:
                arrivals.append((pk, now))
                if len(arrivals) >= want:
                    all_seen.set()

    async with contextlib.AsyncExitStack() as sockets:
        opened = []
        for key in keys:
            cookie = {"Cookie": f"sessionid={key}"}
            # No keepalive pings of our own: a server slow to answer one must not end the measurement.
            ws = await sockets.enter_async_context(
                websockets.connect(
                    url, origin=origin, additional_headers=cookie, open_timeout=30, close_timeout=1, ping_interval=None
                )
            )
            hello = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if hello.get("type") != "hello":
                raise RuntimeError(f"no hello: {hello}")
            opened.append(ws)
        readers = [asyncio.create_task(agent(ws)) for ws in opened]
        conn.send(("ready", os.getpid()))
        loop = asyncio.get_running_loop()
        stop_said = asyncio.Event()
        loop.add_reader(conn.fileno(), stop_said.set)  # anything from the harness now means stop
        try:
            # Done when every frame was seen, the harness says stop, or no socket is left (one failing raises).
            every_reader = asyncio.gather(*readers)
            waiters = [asyncio.create_task(all_seen.wait()), asyncio.create_task(stop_said.wait()), every_reader]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for task in readers:
                if task.done() and task.exception():
                    raise task.exception()
        finally:
            loop.remove_reader(conn.fileno())
            for task in [*readers, *waiters]:
                task.cancel()
            await asyncio.gather(*readers, *waiters, return_exceptions=True)
        # Reported before the sockets close: closing a hundred of them is not the harness's business. The process
        # stays until the harness ends it, so its CPU time is still there to be read when the harness's window ends.
        _send_report(conn, report)
        with contextlib.suppress(EOFError):
            while conn.recv() != "exit":
                pass


@dataclass
class Clients:
    """The client processes of one run, started and connected."""

    processes: list
    conns: list

    @classmethod
    def start(cls, url: str, origin: str, keys: list[str], expected: list[int], processes: int) -> Clients:
        ctx = multiprocessing.get_context("spawn")  # the harness has threads and a database connection: no fork
        procs, conns = [], []
        for share in chunks(keys, processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=run_agents, args=(url, origin, share, expected, child), daemon=True)
            proc.start()
            child.close()
            procs.append(proc)
            conns.append(parent)
        clients = cls(procs, conns)
        try:
            clients._wait_ready(timeout=90)
        except BaseException:
            clients.kill()
            raise
        return clients

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self.processes]

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for conn in self.conns:
            if not conn.poll(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"websocket clients not connected after {timeout}s")
            kind, payload = conn.recv()
            if kind != "ready":
                raise RuntimeError(f"a client process failed before it was ready: {payload.error}")

    def finish(self, timeout: float) -> list[Report]:
        """Each process's report: at once from those whose agents saw every frame, the others are told to stop
        once `timeout` seconds have passed."""
        deadline = time.monotonic() + timeout
        reports = []
        for conn in self.conns:
            if not conn.poll(max(0.0, deadline - time.monotonic())):
                conn.send("stop")
            if not conn.poll(30):
                raise TimeoutError("a websocket client process did not report")
            kind, report = conn.recv()
            reports.append(report)
        return reports

    def kill(self) -> None:
        """End the processes (they wait for this once they have reported)."""
        for proc in self.processes:
            if proc.is_alive():
                proc.kill()
            proc.join(5)
