"""Where the tests find the repository and the shared data beside it (``../shared/data``, present in CI)."""
from __future__ import annotations

from pathlib import Path

__all__ = ["ROOT", "SHARED_DATA"]

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = ROOT.parent / "shared" / "data"
