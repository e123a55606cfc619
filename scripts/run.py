"""`make run`: migrate, then start the whole product under honcho (web, worker, beat; sandbox in the demo).

Uses DATABASE_URL / REDIS_URL when set; otherwise the SQLite file and an embedded Redis.
The demo (the Infobip sandbox and simulated TikTok users) is on with the development settings unless DEMO=0,
and stays off when a real Infobip account is connected.
Ctrl-C (or SIGTERM) stops every process, then the embedded Redis.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.embedded import ROOT, free_port, run_forwarding_signals, services_env  # noqa: E402

DEMO_SENDER = "demo-business"  # tiktok_channel/management/commands/sandbox_demo_setup.py
REAL_ACCOUNT_EXIT = 3


def demo_wanted(env: dict[str, str]) -> bool:
    default = "1" if env["DJANGO_SETTINGS_MODULE"] == "config.settings.dev" else "0"
    return env.get("DEMO", default).lower() in ("1", "true", "yes", "on")


def main() -> int:
    (ROOT / ".run").mkdir(exist_ok=True)
    with services_env() as env:
        env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
        env.setdefault("PORT", "8000")
        env.setdefault("HOST", "127.0.0.1")
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        manage = [sys.executable, str(ROOT / "manage.py")]
        processes = ["web", "ingest", "worker", "beat"]
        if demo_wanted(env):
            # The sandbox posts webhooks to the URL the account shows, so it must be where web listens.
            env.setdefault("PUBLIC_BASE_URL", f"http://{env['HOST']}:{env['PORT']}")
            env.setdefault("SANDBOX_PORT", str(free_port()))
            env["SANDBOX_CHATTER_SENDER"] = DEMO_SENDER
            # Set up through the Subscriptions API by the sandbox once it listens (tiktok_channel/setup.py).
            env["SANDBOX_SET_UP_ACCOUNTS"] = "Demo (Infobip sandbox)"  # sandbox_demo_setup.py: DEMO_ACCOUNT
        subprocess.run([*manage, "migrate", "--noinput"], env=env, cwd=ROOT, check=True)
        subprocess.run([*manage, "bootstrap_dev"], env=env, cwd=ROOT, check=True)
        if demo_wanted(env):
            sandbox_url = f"http://127.0.0.1:{env['SANDBOX_PORT']}"
            setup = subprocess.run([*manage, "sandbox_demo_setup", "--sandbox-url", sandbox_url], env=env, cwd=ROOT)
            if setup.returncode == 0:
                processes.append("sandbox")
            elif setup.returncode != REAL_ACCOUNT_EXIT:
                return setup.returncode
        url = f"http://{env['HOST']}:{env['PORT']}/"
        print(f"\n  TikTok Inbox is starting at {url}  (admin: {url}admin/)  Ctrl-C stops it.\n", flush=True)
        honcho = [sys.executable, "-m", "honcho", "start", "-f", str(ROOT / "Procfile"), *processes]
        return run_forwarding_signals(honcho, env)


if __name__ == "__main__":
    sys.exit(main())
