"""Helpers every command shares: registering a subcommand, and progress on a terminal."""

from __future__ import annotations

import argparse
import sys
import time
from typing import IO, Any, NoReturn


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def add_command(
    sub: Any, name: str, help_text: str, epilog: str = "", **kw: Any
) -> argparse.ArgumentParser:
    """Add subcommand ``name``; ``epilog`` holds its examples (shown by --help)."""
    return sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=epilog,
        formatter_class=formatter,
        **kw,
    )


class Progress:
    """A one-line progress display on stderr when it is a terminal; silent otherwise."""

    def __init__(
        self, label: str, total: int = 0, stream: IO[str] | None = None, enabled: bool | None = None
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.label = label
        self.total = total
        self._last = 0.0
        self._shown = False

    def update(self, done: int, total: int | None = None) -> None:
        if not self.enabled:
            return
        if total is not None:
            self.total = total
        now = time.monotonic()
        if now - self._last < 0.1 and done != self.total:
            return
        self._last = now
        if self.total:
            pct = 100 * done / self.total
            width = 30
            fill = int(width * done / self.total)
            bar = "#" * fill + "-" * (width - fill)
            text = f"\r{self.label} [{bar}] {done}/{self.total} ({pct:.0f}%)"
        else:
            text = f"\r{self.label} {done}"
        self.stream.write(text)
        self.stream.flush()
        self._shown = True

    def done(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.done()
