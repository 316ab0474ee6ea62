"""How a replay launches its kernel: as the recorded one was, as far as the log says.

The extra arguments and working directory come from the log's header (or its first
``kernel_started`` event); ``replay_cwd`` chooses the directory the replay kernel
runs in and says why when it cannot be the recorded one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from krec.recorder.errors import KrecError
from krec.recorder.log.exchange import Session


@dataclass
class Launch:
    """How the recorded kernel was launched, as far as the log says."""

    extra_arguments: list[str]  # beyond the kernelspec's argv (nbclient's hist_file...)
    cwd: str | None  # the kernel's working directory (None: the log does not say)


def recorded_launch(session: Session) -> Launch:
    """The launch of the session's first kernel, from the header (or, for logs written
    before the header recorded it, from the first ``kernel_started`` event)."""
    kernel = session.header.get("kernel") or {}
    first = session.launches[0] if session.launches else {}
    extra = kernel.get("extra_arguments")
    if not isinstance(extra, list):
        spec_argv, argv = kernel.get("argv"), first.get("argv")
        extra = []
        if isinstance(spec_argv, list) and spec_argv and isinstance(argv, list):
            extra = argv[len(spec_argv) :]
    cwd = kernel.get("cwd") or first.get("cwd")
    return Launch([str(a) for a in extra], cwd if isinstance(cwd, str) else None)


def replay_cwd(launch: Launch, override: str | None) -> tuple[str, list[str]]:
    """The replay kernel's working directory, and what the report says about it."""
    here = os.getcwd()
    if override is not None:
        if not os.path.isdir(override):
            raise KrecError(f"--cwd {override}: no such directory")
        return os.path.abspath(override), []
    if launch.cwd is None:
        return here, [
            "the log does not record the kernel's working directory; "
            f"the kernel ran in the current one ({here})"
        ]
    if not os.path.isdir(launch.cwd):
        return here, [
            f"the recorded working directory {launch.cwd} does not exist here; "
            f"the kernel ran in the current one ({here}) (give --cwd DIR to choose)"
        ]
    return launch.cwd, []
