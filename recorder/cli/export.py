"""`krec export`: a log as JSON lines of decoded messages, a rebuilt notebook, or a pytest test.

``--to jsonl`` writes one decoded record per line (the same objects as
``krec show --json``, see export/jsonl.py); ``--to ipynb`` rebuilds the session's
notebook (see export/notebook.py) and checks it with nbformat's validator before
writing it. ``--redact PATTERN`` replaces every match of a regular expression in the
exported strings with a marker (export/jsonl.py), so a log can be shared without its
secrets. ``--to pytest`` writes a regression test that replays the log (see
export/pytest.py). ``--to otlp`` writes the session's spans as OTLP JSON, the same
spans ``--otlp`` exports live (see export/spans.py, export/otlp.py, capture/traces.py
and docs/otel.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any

from krec.recorder.cli.util import Progress
from krec.recorder.errors import KrecError
from krec.recorder.export.jsonl import REDACTED, jsonl_lines, redactor

if TYPE_CHECKING:
    from krec.recorder.filter import Filter
    from krec.recorder.log.reader import LogReader
    from krec.recorder.log.record import Record

HELP = "export a log as JSON lines, a notebook or a regression test"
READS_LOGS = True
EPILOG = """\
examples:
  krec export session.krec --to ipynb -o session.ipynb      the notebook of the session
  krec export session.krec --to jsonl -f 'ch:iopub' | jq -c .content
  krec export session.krec -o share.jsonl --redact 'sk-[A-Za-z0-9]+' --redact '/home/\\w+'
  krec export session.krec --to ipynb -f 't>10m' -o late.ipynb   cells run after 10 minutes
  krec export session.krec --to pytest -o test_session.py   a regression test replaying it
  krec export session.krec --to otlp -o spans.json          OpenTelemetry spans, OTLP JSON

With --to ipynb the filter selects cells (execute_requests); their outputs follow them.
With --to otlp it selects requests: one span each; --redact applies to span attributes.
Without --to, the format is taken from the -o file name (.ipynb, .jsonl or .py).
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("log", metavar="LOG", help="a .krec log")
    p.add_argument("--to", choices=("jsonl", "ipynb", "pytest", "otlp"), help="output format")
    p.add_argument("-f", "--filter", default="", metavar="FILTER", help="only matching records")
    p.add_argument("-o", "--output", metavar="OUT", help="output file (default: stdout)")
    p.add_argument(
        "--redact",
        action="append",
        default=[],
        metavar="PATTERN",
        help=f"replace matches of this regex with {REDACTED} (repeatable)",
    )
    p.add_argument(
        "--otlp-content",
        action="store_true",
        help="with --to otlp: spans carry code, outputs and error values (never for an audit log)",
    )


def _format(args: argparse.Namespace) -> str:
    if args.to:
        return str(args.to)
    suffix = os.path.splitext(args.output or "")[1].lower()
    if suffix in (".ipynb", ".jsonl"):
        return suffix[1:]
    if suffix == ".py":
        return "pytest"
    raise KrecError("give the output format: --to jsonl or --to ipynb (or --to pytest: a test)")


def run(args: argparse.Namespace) -> int:
    from krec.recorder.filter import compile_filter
    from krec.recorder.log.reader import LogReader

    fmt = _format(args)
    if getattr(args, "otlp_content", False) and fmt != "otlp":
        raise KrecError("--otlp-content needs --to otlp")
    if fmt == "otlp":
        from krec.recorder.export.otlp import require_sdk

        require_sdk()
    if fmt == "pytest":
        from krec.recorder.export.pytest import export_pytest

        return export_pytest(args)
    redact = redactor(args.redact)
    flt = compile_filter(args.filter)
    with LogReader(args.log, index=False) as reader, _output(args.output) as out:
        with Progress("indexing") as progress:
            while reader.index_more(100_000):
                progress.update(len(reader))
        if fmt == "jsonl":
            with Progress("exporting", len(reader)) as progress:
                out.writelines(jsonl_lines(reader, flt, redact, progress.update))
        elif fmt == "otlp":
            out.write(_otlp(reader, flt, redact, args.otlp_content))
        else:
            out.write(_ipynb(reader, flt, redact))
        out.flush()
        for warning in reader.warnings:
            print(f"krec: warning: {reader.path}: {warning}", file=sys.stderr)
    return 0


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[IO[str]]:
    """The output stream, opened before any work so a bad path fails at once."""
    if path is None or path == "-":
        yield sys.stdout
        return
    try:
        out = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as e:
        raise KrecError(f"cannot write {path}: {e.strerror}") from None
    with out:
        yield out


def _ipynb(reader: LogReader, flt: Filter, redact: Callable[[Any], Any]) -> str:
    import nbformat

    from krec.recorder.export.notebook import NotebookBuilder

    selected: set[int] | None = None
    if not flt.matches_all:
        with Progress("filtering") as progress:
            selected = set(flt.scan(reader, progress=progress.update))
    builder = NotebookBuilder(reader.header)
    total = len(reader)
    with Progress("rebuilding the notebook", total) as progress:
        for record in reader.records():
            builder.feed(record, wanted=selected is None or record.index in selected)
            if record.index % 4096 == 0:
                progress.update(record.index, total)
    nb = nbformat.from_dict(redact(builder.notebook()))
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as e:  # a bug in krec, not in the user's input
        raise RuntimeError(f"the rebuilt notebook is not valid: {e.message}") from e
    return nbformat.writes(nb) + "\n"


def _otlp(reader: LogReader, flt: Filter, redact: Callable[[Any], Any], content: bool) -> str:
    from krec.recorder.export.otlp import otlp_json, spans_of_log

    selected: set[int] | None = None
    if not flt.matches_all:
        with Progress("filtering") as progress:
            selected = set(flt.scan(reader, progress=progress.update))
    total = len(reader)

    def records() -> Iterator[Record]:
        with Progress("building spans", total) as progress:
            for record in reader.records():
                if record.index % 4096 == 0:
                    progress.update(record.index, total)
                yield record

    spans = spans_of_log(records(), reader.header, include_content=content)
    if selected is not None:
        spans = [s for s in spans if s.request_index in selected]
    for span in spans:
        span.attributes = redact(span.attributes)
        span.events = [(name, t, redact(attrs)) for name, t, attrs in span.events]
    return json.dumps(otlp_json(spans, reader.header), ensure_ascii=False) + "\n"
