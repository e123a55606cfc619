"""Fixtures of every sandbox's tests (helpers in sandbox_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.tiktok_channel.sandbox_helpers import Receiver, receiving


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on loopback (records every POST, answers the next queued status, else 200)."""
    with receiving() as state:
        yield state
