"""bench/stack.py `Stack.restart`: a process started again with its first command and env, changed by extra env
(the reporting scenario switches REPORTS_ROLLUPS in the processor and the worker this way, then restores them)."""

from __future__ import annotations

import sys

from bench import stack as stack_mod
from bench.scenarios import _batch_script
from bench.stack import Stack

PRINT_ENV = "import os, time; print('mode', os.environ.get('MODE', '-'), 'keep', os.environ.get('KEEP', '-')); "
PRINT_ENV += "print('up', flush=True); time.sleep(60)"


def test_restart_changes_the_env_keeps_the_first_and_restores_it(tmp_path, monkeypatch):
    monkeypatch.setattr(stack_mod, "LOG_DIR", tmp_path)
    stack = Stack(env={"PATH": "/usr/bin:/bin"}, database="sqlite", web_port=0, ws_port=0, sandbox_port=0,
                  web_workers=1, ws_workers=1)  # fmt: skip
    log = tmp_path / "p.log"
    try:
        first = stack.start("p", [sys.executable, "-u", "-c", PRINT_ENV], {"KEEP": "1"})
        stack.wait_log("p", "up", timeout=20)
        assert "mode - keep 1" in log.read_text()

        stack.restart("p", {"MODE": "off"}, ready="up")
        assert first.poll() is not None  # the first process was stopped
        second = stack.processes["p"]
        assert second.pid != first.pid and second.poll() is None
        assert "mode off keep 1" in log.read_text()

        stack.restart("p", {}, ready="up")
        assert second.poll() is not None
        assert "mode - keep 1" in log.read_text()
        assert len(stack.processes) == 1
    finally:
        stack.stop_all()
    assert all(process.poll() is not None for process in (first, second))


def test_batch_script_users_of_their_own():
    class Fx:
        secret = "s"

    lua = _batch_script(Fx(), per=100, users=2000, prefix="rs0", user_prefix="rs-off").render()
    assert 'U = "rs-off-u" .. (counter % 2000)' in lua
    assert 'M = "rs0-" .. counter' in lua
    assert 'U = "b-u" .. (counter % 2000)' in _batch_script(Fx(), per=100, users=2000).render()
