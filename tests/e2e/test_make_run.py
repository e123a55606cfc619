"""`make run` as a user runs it, in a terminal: a non-default PORT, the demo driven through the API (a TikTok user
from an ad, a conversion that ends *sent* in the Infobip sandbox), then Ctrl-C stops everything cleanly.

The terminal is a real pseudo-terminal: Ctrl-C is the byte 0x03 typed into it, so the kernel sends SIGINT to the
terminal's foreground process group exactly as in a shell, and `make`'s own exit status is what a shell sees.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import re
import socket
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import psutil
import pytest
import requests
from websockets.sync.client import connect

from scripts.embedded import free_port
from tests.e2e.conftest import wait_for
from tiktok_channel.direct.sandbox.state import DEMO_VIDEO_CAPTION, DEMO_VIDEO_ID

ROOT = Path(__file__).resolve().parents[2]
STAMP = ".venv/.installed"  # the Makefile's install stamp: `make -o` keeps make from reinstalling the venv
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
pytestmark = pytest.mark.e2e


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _take_the_terminal() -> None:
    """In the child, after setsid: the pseudo-terminal on stdin becomes its controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """`make run` in a pseudo-terminal of its own; everything it prints, without colours."""

    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=_take_the_terminal,
        )
        os.close(slave)
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: every process holding the terminal has gone
                return
            if not chunk:
                return
            self.chunks.append(chunk)

    def output(self) -> str:
        return ANSI.sub("", b"".join(self.chunks).decode(errors="replace")).replace("\r", "")

    def ctrl_c(self) -> None:
        os.write(self.master, b"\x03")

    def wait_for(self, pattern: str, timeout: float = 120) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if match := re.search(pattern, self.output()):
                return match
            assert self.proc.poll() is None, self.output()
            time.sleep(0.2)
        raise AssertionError(f"{pattern!r} not seen in:\n{self.output()}")


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def redis_and_its_users(children: list[psutil.Process]) -> tuple[psutil.Process, dict[psutil.Process, str]]:
    """The embedded Redis and the processes that use it (web, ingest, worker, beat), by command line."""
    commands = {}
    for child in children:
        with contextlib.suppress(psutil.Error):
            commands[child] = " ".join(child.cmdline())
    redis = [c for c, command in commands.items() if "redis-server" in command]
    users = {c: command for c, command in commands.items() if re.search(r"uvicorn|celery|process_webhooks", command)}
    assert len(redis) == 1 and len(users) >= 4, commands
    return redis[0], users


def watch_the_stop(
    make: subprocess.Popen, redis: psutil.Process, users: dict[psutil.Process, str], timeout: float = 60
) -> bool | list[str]:
    """Until make exits: True if Redis outlived every process that uses it, else those still running when it
    stopped. Watches the processes themselves (their order of death), not the log."""
    deadline = time.monotonic() + timeout
    while make.poll() is None:
        if not alive(redis):
            running = [command for user, command in users.items() if alive(user)]
            if running:
                return running
        if time.monotonic() > deadline:
            raise subprocess.TimeoutExpired(make.args, timeout)
        time.sleep(0.02)
    return True


def test_make_run_demo_from_an_ad_to_a_sent_conversion_then_ctrl_c_stops_everything(tmp_path):
    port = free_port()
    while port == 8000:
        port = free_port()
    drop = ("REDIS_URL", "DATABASE_URL", "DJANGO_SETTINGS_MODULE", "DEMO", "PUBLIC_BASE_URL", "SANDBOX_PORT", "PORT")
    drop += ("TIKTOK_SANDBOX_PORT", "TIKTOK_ADS_SANDBOX_PORT", "TIKTOK_MARKETING_APP_ID", "TIKTOK_MARKETING_APP_SECRET")
    shell_env = {k: v for k, v in os.environ.items() if k not in drop}
    shell_env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'run.sqlite3'}"
    terminal = Terminal(["make", "-o", STAMP, "run"], {**shell_env, "PORT": str(port)})
    children: list[psutil.Process] = []
    websocket = None
    redis_outlived: bool | list[str] = False
    try:
        terminal.wait_for(rf"starting at http://127\.0\.0\.1:{port}/")
        redis_port = int(terminal.wait_for(r"embedded Redis at redis://127\.0\.0\.1:(\d+)/0").group(1))
        sandbox_port = int(terminal.wait_for(r"Infobip sandbox listening on http://127\.0\.0\.1:(\d+)").group(1))
        tiktok_port = int(terminal.wait_for(r"TikTok sandbox listening on http://127\.0\.0\.1:(\d+)").group(1))
        ads_port = int(terminal.wait_for(r"TikTok ads sandbox listening on http://127\.0\.0\.1:(\d+)").group(1))
        # The box comes once every process said it is ready, with the first passwords and how to reset them.
        terminal.wait_for(r"Ctrl-C stops everything\.")
        out = terminal.output()
        box = out[out.index("╔") :]
        for ready in (r"Uvicorn running on", r"celery@\S+ ready", r"beat: Starting", r"webhook processor: started"):
            assert re.search(ready, out[: out.index("╔")]), f"{ready!r} after the box:\n{out}"
        admin_password = re.search(r"║\s+admin / (\S+)", box).group(1)
        assert re.search(r"║\s+agent / \S+", box) and "manage.py changepassword admin" in box
        assert "admin /" not in out[: out.index("╔")], "the passwords were printed before the box"
        # Quieted: Celery's running-as-root warning (CI runs as root), uvicorn's lifespan message.
        assert "superuser privileges" not in out and "lifespan" not in out
        # The demo account is set up through the sandbox's Subscriptions API, as Set up in admin does.
        terminal.wait_for(r"Set up 'Demo \(Infobip sandbox\)' through the Subscriptions API: complete")
        # Beside it, the direct TikTok demo: its account connected through the TikTok sandbox's OAuth.
        terminal.wait_for(r"Connected 'Demo \(TikTok direct\)' to TikTok account Demo Shop through the sandbox's OAuth")
        assert "Demo (TikTok direct)" in box

        session = requests.Session()
        base = f"http://127.0.0.1:{port}"
        assert session.get(f"{base}/healthz", timeout=5).json() == {"status": "ok"}
        login = session.get(f"{base}/admin/login/", timeout=5)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        index = session.post(
            f"{base}/admin/login/?next=/admin/",
            timeout=5,
            headers={"Referer": f"{base}/admin/login/"},
            data={"username": "admin", "password": admin_password, "csrfmiddlewaretoken": token},
        )
        assert index.status_code == 200 and "Infobip accounts" in index.text
        session.headers.update({"X-CSRFToken": session.cookies["csrftoken"], "Referer": f"{base}/"})

        # The Ads page's Connect goes to the Marketing API sandbox's consent page, which knows our callback.
        ads_connect = session.get(f"{base}/ads/connect/", allow_redirects=False, timeout=5)
        assert ads_connect.status_code == 302, ads_connect.text
        assert ads_connect.headers["Location"].startswith(f"http://127.0.0.1:{ads_port}/portal/auth?")
        consent = requests.get(ads_connect.headers["Location"], timeout=5)
        assert consent.status_code == 200 and "would like to manage your TikTok ad accounts" in consent.text

        # Another shell, without make run's PORT or PUBLIC_BASE_URL: a TikTok user writes in from an ad.
        simulate = subprocess.run(
            [sys.executable, "manage.py", "simulate_tiktok_user", "--sender", "demo-business", "--user", "ad-user-1"]
            + ["--referral-ad"],
            cwd=ROOT,
            env=shell_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert simulate.returncode == 0, simulate.stderr
        assert json.loads(simulate.stdout)["url"].startswith(f"{base}/webhooks/infobip/tiktok/")

        def the_conversation() -> dict | None:
            found = session.get(f"{base}/api/v1/conversations/", params={"q": "ad-user-1"}, timeout=5).json()
            return next(iter(found["results"]), None)

        conversation = wait_for(the_conversation, 30, "the ad user's conversation")
        conversions_url = f"{base}/api/v1/conversations/{conversation['id']}/conversions/"
        reported = session.post(
            conversions_url, json={"event": "CompletePayment", "value": "19.90", "currency": "EUR"}, timeout=10
        )
        assert reported.status_code == 202, reported.text

        def sent() -> dict | None:
            return next((c for c in session.get(conversions_url, timeout=5).json() if c["status"] == "sent"), None)

        assert wait_for(sent, 60, "the conversion to be sent")["event"] == "CompletePayment"
        terminal.wait_for(r"sandbox: conversion \S+ sent \(event CompletePayment, user ad-user-1, source demo-business")
        (received,) = requests.get(f"http://127.0.0.1:{sandbox_port}/sandbox/state", timeout=5).json()["conversions"]
        assert received["status"] == "sent" and received["properties"]["currency"] == "EUR"

        # A simulated user writes to the direct TikTok account: the message reaches its own inbox.
        written = requests.post(
            f"http://127.0.0.1:{tiktok_port}/sandbox/inbound",
            json={"account": "demo-tt-business", "user": "direct-user-1", "text": "Hi from TikTok directly"},
            timeout=15,
        )
        assert [d["status"] for d in written.json()["deliveries"]] == [200], written.text

        def the_direct_conversation() -> dict | None:
            found = session.get(f"{base}/api/v1/conversations/", params={"q": "direct-user-1"}, timeout=5).json()
            return next(iter(found["results"]), None)

        direct = wait_for(the_direct_conversation, 30, "the direct TikTok user's conversation")
        assert direct["inbox"]["name"] == "Demo (TikTok direct)"
        assert "Hi from TikTok directly" in json.dumps(direct["last_message"])

        # The demo account has a posted video that simulated users comment on: a comment on it reaches the inbox as
        # a comment conversation (the COMMENT webhook is registered), and the video's caption is fetched for it.
        commented = requests.post(
            f"http://127.0.0.1:{tiktok_port}/sandbox/comment",
            json={"account": "demo-tt-business", "user": "comment-user-1", "video_id": DEMO_VIDEO_ID, "text": "Nice!"},
            timeout=15,
        )
        assert [d["status"] for d in commented.json()["deliveries"]] == [200], commented.text

        def the_comment_conversation() -> dict | None:
            found = session.get(
                f"{base}/api/v1/conversations/", params={"q": "comment-user-1", "kind": "comment"}, timeout=5
            ).json()
            row = next(iter(found["results"]), None)
            return row if row and row["subject"].get("caption") else None

        commented_on = wait_for(the_comment_conversation, 60, "the comment conversation with its video's caption")
        assert commented_on["subject"]["id"] == DEMO_VIDEO_ID
        assert commented_on["subject"]["caption"] == DEMO_VIDEO_CAPTION
        assert commented_on["subject"]["cover_url"].startswith(f"http://127.0.0.1:{tiktok_port}/sandbox/cover/")

        # An agent's page is open: its websocket holds a Redis subscription in the web server (channels_redis),
        # which printed ConnectionError tracebacks when Redis stopped before the web server.
        cookie = f"sessionid={session.cookies['sessionid']}"
        websocket = connect(
            f"ws://127.0.0.1:{port}/ws/inbox/", origin=base, additional_headers={"Cookie": cookie}, legacy=True
        )
        assert json.loads(websocket.recv(timeout=10))["type"] == "hello"

        children = psutil.Process(terminal.proc.pid).children(recursive=True)
        # run.py, redis, honcho, web, ingest, worker, beat, both sandboxes (and their shells)
        assert len(children) >= 8
        redis, redis_users = redis_and_its_users(children)
    finally:
        terminal.ctrl_c()
        try:
            redis_outlived = watch_the_stop(terminal.proc, redis, redis_users) if children else False
        except subprocess.TimeoutExpired:
            for process in [psutil.Process(terminal.proc.pid), *children]:
                if process.is_running():
                    process.kill()
            raise AssertionError(f"make run did not stop on Ctrl-C:\n{terminal.output()}") from None
        terminal.reader.join(timeout=10)
        os.close(terminal.master)
        if websocket is not None:
            websocket.close()

    out = terminal.output()
    assert terminal.proc.returncode == 0, out
    assert redis_outlived, f"Redis stopped while processes using it still ran: {redis_outlived}\n{out}"
    assert "Traceback" not in out and "make: ***" not in out, out
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE], out
    assert not port_open(port) and not port_open(redis_port) and not port_open(sandbox_port)
    assert not port_open(tiktok_port)

    # A second start prints no new credentials: they were shown once.
    again = subprocess.run(
        [sys.executable, "manage.py", "bootstrap_dev"],
        cwd=ROOT,
        env=shell_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0 and "admin /" not in again.stdout
