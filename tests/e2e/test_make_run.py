"""`make run`'s entry point starts the whole product on the embedded default and Ctrl-C stops all of it."""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import requests

from scripts.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_run_serves_admin_with_worker_beat_and_the_sandbox_demo_and_stops_cleanly(tmp_path):
    port = free_port()
    drop = ("REDIS_URL", "DATABASE_URL", "DJANGO_SETTINGS_MODULE", "DEMO", "PUBLIC_BASE_URL", "SANDBOX_PORT")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update({"PORT": str(port), "DATABASE_URL": f"sqlite:///{tmp_path / 'run.sqlite3'}"})
    proc = subprocess.Popen(
        [sys.executable, "scripts/run.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()

    def output() -> str:
        return "".join(lines)

    def wait_for(pattern: str, timeout: float = 90) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if match := re.search(pattern, output()):
                return match
            assert proc.poll() is None, output()
            time.sleep(0.2)
        raise AssertionError(f"{pattern!r} not seen in:\n{output()}")

    try:
        wait_for(rf"starting at http://127\.0\.0\.1:{port}/")
        redis_port = int(wait_for(r"embedded Redis at redis://127\.0\.0\.1:(\d+)/0").group(1))
        admin_password = wait_for(r"admin / (\S+)").group(1)
        wait_for(r"celery@\S+ ready")
        wait_for(r"beat: Starting")
        wait_for(r"webhook processor: started")
        wait_for(r"Uvicorn running on")
        wait_for(r"Demo: TikTok sender 'demo-business'")
        sandbox_port = int(wait_for(r"Infobip sandbox listening on http://127\.0\.0\.1:(\d+)").group(1))
        # The demo account is set up through the sandbox's Subscriptions API, as Set up in admin does.
        wait_for(r"Set up 'Demo \(Infobip sandbox\)' through the Subscriptions API: complete")

        session = requests.Session()
        base = f"http://127.0.0.1:{port}"
        assert session.get(f"{base}/healthz", timeout=5).json() == {"status": "ok"}
        login = session.get(f"{base}/admin/login/", timeout=5)
        assert login.status_code == 200
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        index = session.post(
            f"{base}/admin/login/?next=/admin/",
            timeout=5,
            headers={"Referer": f"{base}/admin/login/"},
            data={"username": "admin", "password": admin_password, "csrfmiddlewaretoken": token},
        )
        assert index.status_code == 200 and "TikTok Inbox administration" in index.text
        assert "Infobip accounts" in index.text

        # The demo: a simulated TikTok user writes in through the sandbox, signed, and our webhook accepts it.
        sandbox = f"http://127.0.0.1:{sandbox_port}"
        assert requests.get(f"{sandbox}/sandbox/state", timeout=5).status_code == 200
        inbound = requests.post(
            f"{sandbox}/sandbox/inbound",
            json={"sender": "demo-business", "user": "e2e-user", "text": "Hello from the e2e test"},
            timeout=10,
        )
        assert inbound.status_code == 200 and inbound.json()["status"] == 200, inbound.text

        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 6  # honcho, web, ingest, worker, beat, sandbox (plus redis)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError(f"make run did not stop on Ctrl-C:\n{output()}") from None

    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE], output()
    assert not port_open(port) and not port_open(redis_port) and not port_open(sandbox_port)

    # A second start prints no new credentials: they were shown once.
    again = subprocess.run(
        [sys.executable, "manage.py", "bootstrap_dev"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0 and "admin /" not in again.stdout
