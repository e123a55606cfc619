"""PostgreSQL restarted under webhook traffic, with a real uvicorn server on a PostgreSQL cluster of its own.

While the database is down the webhook answers 503 (so Infobip retries) and nothing is half-written; when it is
back, the same processes recover without a restart and the retried events are stored once.
Needs PostgreSQL's server binaries (CI installs them); without them there is nothing to restart.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
import requests

from scripts.embedded import free_port, wait_for_port
from tests.tiktok_channel.webhooks import fixture
from tiktok_channel.webhook_auth import WebhookAuth, sign

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e
SECRET = "restart-test-secret"


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Cluster:
    """A throwaway PostgreSQL cluster on a free loopback port (run as the postgres user when we are root)."""

    def __init__(self, bin_dir: Path, root: Path) -> None:
        self.bin, self.data, self.port = bin_dir, root / "pgdata", free_port()
        self.socket_dir = root
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_postgres:
            shutil.chown(root, "postgres")
        self.run("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres", "-E", "UTF8")

    def run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.as_postgres, str(self.bin / tool), *args], check=True, capture_output=True, timeout=60, cwd="/tmp"
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run("pg_ctl", "-D", str(self.data), "-w", "-o", options, "-l", str(self.data / "log"), "start")

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, db: str = "inbox") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def count(self, sql: str) -> int:
        with psycopg.connect(self.url().replace("postgres://", "postgresql://"), autocommit=True) as conn:
            return conn.execute(sql).fetchone()[0]


@pytest.fixture
def cluster():
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("needs PostgreSQL's server binaries (initdb, pg_ctl); CI installs them")
    # Not under pytest's tmp dir: that one is private to root, and the server runs as the postgres user.
    root = Path(tempfile.mkdtemp(prefix="e2e-postgres-"))
    os.chmod(root, 0o755)
    cluster = Cluster(bin_dir, root)
    cluster.start()
    yield cluster
    try:
        cluster.stop()
    except subprocess.CalledProcessError:
        pass
    shutil.rmtree(root, ignore_errors=True)


# How the web side runs: uvicorn applying each webhook inline (persistent connections, health-checked), and
# production's shape from README "Deployment at scale": gunicorn workers keeping unchecked connections, storing
# and answering, and a webhook processor (its own connections, and a LISTEN one) applying.
MODES = {
    "uvicorn-inline": {"CONN_MAX_AGE": "60", "WEBHOOK_PROCESSING": "inline"},
    "gunicorn-deferred": {"CONN_MAX_AGE": "60", "CONN_HEALTH_CHECKS": "false", "WEBHOOK_PROCESSING": "deferred"},
}


# Workers that may still hold a dead connection once the first request after the restart has succeeded.
STALE_WORKERS = {"uvicorn-inline": 0, "gunicorn-deferred": 1}


@pytest.mark.parametrize("mode", MODES)
def test_postgres_restart_webhooks_answer_503_then_recover_without_restarting_us(cluster, tmp_path, mode):
    cluster.run("createdb", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "inbox")
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": cluster.url(),
        "E2E_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        **MODES[mode],
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    added = subprocess.run(
        [
            *manage,
            "infobip_account",
            "add",
            "--name",
            "Restart",
            "--base-url",
            "https://x.api.infobip.com",
            "--api-key",
            "k",
            "--sender",
            "biz-1",
            "--auth",
            "hmac",
            "--secret",
            SECRET,
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    webhook = json.loads(added.stdout)["webhook_url"]
    log = open(tmp_path / "web.log", "w")  # noqa: SIM115 - closed below
    if mode == "uvicorn-inline":
        server = ["uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
    else:
        server = ["gunicorn", "config.wsgi", "--workers", "2", "--bind", f"127.0.0.1:{port}"]
    web = subprocess.Popen([sys.executable, "-m", *server], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    processor = None
    if mode == "gunicorn-deferred":
        processor = subprocess.Popen(
            [*manage, "process_webhooks", "--idle-wait", "0.5"],
            cwd=ROOT,
            env={**env, "LOG_LEVEL": "INFO"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def all_applied() -> bool:
        try:
            return cluster.count("SELECT count(*) FROM inbox_webhookevent WHERE verdict = 'pending'") == 0
        except Exception:  # noqa: BLE001 - the database is down: not applied
            return False

    auth = WebhookAuth(mode="hmac", secret=SECRET)

    def deliver(message_id: str) -> int:
        payload = fixture("inbound_text")
        payload["results"][0]["messageId"] = message_id
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", **sign(auth, body)}
        return requests.post(webhook, data=body, headers=headers, timeout=30).status_code

    try:
        wait_for_port(port, timeout=30)
        assert [deliver(f"before-{n}") for n in range(3)] == [200] * 3

        cluster.stop()
        assert [deliver(f"during-{n}") for n in range(3)] == [503] * 3  # Infobip will retry these
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 503

        cluster.start()  # the same web process, no restart
        deadline = time.monotonic() + 20
        while deliver("during-0") != 200:  # Infobip's retry of the first refused event
            assert time.monotonic() < deadline, "the webhook did not recover"
            time.sleep(0.5)
        # With unchecked kept connections each other gunicorn worker still holds a dead one: it refuses one
        # request (503, Infobip retries it) and reconnects. With health checks (uvicorn here) none is refused.
        refused = []

        def retried_until_stored(message_id: str) -> int:
            while (status := deliver(message_id)) == 503:
                refused.append(message_id)
                assert len(refused) <= STALE_WORKERS[mode], f"more refusals than stale workers: {refused}"
            return status

        assert [retried_until_stored(f"during-{n}") for n in range(3)] == [200] * 3  # duplicates, stored once
        assert [retried_until_stored(f"after-{n}") for n in range(2)] == [200] * 2

        deadline = time.monotonic() + 20
        while not all_applied():  # the processor too came back by itself
            assert time.monotonic() < deadline, "the webhook processor did not recover"
            time.sleep(0.2)
        assert cluster.count("SELECT count(*) FROM inbox_message") == 3 + 3 + 2
        assert cluster.count("SELECT count(DISTINCT provider_message_id) FROM inbox_message") == 8
        # Nothing half-written: every ledger row belongs to an answered request, all processed.
        assert cluster.count("SELECT count(*) FROM inbox_webhookevent WHERE verdict <> 'processed'") == 0
        assert cluster.count("SELECT count(*) FROM inbox_conversation") == 1
    except BaseException:
        log.flush()
        print((tmp_path / "web.log").read_text()[-4000:])
        raise
    finally:
        for process in (web, processor):
            if process is None:
                continue
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()
