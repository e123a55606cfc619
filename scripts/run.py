"""`make run`: migrate, then start the whole product under honcho (web, worker, beat).

Uses DATABASE_URL / REDIS_URL when set; otherwise the SQLite file and an embedded Redis.
Ctrl-C (or SIGTERM) stops every process, then the embedded Redis.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.embedded import ROOT, run_forwarding_signals, services_env  # noqa: E402


def main() -> int:
    (ROOT / ".run").mkdir(exist_ok=True)
    with services_env() as env:
        env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
        env.setdefault("PORT", "8000")
        env.setdefault("HOST", "127.0.0.1")
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "--noinput"], env=env, cwd=ROOT, check=True)
        subprocess.run([*manage, "bootstrap_dev"], env=env, cwd=ROOT, check=True)
        url = f"http://{env['HOST']}:{env['PORT']}/"
        print(f"\n  TikTok Inbox is starting at {url}  (admin: {url}admin/)  Ctrl-C stops it.\n", flush=True)
        return run_forwarding_signals([sys.executable, "-m", "honcho", "start", "-f", str(ROOT / "Procfile")], env)


if __name__ == "__main__":
    sys.exit(main())
