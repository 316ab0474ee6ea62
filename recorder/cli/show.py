"""`krec show`: print the records of a log, one aligned line each, or as JSON lines.

Lines are coloured by channel on a terminal and plain when piped; records are
indexed and printed in chunks, so the first line appears at once on any size of
log and ``krec show big.krec | head`` stops early (cli/__init__.py turns the broken pipe
into a clean exit). ``--follow`` keeps printing records as a recording appends
them.
"""

from __future__ import annotations

import argparse
import array
import contextlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any

from krec.recorder.errors import KrecError

if TYPE_CHECKING:
    from krec.recorder.filter import Filter
    from krec.recorder.log.reader import LogReader
    from krec.recorder.log.record import Record

HELP = "print a log's records, one line each, or as JSON lines"
READS_LOGS = True
EXAMPLES = """\
examples:
  krec show session.krec                      every record, one line each
  krec show session.krec | head               the first records (stops early)
  krec show session.krec -f 'type:execute_request'
  krec show session.krec -f 'status:error or stderr' --since 5m
  krec show session.krec -f 'parent:753a_7'   a request's reply, outputs and status
  krec show session.krec --json | jq .content one decoded message per line
  krec show -F krec-logs/python3-*.krec       follow a recording as it is written
"""

_COLOURS = {"shell": "34", "control": "35", "stdin": "33", "iopub": "32", "event": "36"}
_TONES = {"error": "31", "warning": "33"}
_FIRST_CHUNK = 2_000
_CHUNK = 50_000


def add_arguments(p: argparse.ArgumentParser) -> None:
    from krec.recorder.filter import filter_help

    # the epilog is built here: the filter language's help is imported only when needed
    p.epilog = EXAMPLES + "\n" + filter_help()
    p.add_argument(
        "logs", nargs="+", metavar="LOG", help="a .krec log (several: one after another)"
    )
    p.add_argument("-f", "--filter", default="", metavar="FILTER", help="only matching records")
    p.add_argument("--json", action="store_true", help="JSON lines of the decoded records")
    p.add_argument("--limit", type=_count, metavar="N", help="stop after N records")
    p.add_argument(
        "--since", metavar="T", help="only records T or more after the start (5s, 2m, 1h)"
    )
    p.add_argument(
        "-F", "--follow", action="store_true", help="keep printing records as they are appended"
    )
    p.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the lines (default: on a terminal, unless NO_COLOR is set)",
    )


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return n


def build_filter(text: str, since: str | None) -> Filter:
    """The filter of ``-f`` and ``--since`` together; bad input is a KrecError."""
    from krec.recorder.filter import And, Filter, compile_filter, parse_duration
    from krec.recorder.filter.operators import Time

    flt = compile_filter(text)
    if since is None:
        return flt
    try:
        ns = parse_duration(since)
    except ValueError as e:
        raise KrecError(f"--since: {e}") from None
    since_node = Time(">=", ns)
    tree = since_node if flt.matches_all else And(flt.tree, since_node)
    return Filter(tree, text)


class LineFormat:
    """Formats records as aligned lines, optionally with ANSI colours."""

    def __init__(self, start_ns: int, colour: bool, width: int | None) -> None:
        self.start_ns = start_ns
        self.colour = colour
        self.width = width
        utf8 = (getattr(sys.stdout, "encoding", "") or "").lower().replace("-", "") == "utf8"
        self.arrows = (
            {"client": "→", "kernel": "←", "krec": "◆"}
            if utf8
            else {
                "client": ">",
                "kernel": "<",
                "krec": "*",
            }
        )

    def line(self, record: Record) -> str:
        from krec.recorder.log.oneline import short_id, summarize, tone

        rel = (record.t - self.start_ns) / 1e9
        if record.is_event:
            ch, arrow, kind, mid, parent = "event", "*", record.event or "?", "", ""
        else:
            ch = record.ch
            arrow = self.arrows.get(record.source, "?")
            kind = record.msg_type or "?"
            mid = short_id(record.msg_id)
            parent_id = record.parent_id
            parent = short_id(parent_id) if parent_id else "-"
        summary = summarize(record)
        if not summary.isprintable():
            summary = "".join(c if c.isprintable() else "�" for c in summary)
        head = f"{rel:10.3f}  {ch:<7} {arrow} {kind:<22} {mid:<10} {parent:<10} "
        if self.width is not None:
            summary = summary[: max(0, self.width - len(head))]
        if not self.colour:
            return head + summary
        c = _COLOURS.get(ch, "0")
        t = _TONES.get(tone(record))
        body = f"\033[{t}m{summary}\033[0m" if t else summary
        return (
            f"\033[2m{rel:10.3f}\033[0m  \033[{c}m{ch:<7} {arrow} {kind:<22}\033[0m "
            f"\033[2m{mid:<10} {parent:<10}\033[0m {body}"
        )


def _use_colour(choice: str, stream: IO[str]) -> bool:
    if choice != "auto":
        return choice == "always"
    return stream.isatty() and not os.environ.get("NO_COLOR")


def run(args: argparse.Namespace) -> int:
    from krec.recorder.log.reader import LogReader

    flt = build_filter(args.filter, args.since)
    out = sys.stdout
    colour = _use_colour(args.color, out)
    width = shutil.get_terminal_size().columns if out.isatty() else None
    readers = [LogReader(path, index=False) for path in args.logs]  # every error before output
    left = args.limit
    try:
        for n, reader in enumerate(readers):
            if len(readers) > 1 and not args.json:
                out.write(f"{'' if n == 0 else chr(10)}==> {reader.path} <==\n")
            fmt = LineFormat(reader.start_ns, colour, width)
            left = _print_log(reader, flt, fmt, args, out, left)
            _warn(reader, reader.warnings, following=args.follow)
            if left == 0:
                break
        if args.follow and left != 0:
            _follow(readers, flt, colour, width, args, out, left)
        out.flush()
    finally:
        for reader in readers:
            reader.close()
    return 0


def _print_log(
    reader: LogReader,
    flt: Filter,
    fmt: LineFormat,
    args: argparse.Namespace,
    out: IO[str],
    left: int | None,
) -> int | None:
    """Print the records not printed yet; return how many more may be printed."""
    chunk = _FIRST_CHUNK
    while True:
        done = len(reader)
        more = reader.index_more(chunk)
        chunk = _CHUNK
        left = _print_range(reader, flt, fmt, args.json, out, done, len(reader), left)
        if left == 0 or not more:
            return left
        if left is None and _worth_a_helper(reader):
            # a big rest: index it, and let a helper process format its second half
            # while this one prints the first
            done = len(reader)
            while reader.index_more():
                pass
            _print_halves(reader, flt, fmt, args.json, out, done, len(reader))
            return left


def _worth_a_helper(reader: LogReader) -> bool:
    from krec.recorder.log.reader import helper_pays_off

    return reader.upgrade_record is None and helper_pays_off(reader.unindexed_bytes())


def _print_halves(
    reader: LogReader, flt: Filter, fmt: LineFormat, as_json: bool, out: IO[str], lo: int, hi: int
) -> None:
    mid = lo + (hi - lo) // 2
    helper = _ShowHelper.start(reader, flt, fmt, as_json, mid, hi)
    try:
        for i in range(lo, mid, _CHUNK):
            _print_range(reader, flt, fmt, as_json, out, i, min(i + _CHUNK, mid), None)
        if helper is None or not helper.copy_to(out):
            for i in range(mid, hi, _CHUNK):
                _print_range(reader, flt, fmt, as_json, out, i, min(i + _CHUNK, hi), None)
    finally:
        if helper is not None:
            helper.stop()


def _print_range(
    reader: LogReader,
    flt: Filter,
    fmt: LineFormat,
    as_json: bool,
    out: IO[str],
    start: int,
    stop: int,
    left: int | None,
) -> int | None:
    if start >= stop or left == 0:
        return left
    if flt.matches_all:
        records = reader.records(start, stop)
    else:
        records = _matching(reader, flt.scan(reader, start, stop), reader.decode)
    return _write_lines(records, fmt, as_json, reader.start_ns, out, left)


def _write_lines(
    records: Iterable[Record],
    fmt: LineFormat,
    as_json: bool,
    start_ns: int,
    out: IO[str],
    left: int | None = None,
) -> int | None:
    """Print each record as a line (or JSON), 512 lines per write; stop after ``left``."""
    lines: list[str] = []
    for record in records:
        if as_json:
            lines.append(json.dumps(record.to_json(start_ns), ensure_ascii=False))
        else:
            lines.append(fmt.line(record))
        if left is not None:
            left -= 1
            if left == 0:
                break
        if len(lines) >= 512:
            out.write("\n".join(lines) + "\n")
            lines.clear()
    if lines:
        out.write("\n".join(lines) + "\n")
    out.flush()
    return left


def _matching(
    reader: Any, hits: Sequence[int], decode: Callable[[memoryview], dict[str, Any]], base: int = 0
) -> Iterator[Record]:
    """The records at ``hits`` (sorted), read a few MB at a time; ``base`` is added to
    their indexes (a helper's reader holds a part of the log)."""
    from krec.recorder.log.record import Record

    offsets = reader.offsets
    n = len(hits)
    k = 0
    while k < n:
        first = offsets[hits[k]]
        last = k + 1
        limit = first + _SPAN_BYTES
        while last < n and offsets[hits[last]] < limit:
            last += 1
        data = memoryview(reader.read_span(hits[k], hits[last - 1] + 1))
        end = len(data)
        for j in range(k, last):
            i = hits[j]
            hi = offsets[i + 1] - first if j < last - 1 else end
            yield Record(base + i, decode(data[offsets[i] - first : hi]))
        k = last


# -- a helper process formats the second half of a big log ------------------------------

_SPAN_BYTES = 4 << 20


class _ShowHelper:
    """``python -m krec.recorder.cli.show`` formatting records ``lo``..``hi`` into a temporary
    file while this process prints the records before them."""

    def __init__(self, process: subprocess.Popen[bytes], output: IO[bytes]) -> None:
        self._process = process
        self._output = output

    @classmethod
    def start(
        cls, reader: LogReader, flt: Filter, fmt: LineFormat, as_json: bool, lo: int, hi: int
    ) -> _ShowHelper | None:
        tree = None
        if not flt.matches_all:
            flt.prepare(reader)
            tree = flt.tree
        output = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        try:
            job = pickle.dumps(
                (
                    reader.path,
                    lo,
                    reader.offsets[lo:hi].tobytes(),
                    reader.record_end(hi - 1),
                    tree,
                    (fmt.start_ns, fmt.colour, fmt.width, fmt.arrows),
                    as_json,
                )
            )
            process = subprocess.Popen(
                [sys.executable, "-m", "krec.recorder.cli.show"],
                stdin=subprocess.PIPE,
                stdout=output,
                stderr=subprocess.DEVNULL,
            )
            assert process.stdin is not None
            process.stdin.write(job)
            process.stdin.close()
        except Exception:  # no second process (a sandbox, an unpicklable operator)
            output.close()
            return None
        return cls(process, output)

    def copy_to(self, out: IO[str]) -> bool:
        """Wait for the helper and write what it printed to ``out``; False if it failed."""
        try:
            code = self._process.wait()
        except OSError:
            return False
        if code != 0:
            return False
        self._output.seek(0)
        text = io.TextIOWrapper(self._output, encoding="utf-8", errors="surrogatepass")
        while chunk := text.read(1 << 20):
            out.write(chunk)
        text.detach()
        out.flush()
        return True

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(10)
        self._output.close()


def _helper_main() -> None:
    """The helper's side: read the job from stdin, print the records' lines to stdout."""
    from krec.recorder.filter.scan import _Part, scan_part
    from krec.recorder.log.record import decode_record

    path, lo, offsets_bytes, end, tree, (start_ns, colour, width, arrows), as_json = pickle.loads(
        sys.stdin.buffer.read()
    )
    offsets: array.array[int] = array.array("Q")
    offsets.frombytes(offsets_bytes)
    part = _Part(path, offsets, end)
    hits: Sequence[int] = range(len(offsets))
    if tree is not None:
        hits = [i - lo for i in scan_part(path, lo, offsets, end, tree)]
    fmt = LineFormat(start_ns, colour, width)
    fmt.arrows = arrows
    out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", errors="surrogatepass")
    _write_lines(_matching(part, hits, decode_record, lo), fmt, as_json, start_ns, out)


def _warn(reader: LogReader, warnings: list[str], following: bool = False) -> None:
    for warning in warnings:
        if following and warning.startswith("truncated"):
            continue  # normal while a writer is between flushes: the record completes later
        print(f"krec: warning: {reader.path}: {warning}", file=sys.stderr)


def _follow(
    readers: list[LogReader],
    flt: Filter,
    colour: bool,
    width: int | None,
    args: argparse.Namespace,
    out: IO[str],
    left: int | None,
) -> None:
    formats = [LineFormat(r.start_ns, colour, width) for r in readers]
    seen = [set(r.warnings) for r in readers]
    try:
        while left != 0:
            time.sleep(0.2)
            for n, reader in enumerate(readers):
                done = len(reader)
                if reader.refresh():
                    left = _print_range(
                        reader, flt, formats[n], args.json, out, done, len(reader), left
                    )
                _warn(reader, [w for w in reader.warnings if w not in seen[n]], following=True)
                seen[n].update(reader.warnings)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a follow ends


if __name__ == "__main__":
    _helper_main()
