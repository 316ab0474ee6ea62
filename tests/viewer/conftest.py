"""Viewer fixtures: the fixed sample session (tests/logfactory.py) in a fresh file."""

from __future__ import annotations

from pathlib import Path

import pytest
from logfactory import write_sample_session


@pytest.fixture
def sample_log(tmp_path: Path) -> Path:
    """The fixed sample session, in a fresh file named session.krec."""
    path = tmp_path / "session.krec"
    write_sample_session(path)
    return path
