"""A kernelspec whose kernel is `krec serve LOG`: frontends start serve as a kernel.

``serve_spec`` is the kernel.json (argv, a display name "... (served from LOG)",
message-mode interrupts, since a signal would stop serve); ``install_serve_spec``
installs it with jupyter_client's KernelSpecManager.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from typing import Any

from krec.recorder.errors import KernelSpecError


def spec_name(log_path: str) -> str:
    """``krec-serve-STEM``, lower-cased to the characters kernelspec names allow."""
    stem = os.path.splitext(os.path.basename(log_path))[0]
    return "krec-serve-" + (re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-.") or "log")


def check_spec_name(name: str) -> None:
    """A KernelSpecError unless ``name`` is a valid kernelspec name."""
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise KernelSpecError(f"{name!r} is not a kernelspec name (letters, digits, . _ -)")


def serve_spec(log_path: str, *, speed: str, strictness: str, log_dir: str) -> dict[str, Any]:
    """The kernel.json of a kernelspec whose kernel is `krec serve LOG`."""
    from krec.recorder.log.reader import LogReader

    log_path = os.path.abspath(log_path)
    with LogReader(log_path, index=False) as reader:
        kernel = dict(reader.header.get("kernel") or {})
    argv = [sys.executable, "-m", "krec.recorder", "serve", log_path, "-f", "{connection_file}"]
    argv += ["--speed", speed]
    if strictness != "normal":
        argv.append(f"--{strictness}")
    argv += ["--log-dir", os.path.abspath(os.path.expanduser(log_dir))]
    display = str(kernel.get("display_name") or kernel.get("name") or "Kernel")
    display = re.sub(r"\s*\([^()]*\)\s*$", "", display) or display  # "Python 3 (ipykernel)"
    return {
        "argv": argv,
        "display_name": f"{display} (served from {os.path.basename(log_path)})",
        "language": str(kernel.get("language") or ""),
        "interrupt_mode": "message",  # a signal would stop serve; interrupt_request does not
        "metadata": {"krec_serve": log_path},
    }


def install_serve_spec(name: str, spec: dict[str, Any], prefix: str | None = None) -> str:
    """Install ``spec`` as kernelspec ``name`` (for this user unless ``prefix``); return
    the folder it went to."""
    from jupyter_client.kernelspec import KernelSpecManager

    check_spec_name(name)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, name)
        os.makedirs(src)
        with open(os.path.join(src, "kernel.json"), "w", encoding="utf-8") as f:
            json.dump(spec, f, indent=1)
        try:
            return str(
                KernelSpecManager().install_kernel_spec(
                    src, name, user=prefix is None, prefix=prefix, replace=True
                )
            )
        except OSError as e:
            raise KernelSpecError(f"cannot install {name}: {e.strerror or e}") from None
