"""What the in-process bench scripts (chart_times.py, refresh_cost.py) share: a CODE_DIR argument naming the
checkout whose code is measured (two checkouts alternated on the same data give a before / after), and Django set up
from that checkout."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def parser() -> argparse.ArgumentParser:
    """An argument parser with the optional CODE_DIR (default: this checkout)."""
    parsed = argparse.ArgumentParser()
    parsed.add_argument("code", nargs="?", default=str(Path(__file__).resolve().parent.parent))
    return parsed


def django_in(code: str) -> None:
    """Set Django up from the checkout at `code` (its packages first on the path, the test settings by default)."""
    sys.path.insert(0, code)
    os.chdir(code)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
