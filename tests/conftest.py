"""Shared test setup: the helper package on sys.path, and where the real Tiny VOC files are."""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "notebooks"))

SHARED = REPO.parent / "shared" / "tinyvoc"


@pytest.fixture(scope="session")
def shared_tinyvoc() -> Path:
    """The course's real files beside the repo; tests that need them skip (with the reason) when absent."""
    if not (SHARED / "test.json").exists():
        pytest.skip(f"real Tiny VOC files not found at {SHARED}")
    return SHARED
