"""`krec record`: record every message between a frontend and its kernel (capture/record.py).

Three modes: around a command (``-- CMD``, every kernel it starts), a kernel krec
starts (``--kernel NAME``) or one already running (``--existing KERNEL_CF``). The
upload and OpenTelemetry options here are shared with `krec install` and `krec wrap`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from krec.recorder.cli.audit import add_audit_options, audit_env
from krec.recorder.errors import KrecError

HELP = "record every message between a frontend and its kernel"
USAGE = "%(prog)s [-o OUT] (-- CMD [ARG...] | --kernel NAME | --existing KERNEL_CF) [options]"
EPILOG = """\
examples:
  krec record -- jupyter lab                  every kernel JupyterLab starts is recorded
  krec record -o logs -- jupyter nbconvert --to notebook --execute nb.ipynb
  krec record -o logs -- python -m pytest tests/
  krec record --kernel python3 --connection-file cf.json    then: jupyter console --existing cf.json
  krec record --existing kernel-1234.json -o s.krec         attach to a running kernel
  krec record --audit --seal-key /etc/krec/seal.key -- jupyter lab    no outputs kept, keyed seals
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="log directory with `-- CMD` (default ./krec-logs), "
        "else the log file (default ./NAME-<stamp>.krec)",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--kernel", metavar="NAME", help="start kernel NAME behind the proxy")
    mode.add_argument(
        "--existing",
        metavar="KERNEL_CF",
        help="attach to the running kernel of this connection file",
    )
    p.add_argument(
        "--connection-file",
        metavar="CF",
        help="where to write the connection file frontends attach to",
    )
    p.add_argument(
        "--ip",
        default="127.0.0.1",
        help="address frontends connect to (default 127.0.0.1; others warn)",
    )
    p.add_argument(
        "--encrypt",
        action="store_true",
        help="with --kernel: CurveZMQ-encrypt the frontend connection",
    )
    p.add_argument(
        "--record-passwords",
        action="store_true",
        help="store getpass() answers instead of redacting them",
    )
    add_segment_options(p)
    add_audit_options(p)
    add_otlp_options(p)
    p.add_argument("cmd", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def add_segment_options(p: argparse.ArgumentParser) -> None:
    """--segment-size and --segment-seconds: how a recording uploads to a bucket."""
    p.add_argument(
        "--segment-size",
        metavar="SIZE",
        help="with an s3://... (fsspec URL) destination: upload a segment every SIZE "
        "bytes (e.g. 64M, the default; env KREC_SEGMENT_SIZE)",
    )
    p.add_argument(
        "--segment-seconds",
        metavar="S",
        type=float,
        help="... and at least every S seconds (default 300; env KREC_SEGMENT_SECONDS)",
    )


def add_otlp_options(p: argparse.ArgumentParser) -> None:
    """--otlp and --otlp-content: export kernel activity live as OpenTelemetry traces."""
    p.add_argument(
        "--otlp",
        metavar="URL",
        help="also export kernel activity live as OpenTelemetry traces to this OTLP/HTTP "
        "collector (e.g. http://localhost:4318; needs krec[otel]; see docs/otel.md)",
    )
    p.add_argument(
        "--otlp-content",
        action="store_true",
        help="with --otlp: spans carry code, outputs and error values (default: types "
        "and sizes only)",
    )


def otlp_settings(args: argparse.Namespace) -> Any:
    """The OtlpSettings of --otlp and --otlp-content (None without --otlp)."""
    from krec.recorder.export.otlp import OtlpSettings

    return OtlpSettings.from_options(args.otlp, args.otlp_content)


def segment_env(args: argparse.Namespace) -> dict[str, str]:
    """The upload settings of the options, checked, as the environment wrappers read."""
    from krec.recorder.capture.upload import (
        SEGMENT_SECONDS_ENV,
        SEGMENT_SIZE_ENV,
        parse_size,
        segment_settings,
    )

    size = parse_size(args.segment_size) if args.segment_size else None
    segment_settings(size, args.segment_seconds)  # a bad value: one line, exit 2, now
    env = {}
    if size:
        env[SEGMENT_SIZE_ENV] = str(size)
    if args.segment_seconds:
        env[SEGMENT_SECONDS_ENV] = str(args.segment_seconds)
    return env


def run(args: argparse.Namespace) -> int:
    from krec.recorder.capture import record

    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    chosen = sum(bool(x) for x in (cmd, args.kernel, args.existing))
    if chosen != 1:
        raise KrecError("give exactly one of: -- CMD, --kernel NAME, --existing KERNEL_CF")
    if args.ip not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"krec: warning: listening on {args.ip}: anyone who can reach it and has the "
            "connection file can run code",
            file=sys.stderr,
        )
    segments = segment_env(args)
    otlp = otlp_settings(args)
    os.environ.update(segments)
    os.environ.update(audit_env(args))
    if cmd:
        return record.run_command(
            cmd,
            log_dir=args.output or "krec-logs",
            record_passwords=args.record_passwords,
            segment_env=segments,
            otlp=otlp,
        )
    if args.kernel:
        return record.run_owned(
            args.kernel,
            output=args.output,
            connection_file=args.connection_file,
            ip=args.ip,
            record_passwords=args.record_passwords,
            encryption=args.encrypt,
            otlp=otlp,
        )
    return record.run_existing(
        args.existing,
        output=args.output,
        connection_file=args.connection_file,
        ip=args.ip,
        record_passwords=args.record_passwords,
        otlp=otlp,
    )
