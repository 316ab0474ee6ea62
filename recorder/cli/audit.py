"""The `--audit` and `--seal-key` options of `krec record` and `krec install`.

Both become environment variables (``KREC_AUDIT``, ``KREC_SEAL_KEY``) that every log
writer of the recording process and of the wrapper kernels it starts reads; `krec
install` writes them into the wrapper kernelspec's env, or the provisioner's config.
"""

from __future__ import annotations

import argparse
import os

from krec.recorder.errors import KrecError
from krec.recorder.log.audit import AUDIT_ENV
from krec.recorder.log.seal import KEY_ENV, load_key


def add_audit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--audit",
        action="store_true",
        help="audit log: envelopes, code, statuses and events; no outputs (docs/audit.md)",
    )
    p.add_argument(
        "--seal-key",
        metavar="FILE",
        help="seal the hash chain with HMAC-SHA-256 keyed by FILE's bytes (>= 16)",
    )


def audit_env(args: argparse.Namespace) -> dict[str, str]:
    """The options as the environment log writers read; a bad key file: exit 2, now."""
    env = {}
    if args.audit and getattr(args, "otlp_content", False):
        raise KrecError("--otlp-content cannot be used with --audit (an audit keeps no outputs)")
    if args.audit:
        env[AUDIT_ENV] = "1"
    if args.seal_key:
        path = os.path.abspath(os.path.expanduser(args.seal_key))
        load_key(path)
        env[KEY_ENV] = path
    return env
