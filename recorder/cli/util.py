"""What every command shares: the parser class, log URLs fetched, progress on a terminal."""

from __future__ import annotations

import argparse
import os
import sys
from typing import IO, Any, NoReturn


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def fetch_log_urls(args: argparse.Namespace) -> None:
    """Replace every log URL (s3://..., a log in one object or in segments) or local
    folder of segments in ``args`` by a local copy, for a command with READS_LOGS."""
    from krec.recorder.log.storage import is_url, local_log

    def local(location: Any) -> Any:
        if isinstance(location, str) and (is_url(location) or os.path.isdir(location)):
            return local_log(location)
        return location

    for name in ("log", "log_a", "log_b"):
        if hasattr(args, name):
            setattr(args, name, local(getattr(args, name)))
    if isinstance(getattr(args, "logs", None), list):
        if hasattr(args, "catalog"):  # check, replay: a batch's tasks fetch their own logs
            from krec.recorder.cli.batch import is_batch

            if is_batch(args, args.logs):  # (a URL prefix is no log to fetch here)
                return
        args.logs = [local(p) for p in args.logs]


class Progress:
    """Progress of a long step on stderr, drawn by rich.progress when stderr is a
    terminal; silent otherwise (a pipe, a file, a test). ``update(done, total)`` may be
    called as often as wanted: rich redraws a few times a second. The display is
    removed when the step ends."""

    def __init__(
        self, label: str, total: int = 0, stream: IO[str] | None = None, enabled: bool | None = None
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.label = label
        self.total = total
        self._progress: Any = None
        self._task: Any = None

    def _start(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        console = Console(file=self.stream, force_terminal=True)
        self._progress = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            refresh_per_second=8,
            redirect_stdout=False,  # what a command prints stays on stdout, untouched
            redirect_stderr=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(self.label, total=self.total or None)

    def update(self, done: int, total: int | None = None) -> None:
        if not self.enabled:
            return
        if total is not None:
            self.total = total
        if self._progress is None:
            self._start()
        self._progress.update(self._task, completed=done, total=self.total or None)

    def done(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.done()
