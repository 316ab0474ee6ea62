"""The `krec` command line: argument parsing and dispatch; each command lives in its module.

Every command has ``--help`` with examples. A user mistake (missing file, corrupt
log, bad filter, unknown kernel) is one line on stderr and exit status 2: every
KrecError is turned into that here, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from krec.recorder import __version__
from krec.recorder.cli.audit import add_audit_options, audit_env
from krec.recorder.cli.util import Parser, add_command, formatter
from krec.recorder.errors import KrecError

EPILOG_RECORD = """\
examples:
  krec record -- jupyter lab                  every kernel JupyterLab starts is recorded
  krec record -o logs -- jupyter nbconvert --to notebook --execute nb.ipynb
  krec record -o logs -- python -m pytest tests/
  krec record --kernel python3 --connection-file cf.json    then: jupyter console --existing cf.json
  krec record --existing kernel-1234.json -o s.krec         attach to a running kernel
  krec record --audit --seal-key /etc/krec/seal.key -- jupyter lab    no outputs kept, keyed seals
"""


_Parser = Parser
_formatter = formatter
_sub = add_command


def _add_record(sub: Any) -> None:
    p = _sub(
        sub,
        "record",
        "record every message between a frontend and its kernel",
        EPILOG_RECORD,
        usage="%(prog)s [-o OUT] (-- CMD [ARG...] | --kernel NAME | "
        "--existing KERNEL_CF) [options]",
    )
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
    _add_segment_options(p)
    add_audit_options(p)
    _add_otlp_options(p)
    p.add_argument("cmd", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(func=_record)


def _add_segment_options(p: argparse.ArgumentParser) -> None:
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


def _add_otlp_options(p: argparse.ArgumentParser) -> None:
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


def _otlp(args: argparse.Namespace) -> Any:
    from krec.recorder.export.otlp import OtlpSettings

    return OtlpSettings.from_options(args.otlp, args.otlp_content)


def _segment_env(args: argparse.Namespace) -> dict[str, str]:
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


def _record(args: argparse.Namespace) -> int:
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
    segment_env = _segment_env(args)
    otlp = _otlp(args)
    os.environ.update(segment_env)
    os.environ.update(audit_env(args))
    if cmd:
        return record.run_command(
            cmd,
            log_dir=args.output or "krec-logs",
            record_passwords=args.record_passwords,
            segment_env=segment_env,
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


def _add_install(sub: Any) -> None:
    p = _sub(
        sub,
        "install",
        "install recorded variants of kernelspecs (NAME-krec)",
        """\
examples:
  krec install --user                 python3-krec, "Python 3 (recorded)", for every kernel
  krec install --user python3 --log-dir ~/krec-logs
  krec install --sys-prefix python3
  krec install --user --provisioner python3 --log-dir s3://bucket/krec
                                      python3-krec through krec-provisioner, logs to a bucket
  krec install --user --audit --seal-key ~/.krec/seal.key python3
""",
    )
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
    _add_segment_options(p)
    add_audit_options(p)
    _add_otlp_options(p)
    p.add_argument("names", nargs="*", metavar="NAME", help="kernelspecs to wrap (default: all)")
    p.set_defaults(func=_install)


def _install(args: argparse.Namespace) -> int:
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
    segment_env = {**_segment_env(args), **audit_env(args)}
    otlp = _otlp(args)
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
                segment_env=segment_env,
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
                env=segment_env,
                extra_args=otlp.wrapper_args() if otlp else (),
            )
        print(f"installed {wrapper} in {dest} (logs go to {redact_url(log_dir)})")
    return 0


def _add_wrap(sub: Any) -> None:
    p = sub.add_parser(
        "wrap",
        formatter_class=_formatter,
        description="(internal) the process a wrapper kernelspec starts",
    )
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
    p.set_defaults(func=_wrap)


def _wrap(args: argparse.Namespace) -> int:
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
        otlp=_otlp(args),
    )


#: the other commands -> the module whose ``add_arguments(sub)`` registers them (with
#: cliutil.add_command) and sets ``func``. Only the module of the command being run is
#: imported (all of them for `krec --help`), so keep their top-level imports light.
COMMANDS: dict[str, str] = {
    "show": "cli.show",
    "stats": "stats",
    "export": "cli.export",
    "view": "cli.view",
    "replay": "cli.replay",
    "diff": "cli.replay",
    "check": "cli.check",
    "serve": "cli.serve",
    "catalog": "cli.catalog",
    "query": "cli.catalog",
    "verify": "cli.verify",
}
_BUILT_IN = ("record", "install", "wrap")


#: the commands that read logs: each takes a URL (s3://..., a log in one object or in
#: segments) wherever it takes a path
_READERS = ("show", "stats", "export", "view", "replay", "diff", "check", "serve", "verify")


def _fetch_urls(args: argparse.Namespace) -> None:
    """Replace every log URL (or local folder of segments) in ``args`` by a local copy."""
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


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for every command, or (faster) only what running ``command`` needs."""
    parser = _Parser(
        prog="krec",
        description="Record, browse, check and replay Jupyter kernel sessions.",
        formatter_class=_formatter,
        epilog="""\
examples:
  krec record -- jupyter lab          record every kernel JupyterLab starts
  krec show krec-logs/*.krec          one line per message
  krec view session.krec              browse, filter, thread by request
  krec replay session.krec            re-run against a fresh kernel, report divergence

run `krec COMMAND --help` for the options and examples of each command.
""",
    )
    parser.add_argument("--version", action="version", version=f"krec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_record(sub)
    _add_install(sub)
    if command in _BUILT_IN:
        modules: list[str] = []
    elif command in COMMANDS:
        modules = [COMMANDS[command]]
    else:
        modules = list(dict.fromkeys(COMMANDS.values()))
    for module in modules:
        importlib.import_module(f"krec.recorder.{module}").add_arguments(sub)
    _add_wrap(sub)
    # hide the internal command from the list
    sub._choices_actions = [a for a in sub._choices_actions if a.dest != "wrap"]
    return parser


def main(argv: Sequence[str] | None = None) -> NoReturn:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv else None)
    if argv[:1] == ["wrap"]:
        # a frontend appends kernel arguments (nbclient: --HistoryManager.hist_file=:memory:)
        # to the wrapper's argv; they belong to the inner kernel
        args, extra = parser.parse_known_args(argv)
        args.extra_arguments = extra
    else:
        args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        sys.exit(2)
    try:
        if args.command in _READERS:
            _fetch_urls(args)
        code = func(args)
    except KrecError as e:
        print(f"krec: error: {e}", file=sys.stderr)
        code = 2
    except BrokenPipeError:
        # `krec show big.krec | head`: the reader went away; that is not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 0
    except KeyboardInterrupt:
        print("krec: interrupted", file=sys.stderr)
        code = 128 + signal.SIGINT
    sys.exit(code)
