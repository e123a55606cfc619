"""Python's cyclic garbage collector paused for one batch of work (then as it was).

A batch's objects (decoded JSON, row tuples, dicts, events: tens of thousands, acyclic, freed by reference counting
when the batch ends) live long enough to be promoted to the oldest generation, and the collections they trigger walk
the whole process's heap: a quarter of the roll-up drain's client CPU, 35–80 µs of an inbound event's ~200
(bench/README.md: "Roll-up maintenance, seventh session"; "Set-based intake", eighth session)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """The cyclic collector off inside, on again after (even on an error); a collector already off (an embedding
    process's choice, or an enclosing pause) stays off. Process-wide: cyclic garbage any thread makes meanwhile
    waits for the next collection after it."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
