"""`scripts/run.py` in pieces (all of `make run`: `tests/e2e/test_make_run.py`): the box, readiness, stopping."""

from __future__ import annotations

import os
import signal
import sys

import pytest
from django.core.management import call_command

from scripts import run


@pytest.mark.django_db
def test_the_box_shows_the_passwords_bootstrap_dev_created_and_how_to_reset_them(settings, capsys):
    settings.DEBUG = True
    call_command("bootstrap_dev")
    created = capsys.readouterr().out

    box = run.welcome("http://127.0.0.1:18800/", created, "demo-business")

    lines = box.strip().splitlines()
    assert lines[0].startswith("╔") and lines[-1].startswith("╚")
    assert len({len(line) for line in lines}) == 1, "every line of the frame is as wide"
    for user in ("admin", "agent"):
        password = next(line.split(" / ")[1].split()[0] for line in created.splitlines() if f"{user} / " in line)
        assert any(f"{user} / {password}" in line for line in lines)
    assert "manage.py changepassword admin" in box and "http://127.0.0.1:18800/admin/" in box
    assert "simulate_tiktok_user --sender demo-business" in box
    assert "Demo (TikTok direct)" not in box  # no TikTok sandbox given

    box = run.welcome("http://127.0.0.1:18800/", "", "demo-business", "http://127.0.0.1:18802")
    lines = box.strip().splitlines()
    assert len({len(line) for line in lines}) == 1, "every line of the frame is as wide"
    assert "inbox 'Demo (TikTok direct)'" in box
    assert "tiktok_sandbox_user --url http://127.0.0.1:18802" in box and "--account demo-tt-business" in box


def test_on_later_runs_the_box_has_no_passwords_but_says_how_to_reset_them():
    box = run.welcome("http://127.0.0.1:8000/", "", None)
    assert " / " not in box.replace("http://", "") and "changepassword" in box and "simulate_tiktok_user" not in box
    assert not run.created_users("")


def test_relay_passes_the_output_on_and_announces_once_every_process_is_ready(capfd):
    script = "echo 'web.1 | Uvicorn running on x'; echo 'other line'; echo 'worker.1 | celery@host ready.'"
    supervisor = run.Supervisor(["sh", "-c", script], dict(os.environ), ["web", "worker"])
    announced: list[str] = []

    supervisor.relay(lambda: announced.append(capfd.readouterr().out))  # what was passed on before the box

    assert supervisor.wait() == 1  # ended by itself with 0: not a stop we asked for, so not a clean stop
    (before_the_box,) = announced
    assert "Uvicorn running on x\nother line\nworker.1 | celery@host ready.\n" in before_the_box
    assert supervisor.ready.is_set()


def test_relay_does_not_announce_while_a_process_is_not_ready():
    supervisor = run.Supervisor(["sh", "-c", "echo 'Uvicorn running on x'"], dict(os.environ), ["web", "worker"])
    announced: list[bool] = []
    supervisor.relay(lambda: announced.append(True))
    supervisor.wait()
    assert announced == [] and not supervisor.ready.is_set()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_ends_the_process_manager_and_counts_as_a_clean_stop(signum):
    # Stands in for honcho: exits 130/143 on SIGINT/SIGTERM, as honcho does; SIGHUP must arrive as SIGTERM.
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGINT, lambda *a: sys.exit(130))\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    supervisor = run.Supervisor([sys.executable, "-c", code], dict(os.environ), [])
    assert os.read(supervisor.output, 100).startswith(b"ready")
    supervisor.stop(signum)
    assert supervisor.wait() == 0
    assert supervisor.process.returncode == (130 if signum == signal.SIGINT else 143)
    os.close(supervisor.output)
