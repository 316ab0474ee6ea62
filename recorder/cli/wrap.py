"""`krec wrap` (internal, not in `krec --help`): the process a wrapper kernelspec starts.

A frontend starts it as if it were the kernel (capture/wrapper.py does the work);
the arguments a frontend appends for the kernel (nbclient's
``--HistoryManager.hist_file=:memory:``) arrive as ``args.extra_arguments``.
"""

from __future__ import annotations

import argparse
import os

from krec.recorder.cli.audit import add_audit_options, audit_env
from krec.recorder.cli.record import otlp_settings

HELP = "(internal) the process a wrapper kernelspec starts"
HIDDEN = True


def add_arguments(p: argparse.ArgumentParser) -> None:
    spec = p.add_mutually_exclusive_group(required=True)
    spec.add_argument("--inner-spec", metavar="FILE")
    spec.add_argument("--kernel", metavar="NAME")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--log-dir", metavar="DIR")
    where.add_argument("--log", metavar="FILE", help="record to FILE (a restart appends to it)")
    p.add_argument("--shadow-dir")
    p.add_argument("--record-passwords", action="store_true")
    add_audit_options(p)
    p.add_argument("--otlp", metavar="URL")
    p.add_argument("--otlp-content", action="store_true")
    p.add_argument("-f", "--connection-file", required=True)


def run(args: argparse.Namespace) -> int:
    from krec.recorder.capture.wrapper import run_wrapper

    os.environ.update(audit_env(args))
    return run_wrapper(
        args.connection_file,
        log_dir=args.log_dir,
        log=args.log,
        inner_spec=args.inner_spec,
        kernel_name=args.kernel,
        shadow_dir=args.shadow_dir,
        record_passwords=args.record_passwords,
        extra_arguments=args.extra_arguments,
        otlp=otlp_settings(args),
    )
