"""cli/__init__.py: every command is a module with one shape, imported only when run."""

from __future__ import annotations

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


def test_only_the_command_being_run_is_imported() -> None:
    code = (
        "import sys\n"
        "from krec.recorder.cli import build_parser\n"
        "build_parser('show')\n"
        "print(sorted(m for m in sys.modules if m.startswith('krec.recorder.cli.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "['krec.recorder.cli.show', 'krec.recorder.cli.util']"


def test_the_internal_command_is_not_listed() -> None:
    text = build_parser().format_help()
    assert "wrap" not in text
    for name in COMMANDS:
        if name != "wrap":
            assert f"    {name}" in text


def test_the_library_never_imports_the_cli() -> None:
    code = (
        "import sys\n"
        "import krec.recorder.capture.record, krec.recorder.capture.wrapper\n"
        "import krec.recorder.log.stats, krec.recorder.export.jsonl\n"
        "import krec.recorder.serve.install, krec.recorder.serve.restart\n"
        "print([m for m in sys.modules if m.startswith('krec.recorder.cli')])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
