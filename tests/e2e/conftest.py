"""The end-to-end stack: the product as real processes against the test database and the suite's Redis.

Use the `stack` fixture (it brings `transactional_db`) and mark the test `e2e`::

    pytestmark = [pytest.mark.e2e]

    def test_reply_is_delivered(stack):
        stack.simulate_inbound("tt-user-1", "Hi!")              # a signed inbound webhook to our real server
        conversation = stack.conversation("tt-user-1")
        response = stack.reply(conversation.pk, "Hello")        # POST /api/v1/conversations/{id}/messages/
        stack.wait_for(lambda: Message.objects.get(pk=response.json()["id"]).status == "seen", timeout=10)

What runs (started once per test session, shared by every test that asks for `stack`):

- the web server: `uvicorn config.asgi:application` on a free 127.0.0.1 port — pages, API, static files
  (whitenoise, finders on) and websockets (`/ws/inbox/`); `stack.web_url`.
- a Celery worker (`--pool threads --concurrency 2`) on a queue unique to this run (`stack.queue`; the test
  process itself sends there too). No beat: call `stack.sweep()` to run the sweeper.
- a webhook processor (`manage.py process_webhooks`, WEBHOOK_PROCESSING=deferred as in production), started
  for each test and stopped after it, so in-process tests of the same session keep their pending rows;
  `stack.wait_processed()` waits until it has applied what was stored (`simulate_inbound` does).
- the Infobip sandbox, in this process (`tiktok_channel.sandbox.server`), with fresh state (switches,
  counters, sent messages, scheduled reports) for every test; `stack.sandbox`.

The web server and worker use `config.settings.test` with DATABASE_URL = the test database (the SQLite
test file, or PostgreSQL's test database), REDIS_URL = the suite's Redis, PUBLIC_BASE_URL = `stack.web_url`
(through E2E_PUBLIC_BASE_URL, so the webhook URLs in sent messages reach our real webhook), short Infobip
timeouts and retry delays (`WORKER_ENV`), and a 10 s broker visibility timeout. The tables are flushed
after each test (transactional_db); the processes survive that.

Every test gets (created fresh): `stack.inbox`, an agent `stack.agent` (username `stack.agent_username`,
password `stack.agent_password`, member of the inbox, REST token `stack.token`), an Infobip account
`stack.account` (HMAC webhooks, base_url = the sandbox) with one TikTok sender `stack.business_id` feeding
the inbox. `stack.api` is a `requests.Session` authenticated with the agent's token.

Helpers: `simulate_inbound(user, text)`, `conversation(user)`, `reply(conversation_id, text)`,
`session_cookie()` (a logged-in session, e.g. for Playwright's `context.add_cookies`),
`wait_for(predicate, timeout)`, `mails()` (what the processes emailed), `kill_worker()` (SIGKILL) /
`start_worker()`, `sweep()`,
`sandbox.control(...)` / `sandbox.state()` / `sandbox.counters()` / `sandbox.logs()` / `sandbox.deliveries()`,
`logs("web" | "worker")`.
Logs of the processes are files under the pytest tmp dir (`stack.log_dir`); a failing test's report shows
their tails.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from django.db import connection

from scripts.embedded import free_port
from tiktok_channel.sandbox.accounts import DatabaseAccounts
from tiktok_channel.sandbox.behaviour import Behaviour
from tiktok_channel.sandbox.server import Sandbox, SandboxServer

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
LOG_TAIL_LINES = 80

# What the worker and web server run with, besides the database, Redis and URLs. Short Infobip timeouts and
# retry delays keep fault tests fast: a 5xx/timeout retry waits 0.1-2 s, a 429 waits Retry-After (≤ 2 s).
WORKER_ENV = {
    # The ads review webhook's URL token (tests/e2e/test_browser_ads.py).
    "TIKTOK_ADS_WEBHOOK_PATH_TOKEN": "e2e-ads-hook",
    "INFOBIP_CONNECT_TIMEOUT": "2",
    "INFOBIP_READ_TIMEOUT": "2",
    "TIKTOK_DIRECT_CONNECT_TIMEOUT": "2",
    "TIKTOK_DIRECT_READ_TIMEOUT": "5",
    "OUTBOX_SEND_MAX_TRIES": "12",
    "OUTBOX_SEND_BUDGET_SECONDS": "60",
    "OUTBOX_RETRY_BASE_SECONDS": "0.2",
    "OUTBOX_RETRY_MAX_DELAY_SECONDS": "2",
    # Longer than any retry countdown plus a held (timed-out) request, so a waiting retry is not redelivered.
    "CELERY_VISIBILITY_TIMEOUT": "10",
    # Automation rules' webhooks post to a receiver on 127.0.0.1 in the tests, retried quickly.
    "AUTOMATION_WEBHOOK_ALLOW_HTTP": "1",
    "AUTOMATION_WEBHOOK_ALLOW_PRIVATE": "1",
    "AUTOMATION_WEBHOOK_RETRY_BASE_SECONDS": "0.5",
    "AUTOMATION_WEBHOOK_RETRY_MAX_SECONDS": "2",
    # Django runs each ASGI request's sync code in a thread of its own: persistent connections would be
    # left behind by every request (PostgreSQL runs out of connections in a webhook storm). Django's docs:
    # disable them under ASGI.
    "CONN_MAX_AGE": "0",
}
# The sandbox's switches at the start of every test: quick reports, quick webhook retries.
SANDBOX_DEFAULTS = {
    "delivery_delay_ms": 100,
    "seen_delay_ms": 200,
    "webhook_retry_ms": 200,
    "webhook_timeout_s": 10.0,
}


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "", interval: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy (returned); AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate!r} (last: {last!r})")
        time.sleep(interval)


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for the database a connection's settings point at (the test database once set up)."""
    engine = settings_dict["ENGINE"]
    if engine == "django.db.backends.sqlite3":
        name = str(settings_dict["NAME"])
        if name == ":memory:" or name.startswith("file:"):
            raise RuntimeError("the e2e stack needs a file test database, not an in-memory one")
        return f"sqlite:///{Path(name).resolve()}"
    if "postgresql" in engine:
        user = quote(settings_dict.get("USER") or "", safe="")
        password = quote(settings_dict.get("PASSWORD") or "", safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
        return f"postgres://{auth}{host}{port}/{quote(settings_dict['NAME'], safe='')}"
    raise RuntimeError(f"the e2e stack does not know the database engine {engine}")


@dataclass
class Process:
    """One subprocess of the stack, in its own process group, output to a log file."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal_group(self, signum: int) -> None:
        if self.popen is not None:
            try:
                os.killpg(self.popen.pid, signum)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """SIGKILL, no goodbye: what an OOM killer or a lost machine does."""
        self.signal_group(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not stopped after STOP_TIMEOUT."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.signal_group(signal.SIGTERM)
        try:
            self.popen.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()


def tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(text.splitlines()[-lines:])


class SandboxHandle:
    """The in-process Infobip sandbox, driven through its HTTP control endpoint like any client would."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.api_key = ""  # the current test account's key, for `logs()`

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def sandbox(self) -> Sandbox:
        """The Sandbox object itself (state, counters, sent messages) for assertions beyond the HTTP API."""
        return self.server.sandbox

    def renew(self) -> None:
        """Fresh state for a new test: switches, counters, sent messages, scheduled reports."""
        old = self.server.sandbox
        self.server.sandbox = Sandbox(DatabaseAccounts(), Behaviour(**SANDBOX_DEFAULTS))
        old.close()

    def control(self, set: dict | None = None, *, reset: bool = False, **switches) -> dict:  # noqa: A002
        """`POST /sandbox/control`: set switches (`control(fail_next=2)` or `control(set={...})`); the state."""
        body: dict = {"set": {**(set or {}), **switches}}
        if reset:
            body["reset"] = True
        response = requests.post(f"{self.url}/sandbox/control", json=body, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def state(self) -> dict:
        """`GET /sandbox/state`: behaviour, counters, messages, the last 50 webhook posts."""
        return requests.get(f"{self.url}/sandbox/state", timeout=10).json()

    def counters(self) -> dict[str, int]:
        return self.state()["counters"]

    def logs(self, **filters) -> list[dict]:
        """`GET /tiktok/1/logs` with the test account's key: every message the sandbox accepted (one per id)."""
        response = requests.get(
            f"{self.url}/tiktok/1/logs",
            params={"limit": 1000, **filters},
            headers={"Authorization": f"App {self.api_key}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()["results"]

    def deliveries(self) -> list[dict]:
        """Every webhook post of this test (inbound, delivery, seen): kind, url, message_ids, status, attempt."""
        with self.sandbox.lock:
            return list(self.sandbox.deliveries)


@dataclass
class Stack:
    """The running stack; see the module docstring."""

    log_dir: Path
    db_url: str
    redis_url: str
    queue: str
    web_port: int
    sandbox: SandboxHandle
    web: Process | None = None
    worker: Process | None = None
    ingest: Process | None = None
    workers_started: int = 0
    extra_worker_env: dict[str, str] = field(default_factory=dict)
    # Set per test by the `stack` fixture.
    inbox: Any = None
    agent: Any = None
    agent_username: str = "agent"
    agent_password: str = ""
    token: str = ""
    account: Any = None
    business_id: str = "e2e-business"
    api: requests.Session = field(default_factory=requests.Session)
    _log_offsets: dict[Path, int] = field(default_factory=dict)

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def mail_dir(self) -> Path:
        return self.log_dir / "mail"

    def mails(self) -> list[str]:
        """Every mail the stack's processes sent (file backend), oldest first, as raw text."""
        if not self.mail_dir.exists():
            return []
        return [path.read_text(errors="replace") for path in sorted(self.mail_dir.glob("*.log"))]

    # --- processes -------------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("PUBLIC_BASE_URL", "DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL")
        }
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings.test",
                "DATABASE_URL": self.db_url,
                "REDIS_URL": self.redis_url,
                "E2E_PUBLIC_BASE_URL": self.web_url,
                "CELERY_TASK_DEFAULT_QUEUE": self.queue,
                "PYTHONUNBUFFERED": "1",
                "LOG_LEVEL": "INFO",
                # As in production: the webhook stores and answers, the processor (`self.ingest`) applies.
                "WEBHOOK_PROCESSING": "deferred",
                # Mail the processes send (e.g. "reconnect TikTok") lands as files a test can read (`mails()`).
                "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
                "EMAIL_FILE_PATH": str(self.mail_dir),
                **WORKER_ENV,
                **self.extra_worker_env,
            }
        )
        return env

    def start(self, *, processor: bool = True) -> None:
        """Start the web server, a worker and (unless `processor=False`) a webhook processor; wait until ready."""
        self.web = Process(
            "web",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "config.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.web_port),
                "--no-access-log",
                "--lifespan",
                "off",
            ],
            self.env(),
            self.log_dir / "web.log",
        )
        self.web.start()
        if processor:
            self.ingest = self.start_processor("ingest", wait=False)
        self._spawn_worker()
        self._wait_web()
        if processor:
            self._wait_processor(self.ingest)
        self._wait_worker()

    def start_processor(self, name: str, *, wait: bool = True) -> Process:
        """A webhook processor (`manage.py process_webhooks`); the stack runs one, a test may add more."""
        process = Process(
            name,
            [sys.executable, "manage.py", "process_webhooks", "--idle-wait", "0.5"],
            self.env(),
            self.log_dir / f"{name}.log",
        )
        process.start()
        if wait:
            self._wait_processor(process)
        return process

    def _wait_processor(self, process: Process) -> None:
        self._wait_ready(lambda: "webhook processor: started" in process.log(), "the webhook processor", process)

    def _wait_web(self) -> None:
        def healthy() -> bool:
            self._check_alive(self.web)
            try:
                return requests.get(f"{self.web_url}/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        self._wait_ready(healthy, "the web server to answer /healthz", self.web)

    def _spawn_worker(self) -> None:
        self.workers_started += 1
        n = self.workers_started
        self.worker = Process(
            f"worker-{n}",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool",
                "threads",
                "--concurrency",
                "2",
                "--queues",
                self.queue,
                "--hostname",
                f"{self.queue}-{n}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "INFO",
            ],
            self.env(),
            self.log_dir / f"worker-{n}.log",
        )
        self.worker.start()

    def _wait_worker(self) -> None:
        worker = self.worker

        def ready() -> bool:
            self._check_alive(worker)
            return " ready." in worker.log()

        self._wait_ready(ready, "the Celery worker to be ready", worker)

    def _check_alive(self, process: Process) -> None:
        if not process.alive:
            raise RuntimeError(f"{process.name} exited ({process.popen.returncode}):\n{tail(process.log())}")

    def _wait_ready(self, predicate: Callable[[], bool], what: str, process: Process) -> None:
        try:
            wait_for(predicate, START_TIMEOUT, what, interval=0.1)
        except AssertionError:
            raise RuntimeError(f"timed out waiting for {what}:\n{tail(process.log())}") from None

    def start_worker(self) -> None:
        """Start a new worker (after `kill_worker`) and wait until it is ready."""
        if self.worker is not None and self.worker.alive:
            raise RuntimeError("a worker is running already")
        self._spawn_worker()
        self._wait_worker()

    def kill_worker(self) -> None:
        """SIGKILL the worker (with any task it is running); its unacknowledged tasks stay in Redis."""
        assert self.worker is not None and self.worker.alive, "no worker is running"
        self.worker.kill()

    def stop(self) -> None:
        for process in (self.worker, self.ingest, self.web):
            if process is not None:
                process.stop()

    # --- logs ------------------------------------------------------------------------------------------

    def logs(self, name: str = "worker") -> str:
        """The whole log of `web` or the current `worker` (or `worker-N`)."""
        if name == "worker":
            return self.worker.log() if self.worker else ""
        if name == "web":
            return self.web.log() if self.web else ""
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def mark_logs(self) -> None:
        self._log_offsets = {path: path.stat().st_size for path in self.log_dir.glob("*.log")}

    def log_tails(self) -> str:
        """What each process logged since the test started (the last lines)."""
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            with path.open("rb") as log:
                log.seek(self._log_offsets.get(path, 0))
                text = log.read().decode(errors="replace")
            if text.strip():
                parts.append(f"--- {path.name} ---\n{tail(text)}")
        return "\n".join(parts) or "(the stack's processes logged nothing during the test)"

    # --- driving it ------------------------------------------------------------------------------------

    wait_for = staticmethod(wait_for)

    def simulate_inbound(self, user: str, text: str = "Hi!", *, message_id: str = "", **content) -> dict:
        """A TikTok user writes: the sandbox posts a signed inbound event to our real webhook (200 asserted).

        `content` takes the other kinds of `/sandbox/inbound` (image=, share_post=, reaction=, ...); returns
        {"messageId", "status", "error"}."""
        webhook_url = f"{self.web_url}/webhooks/infobip/tiktok/{self.account.webhook_token}/"
        options = {"sender": self.business_id, "user": user, "message_id": message_id, "webhook_url": webhook_url}
        options.update(content)
        if not any(content.get(k) for k in ("image", "share_post", "reaction", "referral_ad", "tiktok_me")):
            options["text"] = text
        result = self.sandbox.sandbox.inbound(options)
        assert result["status"] == 200, result
        self.wait_processed()
        return result

    def wait_processed(self, timeout: float = 10.0) -> None:
        """Until the processor has applied every webhook request stored so far (they are stored before 200)."""
        from inbox.models import WebhookEvent

        pending = WebhookEvent.objects.filter(verdict=WebhookEvent.Verdict.PENDING)
        wait_for(lambda: not pending.exists(), timeout, "the webhook processor to apply the stored requests")

    def conversation(self, user: str):
        """The conversation of a TikTok user of this test's sender (after `simulate_inbound`)."""
        from inbox.models import Conversation

        return Conversation.objects.select_related("contact").get(
            contact__endpoint_id=self.business_id, contact__channel_user_id=user
        )

    def reply(self, conversation_id: int, text: str = "", **fields) -> requests.Response:
        """The agent queues a reply through the REST API (token auth): `POST .../messages/`."""
        body = {"type": "text", "text": text, **fields}
        return self.api.post(f"{self.web_url}/api/v1/conversations/{conversation_id}/messages/", json=body, timeout=30)

    def session_cookie(self, user=None) -> dict[str, str]:
        """A logged-in session for `user` (default: the agent) without the login page, as a cookie for
        requests, websockets or Playwright's `context.add_cookies([...])`: {"name", "value", "url"}."""
        from django.conf import settings
        from django.test import Client

        client = Client()
        client.force_login(user or self.agent)
        name = settings.SESSION_COOKIE_NAME
        return {"name": name, "value": client.cookies[name].value, "url": self.web_url}

    def sweep(self) -> int:
        """Run the sweeper (beat's job) now, in this process, with no grace period; the count re-enqueued."""
        from django.test import override_settings

        from inbox.tasks import sweep_queued_messages

        with override_settings(OUTBOUND_STUCK_AFTER_SECONDS=0):
            return sweep_queued_messages()


@pytest.fixture(scope="session")
def e2e_stack_processes(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[Stack]:
    """The processes (web, worker, sandbox) for the whole session; use `stack` in tests."""
    from django.conf import settings

    with django_db_blocker.unblock():
        db_url = database_url(connection.settings_dict)
    queue = f"e2e-{uuid.uuid4().hex[:12]}"
    sandbox_server = SandboxServer(Sandbox(DatabaseAccounts(), Behaviour(**SANDBOX_DEFAULTS)))
    sandbox_server.start()
    stack = Stack(
        log_dir=tmp_path_factory.mktemp("e2e-stack"),
        db_url=db_url,
        redis_url=settings.REDIS_URL,
        queue=queue,
        web_port=free_port(),
        sandbox=SandboxHandle(sandbox_server),
    )
    try:
        # The processor is started per test (`stack`): outside e2e tests it must not take the pending rows that
        # in-process tests of the same session leave for their own `drain()`.
        stack.start(processor=False)
        yield stack
    finally:
        stack.stop()
        sandbox_server.stop()
        _purge(queue)


def _purge(queue: str) -> None:
    from config.celery import app as celery_app

    with celery_app.connection_for_write() as conn:
        try:
            conn.default_channel.queue_purge(queue)
        except Exception:  # noqa: BLE001 - nothing to purge is fine
            pass


@pytest.fixture
def stack(e2e_stack_processes: Stack, transactional_db, settings, django_user_model) -> Iterator[Stack]:
    """The running stack with fresh sandbox state and this test's inbox, agent, account and sender."""
    from rest_framework.authtoken.models import Token

    from config.celery import app as celery_app
    from inbox.models import Inbox
    from tiktok_channel.models import InfobipAccount, TikTokSender

    stack = e2e_stack_processes
    # Tasks sent from this process during the test (reply_queue, the sweeper) go to the stack's queue, and only
    # during it: pytest-django runs transactional unit tests among the e2e tests, and their tasks must not reach
    # the stack's worker (it would act on their committed rows behind their backs).
    previous_queue = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = stack.queue
    if stack.worker is None or not stack.worker.alive:
        stack.start_worker()  # an earlier test killed it
    _purge(stack.queue)
    stack.sandbox.renew()
    # The sandbox (in this process) builds webhook URLs from the account: point them at the real server.
    settings.PUBLIC_BASE_URL = stack.web_url

    stack.inbox = Inbox.objects.create(name="E2E support")
    stack.agent_password = secrets.token_urlsafe(12)
    stack.agent = django_user_model.objects.create_user(stack.agent_username, password=stack.agent_password)
    stack.inbox.members.add(stack.agent)
    stack.token = Token.objects.create(user=stack.agent).key
    api_key = f"e2e-{secrets.token_hex(16)}"  # new per test: the sandbox's account cache never goes stale
    stack.account = InfobipAccount.objects.create(
        name="E2E Infobip",
        base_url=stack.sandbox.url,
        api_key=api_key,
        webhook_auth="hmac",
        webhook_secret=secrets.token_hex(16),
    )
    TikTokSender.objects.create(account=stack.account, business_account_id=stack.business_id, inbox=stack.inbox)
    stack.sandbox.api_key = api_key
    stack.api = requests.Session()
    stack.api.headers["Authorization"] = f"Token {stack.token}"
    stack.ingest = stack.start_processor("ingest")
    stack.mark_logs()
    try:
        yield stack
    finally:
        celery_app.conf.task_default_queue = previous_queue
    stack.ingest.stop()  # SIGTERM: it finishes the batch in hand and closes its connections
    stack.api.close()
    # Nothing left scheduled by this test (reports, webhook retries) may reach the next one.
    stack.sandbox.renew()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    stack = getattr(item, "funcargs", {}).get("stack")
    if report.failed and isinstance(stack, Stack):
        report.sections.append((f"e2e stack logs ({stack.log_dir})", stack.log_tails()))
