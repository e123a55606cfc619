"""`make run`: migrate, then start the whole product under honcho (web, worker, beat; sandbox in the demo).

Uses DATABASE_URL / REDIS_URL when set; otherwise the SQLite file and an embedded Redis.
The demo (the Infobip sandbox and simulated TikTok users) is on with the development settings unless DEMO=0,
and stays off when a real Infobip account is connected.

Ctrl-C (or SIGTERM, or SIGHUP when the terminal closes) stops honcho's processes first (they use Redis), then
the embedded Redis, and exits 0.
In a terminal this process takes the terminal's Ctrl-C for itself (its own foreground process group): GNU make,
our parent, would otherwise get the SIGINT too and die of it (status 130) however cleanly everything stopped.
"""

from __future__ import annotations

import contextlib
import os
import pty
import re
import secrets
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.embedded import ROOT, free_port, services_env  # noqa: E402

DEMO_SENDER = "demo-business"  # tiktok_channel/management/commands/sandbox_demo_setup.py
DEMO_DIRECT_ACCOUNT = "demo-tt-business"  # tiktok_channel/management/commands/tiktok_sandbox.py: DEMO_ACCOUNT
DEMO_DIRECT_APP = "Demo (TikTok direct)"  # sandbox_demo_setup.py: DIRECT_APP (its inbox has the same name)
DEMO_ADS_APP_ID = "7300000000000000001"  # the Marketing API sandbox's app in the demo
REAL_ACCOUNT_EXIT = 3
# bootstrap_dev's lines for the users it created: "    admin / <password>   (what the user is)".
CREDENTIALS = re.compile(r"^\s*(?P<user>\S+) / (?P<password>\S+)\s+\((?P<role>[^)]*)\)\s*$")


def demo_wanted(env: dict[str, str]) -> bool:
    default = "1" if env["DJANGO_SETTINGS_MODULE"] == "config.settings.dev" else "0"
    return env.get("DEMO", default).lower() in ("1", "true", "yes", "on")


def demo_ads(env: dict[str, str]) -> bool:
    """Point the ads side at the Marketing API sandbox (its app's id and secret, our callback as its redirect URI),
    unless a real Marketing app is configured; True when the sandbox is to run."""
    if env.get("TIKTOK_MARKETING_APP_ID"):
        return False
    env.setdefault("TIKTOK_ADS_SANDBOX_PORT", str(free_port()))
    url = f"http://127.0.0.1:{env['TIKTOK_ADS_SANDBOX_PORT']}"
    env["TIKTOK_MARKETING_APP_ID"] = DEMO_ADS_APP_ID
    env["TIKTOK_MARKETING_APP_SECRET"] = secrets.token_hex(16)
    env["TIKTOK_MARKETING_API_BASE"] = f"{url}/open_api/v1.3"
    env["TIKTOK_MARKETING_AUTH_URL"] = f"{url}/portal/auth"
    env["TIKTOK_ADS_REDIRECT_URI"] = f"{env['PUBLIC_BASE_URL']}/ads/callback/"
    env.setdefault("TIKTOK_ADS_WEBHOOK_PATH_TOKEN", secrets.token_urlsafe(12))
    return True


def framed(lines: list[str]) -> str:
    """The lines in a box, so they stand out of honcho's interleaved log lines."""
    width = max(len(line) for line in lines)
    rule = "═" * (width + 4)
    body = "\n".join(f"║  {line.ljust(width)}  ║" for line in lines)
    return f"\n╔{rule}╗\n{body}\n╚{rule}╝\n"


def welcome(url: str, bootstrap_output: str, demo_sender: str | None, tiktok_sandbox_url: str = "") -> str:
    """What the user needs once everything is up: where, who (first run only), how to reset, how to stop."""
    lines = [f"TikTok Inbox is up at {url}   (Django admin: {url}admin/)", ""]
    users = [m for m in map(CREDENTIALS.match, bootstrap_output.splitlines()) if m]
    if users:
        lines.append("First run: log in with these passwords. They are shown only this once:")
        lines += [f"    {m['user']} / {m['password']}   ({m['role']})" for m in users]
    elif bootstrap_output.strip():
        lines += [line.rstrip() for line in bootstrap_output.strip().splitlines()]
    else:
        lines.append("Log in as admin or agent with the passwords the first run printed.")
    lines.append("Lost a password? .venv/bin/python manage.py changepassword admin   (or agent)")
    if demo_sender:
        lines += [
            "",
            f"Demo: simulated TikTok users write to '{demo_sender}' (inbox 'Demo'); write in yourself with",
            f"    .venv/bin/python manage.py simulate_tiktok_user --sender {demo_sender} --user u1 --text hi",
        ]
    if demo_sender and tiktok_sandbox_url:
        lines += [
            f"Demo: TikTok account '{DEMO_DIRECT_ACCOUNT}' talks to TikTok's own API (inbox '{DEMO_DIRECT_APP}'),",
            f"    connected through the TikTok sandbox's OAuth at {tiktok_sandbox_url}; write in yourself with",
            f"    .venv/bin/python manage.py tiktok_sandbox_user --url {tiktok_sandbox_url} \\",
            f"        --account {DEMO_DIRECT_ACCOUNT} --user u1 --text hi",
            "    Connect by hand: admin → TikTok apps (direct) → the app → Connect a TikTok account",
        ]
    lines += ["", "Ctrl-C stops everything."]
    return framed(lines)


@contextlib.contextmanager
def terminal_foreground() -> Iterator[None]:
    """Make this process's own group the terminal's foreground group while it runs, then give it back.

    Ctrl-C then reaches this process (and what it starts in its group) but not `make`, so `make run` exits with
    our status. Does nothing without a terminal or in the background (`make run &`).
    """
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        yield
        return
    previous = None
    ttou = signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # tcsetpgrp from a background group would stop us
    try:
        if os.tcgetpgrp(fd) == os.getpgrp():
            previous = os.getpgrp()
            os.setpgid(0, 0)
            os.tcsetpgrp(fd, os.getpgrp())
    except OSError:
        previous = None
    finally:
        signal.signal(signal.SIGTTOU, ttou)
    # Ctrl-Z would stop this process with the terminal still ours and the shell waiting on make: a frozen
    # terminal. Honcho's processes would not stop anyway (sessions of their own), so Ctrl-Z does nothing.
    tstp = signal.signal(signal.SIGTSTP, signal.SIG_IGN) if previous is not None else None
    try:
        yield
    finally:
        if tstp is not None:
            signal.signal(signal.SIGTSTP, tstp)
        if previous is not None and previous != os.getpgrp():
            signal.signal(signal.SIGTTOU, signal.SIG_IGN)
            with contextlib.suppress(OSError):
                os.tcsetpgrp(fd, previous)
            signal.signal(signal.SIGTTOU, ttou)
        os.close(fd)


# A line each process prints once it is ready (ANSI colours stripped); the box waits for all of them.
READY = {
    "web": re.compile(r"Uvicorn running on"),
    "worker": re.compile(r"celery@\S+ ready\."),
    "beat": re.compile(r"beat: Starting"),
    "ingest": re.compile(r"webhook processor: started"),
    "sandbox": re.compile(r"Infobip sandbox listening on"),
    "tiktok_sandbox": re.compile(r"TikTok sandbox listening on"),
    "tiktok_ads_sandbox": re.compile(r"TikTok ads sandbox listening on"),
}
READY_TIMEOUT = 120.0  # show the box anyway after this long: a process that never says it is ready
ANSI = re.compile(rb"\x1b\[[0-9;]*m")


class Supervisor:
    """Runs honcho in its own session and passes its output on; says when every process is ready.

    A stop signal goes to honcho alone (its helper processes share its group and would print KeyboardInterrupt
    tracebacks), and honcho stops its processes in turn. In a terminal honcho writes to a pseudo-terminal, so it
    keeps its colours.
    """

    def __init__(self, cmd: list[str], env: dict[str, str], processes: list[str]) -> None:
        self.stop_requested = threading.Event()
        self.waiting = {name: READY[name] for name in processes}
        self.ready = threading.Event()
        if sys.stdout.isatty():
            self.output, child_output = pty.openpty()
        else:
            self.output, child_output = os.pipe()
        try:
            self.process = subprocess.Popen(
                cmd, env=env, cwd=ROOT, stdout=child_output, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            os.close(child_output)

    def stop(self, signum: int = signal.SIGINT, _frame=None) -> None:
        self.stop_requested.set()
        # Honcho stops its processes on SIGINT and SIGTERM only; a SIGHUP (the terminal closed) would kill it alone.
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM)

    def relay(self, on_ready) -> None:
        """Copy honcho's output to ours until it ends; call on_ready() once every process said it is ready."""
        deadline = time.monotonic() + READY_TIMEOUT
        pending = b""
        while True:
            readable, _, _ = select.select([self.output], [], [], 1.0)
            if readable:
                try:
                    chunk = os.read(self.output, 65536)
                except OSError:  # a pseudo-terminal whose other end is closed
                    chunk = b""
                if not chunk:
                    break
                with contextlib.suppress(OSError):  # our own output closed (`make run | head`): keep draining
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.flush()
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    text = ANSI.sub(b"", line).decode(errors="replace")
                    self.waiting = {n: pattern for n, pattern in self.waiting.items() if not pattern.search(text)}
            if not self.ready.is_set() and (not self.waiting or time.monotonic() > deadline):
                if not self.stop_requested.is_set():
                    self.ready.set()
                    on_ready()
        os.close(self.output)

    def wait(self) -> int:
        """Honcho's status, or 0 when it ended because we were asked to stop."""
        code = self.process.wait()
        return 0 if self.stop_requested.is_set() else (code or 1)


def created_users(bootstrap_output: str) -> bool:
    return any(CREDENTIALS.match(line) for line in bootstrap_output.splitlines())


def main() -> int:
    (ROOT / ".run").mkdir(exist_ok=True)
    with terminal_foreground(), services_env() as env:
        env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
        env.setdefault("PORT", "8000")
        env.setdefault("HOST", "127.0.0.1")
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        manage = [sys.executable, str(ROOT / "manage.py")]
        processes = ["web", "ingest", "worker", "beat"]
        demo = demo_wanted(env)
        if demo:
            # The sandbox posts webhooks to the URL the account shows, so it must be where web listens.
            env.setdefault("PUBLIC_BASE_URL", f"http://{env['HOST']}:{env['PORT']}")
            env.setdefault("SANDBOX_PORT", str(free_port()))
            env["SANDBOX_CHATTER_SENDER"] = DEMO_SENDER
            # Set up through the Subscriptions API by the sandbox once it listens (tiktok_channel/setup.py).
            env["SANDBOX_SET_UP_ACCOUNTS"] = "Demo (Infobip sandbox)"  # sandbox_demo_setup.py: DEMO_ACCOUNT
            # The direct provider's stand-in: its app (key, secret, URLs) from the file the setup writes; once
            # listening it connects the demo account through its consent form and token endpoint.
            env.setdefault("TIKTOK_SANDBOX_PORT", str(free_port()))
            env["TIKTOK_SANDBOX_CONFIG"] = str(ROOT / ".run" / "tiktok-sandbox.json")
            env["TIKTOK_SANDBOX_CHATTER_ACCOUNT"] = DEMO_DIRECT_ACCOUNT
            env["TIKTOK_SANDBOX_CONNECT_APPS"] = DEMO_DIRECT_APP
            ads_demo = demo_ads(env)
        migrate = subprocess.run([*manage, "migrate", "--noinput"], env=env, cwd=ROOT)
        if migrate.returncode:
            return migrate.returncode
        # Captured, and shown in the box once everything is up (it would scroll away among the start-up lines).
        bootstrap = subprocess.run([*manage, "bootstrap_dev"], env=env, cwd=ROOT, capture_output=True, text=True)
        sys.stderr.write(bootstrap.stderr)
        if bootstrap.returncode:
            sys.stdout.write(bootstrap.stdout)
            return bootstrap.returncode
        if demo:
            sandbox_url = f"http://127.0.0.1:{env['SANDBOX_PORT']}"
            tiktok_url = f"http://127.0.0.1:{env['TIKTOK_SANDBOX_PORT']}"
            setup = subprocess.run(
                [*manage, "sandbox_demo_setup", "--sandbox-url", sandbox_url, "--tiktok-sandbox-url", tiktok_url]
                + ["--tiktok-sandbox-config", env["TIKTOK_SANDBOX_CONFIG"]],
                env=env,
                cwd=ROOT,
            )
            if setup.returncode == 0:
                processes += ["sandbox", "tiktok_sandbox"] + (["tiktok_ads_sandbox"] if ads_demo else [])
            elif setup.returncode != REAL_ACCOUNT_EXIT:
                return setup.returncode
            else:
                demo = False
        url = f"http://{env['HOST']}:{env['PORT']}/"
        print(f"\n  TikTok Inbox is starting at {url}  (admin: {url}admin/)  Ctrl-C stops it.\n", flush=True)
        honcho = [sys.executable, "-m", "honcho", "start", "-f", str(ROOT / "Procfile"), *processes]
        supervisor = Supervisor(honcho, env, processes)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, supervisor.stop)
        tiktok_sandbox = f"http://127.0.0.1:{env['TIKTOK_SANDBOX_PORT']}" if demo else ""
        box = welcome(url, bootstrap.stdout, DEMO_SENDER if demo else None, tiktok_sandbox)
        relay = threading.Thread(
            target=supervisor.relay, args=(lambda: sys.stdout.write(box),), name="relay", daemon=True
        )
        relay.start()
        code = supervisor.wait()
        relay.join(timeout=10)  # the output ends with honcho, unless something it started still holds it
        if not supervisor.ready.is_set() and created_users(bootstrap.stdout):
            # Never lose the only copy of the first passwords, even when the processes did not all come up.
            sys.stdout.write(box)
            sys.stdout.flush()
        return code


if __name__ == "__main__":
    sys.exit(main())
