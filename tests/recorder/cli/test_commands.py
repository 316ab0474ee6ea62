"""cli/__init__.py: every command is a module with one shape, imported only when run."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from krec.recorder.cli import COMMANDS, build_parser, command_module


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_module_has_the_one_shape(name: str) -> None:
    command = command_module(name)
    assert isinstance(command.HELP, str) and command.HELP
    assert "\n" not in command.HELP
    assert callable(command.add_arguments) and callable(command.run)


def _cli_modules_after(code: str) -> list[str]:
    """The krec.recorder.cli modules a fresh interpreter has imported after ``code``."""
    show = "import sys; print(sorted(m for m in sys.modules if m.startswith('krec.recorder.cli')))"
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{show}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return ast.literal_eval(done.stdout)


def test_only_the_command_being_run_is_imported() -> None:
    code = "from krec.recorder.cli import build_parser; build_parser('show')"
    assert _cli_modules_after(code) == [
        "krec.recorder.cli",
        "krec.recorder.cli.show",
        "krec.recorder.cli.util",
    ]


def test_the_internal_command_is_not_listed() -> None:
    text = build_parser().format_help()
    assert "wrap" not in text
    for name in COMMANDS:
        if name != "wrap":
            assert f"    {name}" in text


def test_the_library_never_imports_the_cli() -> None:
    code = (
        "import krec.recorder.capture.record, krec.recorder.capture.wrapper\n"
        "import krec.recorder.log.stats, krec.recorder.export.jsonl\n"
        "import krec.recorder.serve.install, krec.recorder.serve.restart"
    )
    assert _cli_modules_after(code) == []
