"""cliutil.Progress: rich.progress on a terminal, nothing at all otherwise."""

from __future__ import annotations

import io

from krec.recorder.cli.util import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_silent_when_not_on_a_terminal():
    stream = io.StringIO()
    with Progress("reading", 100, stream=stream) as progress:
        for done in range(0, 101, 25):
            progress.update(done)
    assert stream.getvalue() == ""


def test_progress_draws_on_a_terminal_and_clears_its_line():
    stream = Terminal()
    with Progress("reading", 100, stream=stream) as progress:
        progress.update(40)
        progress.update(100)
    text = stream.getvalue()
    assert "reading" in text and "100/100" in text
    assert text.endswith("\x1b[2K")  # transient: the bar is erased when the step ends


def test_progress_without_a_total_and_never_updated():
    stream = Terminal()
    with Progress("indexing", stream=stream) as progress:
        progress.update(5000)
    assert "indexing" in stream.getvalue()
    untouched = Terminal()
    with Progress("idle", stream=untouched):
        pass
    assert untouched.getvalue() == ""
