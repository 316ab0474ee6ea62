"""Recordings as regression tests: ``krec export LOG --to pytest -o test_session.py``.

The exported module is small enough to read and edit: it replays the log
(``krec.recorder.replay.replayer.replay``) against a fresh kernel and fails with the
divergence report when the kernel behaves differently. It finds the log through
a path relative to itself, so the test and the log can be committed together.
"""

from __future__ import annotations

import argparse
import json
import os
import re

from krec.recorder.errors import KrecError

TEMPLATE = '''\
"""Regression test: replay {log_name} against a fresh kernel.

Written by `krec export LOG --to pytest`. The test fails with krec's divergence report
when a request's outputs or reply differ from the recording; the replay's own log is
kept in the test's tmp_path. If the change is intended, record the session again and
export it again.
"""

from pathlib import Path

import pytest

from krec.recorder.replay.replayer import replay

LOG = Path(__file__).parent / {relative}
# None replays against the recorded kernel ({kernel!s}); or name another kernelspec
KERNEL = None
# seconds one request may take before it counts as hung
TIMEOUT = 60.0
# also normalized away before comparing: content keys or "re:PATTERN" (krec replay --ignore)
IGNORE: list[str] = []


def test_{test_name}(tmp_path: Path) -> None:
    result = replay(
        str(LOG),
        kernel_name=KERNEL,
        output=str(tmp_path / "replay.krec"),
        timeout=TIMEOUT,
        ignore=IGNORE,
    )
    if result.report.diverged:
        message = f"{{LOG.name}} replayed differently (replay log: {{result.log}})"
        pytest.fail(f"{{message}}\\n\\n{{result.report.render()}}", pytrace=False)
'''


def pytest_module(log_path: str, test_path: str) -> str:
    """The source of a pytest module at ``test_path`` that replays ``log_path``."""
    from krec.recorder.log.reader import LogReader

    with LogReader(log_path, index=False) as reader:  # a bad log is an error here, not later
        kernel = str((reader.header.get("kernel") or {}).get("name") or "unknown")
    test_dir = os.path.dirname(os.path.abspath(test_path))
    relative = os.path.relpath(os.path.abspath(log_path), test_dir).replace(os.sep, "/")
    stem = os.path.splitext(os.path.basename(log_path))[0]
    name = re.sub(r"\W+", "_", stem, flags=re.ASCII).strip("_").lower() or "session"
    return TEMPLATE.format(
        log_name=os.path.basename(log_path),
        relative=json.dumps(relative),
        kernel=kernel,
        test_name=f"replay_{name}",
    )


def export_pytest(args: argparse.Namespace) -> int:
    """``krec export LOG --to pytest -o FILE`` (called by export.py)."""
    if not args.output or args.output == "-":
        raise KrecError("--to pytest needs -o FILE: the test finds the log relative to itself")
    if args.filter or args.redact:
        raise KrecError("--to pytest replays the whole log; -f and --redact do not apply")
    source = pytest_module(args.log, args.output)
    try:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(source)
    except OSError as e:
        raise KrecError(f"cannot write {args.output}: {e.strerror}") from None
    return 0
