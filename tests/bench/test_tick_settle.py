"""The live tick's preparation and watch (bench/scenarios.py `settle_database`, bench/tick_trace.py `PgWatch`):
the harness does the maintenance a burst left due before it measures ticks, and a tick run that overlaps a
checkpoint or a backlog says so."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from bench import tick_trace
from bench.scenarios import _AUTOVACUUM_DUE, describe_settle, settle_database
from inbox.models import WebhookEvent

pytestmark = [
    pytest.mark.django_db(transaction=True),  # VACUUM and CHECKPOINT cannot run inside a transaction block
    pytest.mark.skipif(connection.vendor != "postgresql", reason="autovacuum and checkpoints are PostgreSQL's"),
]


def _due() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(_AUTOVACUUM_DUE)
        return [name for (name,) in cursor.fetchall()]


def _bgwriter() -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT checkpoints_req, checkpoints_timed FROM pg_stat_bgwriter")
        return cursor.fetchone()


@pytest.fixture
def burst():
    """A table just filled with 5,000 rows, which autovacuum would vacuum (inserts) and analyze: due by the server's
    thresholds. Autovacuum itself is off for it, so only the harness can do that work within the test."""
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS settle_probe")
        cursor.execute("CREATE TABLE settle_probe (id int) WITH (autovacuum_enabled = false)")
        cursor.execute("INSERT INTO settle_probe SELECT generate_series(1, 5000)")
    deadline = time.monotonic() + 10  # a backend reports its table counters at most once a second
    while "settle_probe" not in _due():
        assert time.monotonic() < deadline, "the inserts never showed in pg_stat_user_tables"
        time.sleep(0.1)
    yield "settle_probe"
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS settle_probe")


def test_settle_vacuums_what_autovacuum_would_then_checkpoints(burst):
    checkpoints_before = sum(_bgwriter())
    settled = settle_database(timeout=30)

    assert burst in settled["tables due"]
    assert burst not in _due()  # vacuumed and analyzed: nothing left for autovacuum during the ticks
    with connection.cursor() as cursor:
        cursor.execute("SELECT last_vacuum, last_analyze FROM pg_stat_user_tables WHERE relname = %s", [burst])
        last_vacuum, last_analyze = cursor.fetchone()
    assert last_vacuum is not None and last_analyze is not None
    assert sum(_bgwriter()) > checkpoints_before  # our CHECKPOINT (or a neighbour's): at least one happened
    assert settled["processor backlog, s"] >= 0 and settled["roll-up mark batches left"] == 0
    assert "vacuumed" in describe_settle(settled) and burst in describe_settle(settled)


def test_settle_waits_for_the_processors_backlog():
    """A pending ledger row is the processor's backlog: settling waits for it (here it never goes, so the wait is
    bounded by the timeout and fails loudly rather than measuring ticks behind a backlog)."""
    WebhookEvent.objects.create(
        provider="infobip",
        connection_id=1,
        path_kind="inbound",
        received_at=timezone.now(),
        headers={},
        body="{}",
        result_count=1,
        verdict=WebhookEvent.Verdict.PENDING,
    )
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="left 1 requests pending"):
        settle_database(timeout=0.5)
    assert time.monotonic() - started >= 0.5


def test_watch_reports_a_checkpoint_during_the_run():
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    with tick_trace.PgWatch(every=0.005) as watch, psycopg.connect(**params, autocommit=True) as other:
        time.sleep(0.05)
        other.execute("CHECKPOINT")
        time.sleep(0.05)
    summary = watch.summary()

    assert summary["server_counters"]["checkpoints_req"] >= 1
    assert summary["backlog"]["ledger rows pending"]["max"] == 0
    assert summary["backlog"]["conversations marked for the drain"]["max"] == 0
    assert any(item["backend"] == "checkpointer" for item in summary["active"])
    assert 0 <= summary["checkpoint_share_of_samples"] <= 1
    assert "checkpoint under way" in tick_trace.describe("probe", {"legs": {}, "postgres": summary})


def test_ticks_split_by_the_maintenance_under_way():
    """A tick counts as "during a checkpoint" when any sample between its POST and its last frame saw one; the
    ticks outside stay in their own group (no database needed: synthetic times)."""
    timeline = [(t / 100, 0.50 <= t / 100 < 0.60, 0.80 <= t / 100 < 0.85) for t in range(0, 120)]
    points = {
        1: {"sent": 0.10, "answered": 0.11, "last": 0.14},  # nothing under way
        2: {"sent": 0.45, "answered": 0.47, "last": 0.52},  # the checkpoint starts before its last frame
        3: {"sent": 0.82, "answered": 0.83, "last": 0.90},  # autovacuum
        4: {"sent": 0.20, "answered": 0.21, "last": 0.27},  # nothing
    }
    split = tick_trace.by_maintenance(points, timeline)

    assert split["POST sent → last frame, ticks during: neither"]["n"] == 2
    assert split["POST sent → last frame, ticks during: checkpoint"] == {"p50": 70.0, "p95": 70.0, "n": 1}
    assert split["POST sent → POST answered, ticks during: autovacuum"]["n"] == 1
    assert split["POST sent → last frame, ticks during: autovacuum"]["p50"] == 80.0
    assert not any("checkpoint and autovacuum" in key for key in split)
