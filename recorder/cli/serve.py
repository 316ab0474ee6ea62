"""`krec serve`: the command line over serve/server.py, and ``--install`` (serve/install.py).

Like a kernel given ``-f CF``, serve uses the ports and key of CF when the file
exists (a kernel manager wrote it) and otherwise picks free ports and a new key
and writes CF (0600), removing it again on exit. Exit status: 0 when stopped
(Ctrl-C, SIGTERM, a shutdown_request), 1 when ``--strict`` stopped at a request
nothing matched, 2 on an error (unreadable log, port in use).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from typing import Any

from krec.recorder.errors import KrecError
from krec.recorder.serve.install import spec_name  # also imported from here by tests

HELP = "stand in for the kernel: answer a live frontend from a recording"
READS_LOGS = True
EPILOG = """\
examples:
  krec serve session.krec                       then: jupyter console --existing <printed file>
  krec serve session.krec -f cf.json --speed fast     answer at once, not at the recorded pace
  krec serve session.krec --strict              stop (exit 1) at the first unmatched request
  krec serve session.krec --loose               edited cells take the next recorded cell's answer
  krec serve session.krec --install             a JupyterLab kernel "... (served from session)"
  jupyter kernelspec remove krec-serve-session  remove it again

matching: a request is answered by a recorded request of the same type with the same
content (code; code and cursor for complete/inspect; ...), the next unused one first.
Default: line endings and trailing whitespace are ignored. --strict: exact bytes, and
the first request nothing matches stops serve. --loose: all whitespace is ignored, and
a request nothing matches takes the next unused recorded request of its type.
A request nothing matches gets an error reply (ename KrecNoRecording) naming the
nearest recorded request. See docs/serve.md.

exit status: 0 stopped (Ctrl-C, shutdown_request), 1 --strict met an unmatched
request, 2 error
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("log", metavar="LOG", help="the recording to serve")
    p.add_argument(
        "-f",
        "--connection-file",
        metavar="CF",
        help="connection file to use if it exists (as a kernel does), else to write "
        "(default: a new file in the Jupyter runtime directory)",
    )
    match = p.add_mutually_exclusive_group()
    match.add_argument(
        "--strict",
        dest="strictness",
        action="store_const",
        const="strict",
        help="exact content only; stop with exit 1 at the first unmatched request",
    )
    match.add_argument(
        "--loose",
        dest="strictness",
        action="store_const",
        const="loose",
        help="ignore all whitespace; fall back to the next unused request of the same type",
    )
    p.add_argument(
        "--speed",
        choices=("realtime", "fast"),
        default="realtime",
        help="realtime: at the recorded pace (default); fast: every answer at once",
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument("-o", "--output", metavar="NEWLOG", help="serve's own log of the session")
    out.add_argument(
        "--log-dir",
        metavar="DIR",
        default="krec-logs",
        help="directory for serve's own log, named LOG-serve-<stamp>.krec (default ./krec-logs)",
    )
    inst = p.add_argument_group("installing a kernelspec that serves LOG")
    inst.add_argument(
        "--install",
        action="store_true",
        help="write a kernelspec instead of serving (frontends start serve with it)",
    )
    inst.add_argument("--name", help="kernelspec name (default krec-serve-STEM)")
    where = inst.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="install for this user (default)")
    where.add_argument("--sys-prefix", action="store_true", help="install into sys.prefix")
    where.add_argument("--prefix", metavar="P", help="install into prefix P")
    p.set_defaults(strictness="normal")


def run(args: argparse.Namespace) -> int:
    from krec.recorder.log.reader import LogReader

    with LogReader(args.log) as reader:  # a bad log is one line and exit 2, before any socket
        for warning in reader.warnings:
            print(f"krec: warning: {args.log}: {warning}", file=sys.stderr)
    if args.install:
        return _install(args)
    return _serve(args)


def _say(text: str) -> None:
    print(f"krec: {text}", file=sys.stderr, flush=True)


def _serve(args: argparse.Namespace) -> int:
    from krec.recorder.connect import ConnectionInfo, default_connection_file, new_key
    from krec.recorder.serve.restart import load_serve_state, save_serve_state, serve_state_file
    from krec.recorder.serve.server import Server, default_output

    cf = args.connection_file
    resume, state_path = None, ""
    if cf and os.path.exists(cf):
        # a kernel manager wrote CF; after a restart it starts us again with the same one
        info, created = ConnectionInfo.load(cf), False
        state_path = serve_state_file(cf)
        resume = load_serve_state(state_path, args.log)
    else:
        cf = cf or default_connection_file("serve")
        info, created = ConnectionInfo(key=new_key()), True
    output = args.output or (resume or {}).get("output") or default_output(args.log, args.log_dir)
    server = Server(
        args.log,
        info,
        output,
        strictness=args.strictness,
        speed=args.speed,
        notify=_say,
        watch_parent=not created,
        resume=resume,
    )
    kernel = server.session.header.get("kernel") or {}
    info.kernel_name = info.kernel_name or str(kernel.get("name") or "")
    requests = len(server.session.exchanges)
    if not requests:
        _say(f"warning: {args.log} holds no requests; every request will be unmatched")

    def on_bound(bound: ConnectionInfo) -> None:
        if created:
            bound.write(cf)
        _say(f"serving {args.log} ({requests} recorded requests, {args.strictness} matching, "
             f"{args.speed})")  # fmt: skip
        _say(f"attach a frontend with: jupyter console --existing {cf}")
        _say(f"this session is logged to {output}")
        _say("stop with Ctrl-C")

    def stop(signum: int, frame: Any) -> None:
        server.reason = f"{signal.Signals(signum).name} received"
        server.stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    try:
        status = server.run(on_bound)
    finally:
        if created and server.ready.is_set():
            with contextlib.suppress(OSError):
                os.unlink(cf)
        if state_path:
            save_serve_state(state_path, args.log, output, server)
    _say(f"answered {server.answered} requests ({server.unmatched} unmatched); log: {output}")
    return status


def _install(args: argparse.Namespace) -> int:
    from krec.recorder.serve.install import check_spec_name, install_serve_spec, serve_spec

    name = args.name or spec_name(args.log)
    check_spec_name(name)
    if args.output:
        raise KrecError("--install writes a kernelspec: give --log-dir DIR, not -o")
    spec = serve_spec(args.log, speed=args.speed, strictness=args.strictness, log_dir=args.log_dir)
    prefix = sys.prefix if args.sys_prefix else args.prefix
    dest = install_serve_spec(name, spec, prefix)
    print(f"installed kernelspec {name} ({spec['display_name']!r}) in {dest}")
    print(f"start it with: jupyter console --kernel {name}, or pick it in JupyterLab")
    return 0
