"""`krec install`: recorded variants (NAME-krec) of installed kernelspecs.

Each variant starts `krec wrap` around the real kernel (kernelspec.py), or with
``--provisioner`` records through krec-provisioner (capture/provisioner.py); the
log destination, upload, audit and OpenTelemetry options are written into it.
"""

from __future__ import annotations

import argparse
import os
import sys

from krec.recorder.cli.audit import add_audit_options, audit_env
from krec.recorder.cli.record import (
    add_otlp_options,
    add_segment_options,
    otlp_settings,
    segment_env,
)
from krec.recorder.errors import KrecError

HELP = "install recorded variants of kernelspecs (NAME-krec)"
EPILOG = """\
examples:
  krec install --user                 python3-krec, "Python 3 (recorded)", for every kernel
  krec install --user python3 --log-dir ~/krec-logs
  krec install --sys-prefix python3
  krec install --user --provisioner python3 --log-dir s3://bucket/krec
                                      python3-krec through krec-provisioner, logs to a bucket
  krec install --user --audit --seal-key ~/.krec/seal.key python3
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="install for the current user")
    where.add_argument("--sys-prefix", action="store_true", help="install into sys.prefix")
    where.add_argument("--prefix", metavar="P", help="install into prefix P")
    p.add_argument(
        "--log-dir",
        metavar="DIR",
        default="krec-logs",
        help="where recorded kernels write their logs: a directory (default ./krec-logs, "
        "made absolute) or an fsspec URL (s3://bucket/prefix)",
    )
    p.add_argument(
        "--provisioner",
        action="store_true",
        help="specs that record through krec-provisioner (around the kernel's own "
        "provisioner) instead of the wrapper command",
    )
    p.add_argument(
        "--inner-provisioner",
        metavar="NAME",
        help="with --provisioner: the provisioner that launches the kernel (default: the "
        "one the kernelspec names, else local-provisioner)",
    )
    add_segment_options(p)
    add_audit_options(p)
    add_otlp_options(p)
    p.add_argument("names", nargs="*", metavar="NAME", help="kernelspecs to wrap (default: all)")


def run(args: argparse.Namespace) -> int:
    from krec.recorder.kernelspec import all_specs, install_wrapper, recorded_by_krec
    from krec.recorder.log.storage import is_url, redact_url

    if is_url(args.log_dir) and not args.log_dir.startswith("file://"):
        from krec.recorder.capture.upload import check_destination

        log_dir = args.log_dir
        check_destination(log_dir)
    else:
        log_dir = os.path.abspath(os.path.expanduser(args.log_dir.removeprefix("file://")))
    if args.inner_provisioner and not args.provisioner:
        raise KrecError("--inner-provisioner needs --provisioner")
    env = {**segment_env(args), **audit_env(args)}
    otlp = otlp_settings(args)
    names = args.names or sorted(
        n for n, e in all_specs().items() if not recorded_by_krec(e["spec"])
    )
    if not names:
        raise KrecError("no kernelspecs are installed")
    prefix = sys.prefix if args.sys_prefix else args.prefix
    for name in names:
        if args.provisioner:
            from krec.recorder.capture.provisioner import install_provisioner_spec

            wrapper, dest = install_provisioner_spec(
                name,
                log_dir,
                inner=args.inner_provisioner,
                segment_env=env,
                user=args.user,
                prefix=prefix,
                otlp=otlp,
            )
        else:
            wrapper, dest = install_wrapper(
                name,
                log_dir,
                user=args.user,
                prefix=prefix,
                env=env,
                extra_args=otlp.wrapper_args() if otlp else (),
            )
        print(f"installed {wrapper} in {dest} (logs go to {redact_url(log_dir)})")
    return 0
