"""Content pages of a provider (a TikTok account's posts and their figures): not conversations, but their
changes reach the staff watching the connection's inbox through the same door (domain events → live layer)."""

from __future__ import annotations

import time

from inbox import domain_events


def content_changed(*, inbox_id: int, subject: str, connection_id: int) -> None:
    """Announce (after the caller's commit) that a connection's `subject` ("videos") changed: open pages refetch
    it from REST. The version is the time in milliseconds, so a page can ignore a hint older than what it has."""
    domain_events.emit(
        domain_events.ContentChanged(
            inbox_id=inbox_id, subject=subject, connection_id=connection_id, version=time.time_ns() // 1_000_000
        )
    )
