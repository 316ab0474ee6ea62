"""The viewer on a big log, in a real pseudo-terminal: first screen, paging, filters, memory.

Synthesizes a realistic log (benchmarks/synth.py; 1,000,000 messages by default)
or uses ``--log PATH``, starts `krec view LOG` in a 160x48 pseudo-terminal and
drives it with keys, timing what a user waits for, from the key to the last
byte of the frame that answers it:

* launch to first screen: from just before the process is spawned (Python
  start-up and every import count) to the first frame with rows and the key
  bar (target <= 0.5 s); the median of a few launches, after one that warms
  the bytecode caches as an installation would (the viewer runs with its own
  PYTHONPYCACHEPREFIX, even where PYTHONDONTWRITEBYTECODE is set), with the CPU
  time the process had used by then (a loaded machine inflates the wall time);
* page down through rows never decoded, from the top and from the middle of
  the log (target <= 50 ms a page);
* filters, from Enter to the frame showing "N matches" (target <= 2 s),
  beside the same Filter.scan alone in a plain process (what the viewer adds);
* the thread view opened in the middle of the log (it opens once the thread
  index has passed that record, then the rest is threaded behind it) and the
  timeline;
* the peak anonymous RSS of the viewer process, sampled from
  /proc/PID/smaps_rollup every 20 ms (mapped file pages excluded; target
  <= 300 MB).

``python benchmarks/viewer.py --count 100000`` for a quick run while developing.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time

from synth import big_log

HERE = os.path.dirname(os.path.abspath(__file__))
FILTERS = ["type:execute_request", "status:error", "ValueError", "not type:status"]
PAGE_DOWN = b"\x1b[6~"
ESCAPE = b"\x1b"
WIDTH, HEIGHT = 160, 48
_ESCAPES = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """`krec view LOG` in a pseudo-terminal: send keys, wait for what the screen shows."""

    def __init__(self, path: str, pycache: str) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", HEIGHT, WIDTH, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "PYTHONPYCACHEPREFIX": pycache}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "krec.recorder", "view", path],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
        os.close(slave)
        self.fd = master
        self.out = bytearray()
        self.last_output = self.started

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return False
        try:
            chunk = os.read(self.fd, 1 << 16)
        except OSError:
            return False
        self.out += chunk
        self.last_output = time.perf_counter()
        return True

    def send(self, keys: bytes) -> tuple[int, float]:
        """Type ``keys``; return where the output stood and when."""
        mark = (len(self.out), time.perf_counter())
        os.write(self.fd, keys)
        return mark

    def type(self, keys: bytes, quiet: float = 0.3) -> None:
        """Type ``keys`` and let the app answer (untimed steps, like opening a bar)."""
        since, _ = self.send(keys)
        self.answer(since, quiet)

    def answer(self, since: int, quiet: float = 0.1, timeout: float = 60) -> float:
        """When the frame answering a key was complete: the first byte after ``since``,
        then output until ``quiet`` s pass without any."""
        deadline = time.perf_counter() + timeout
        while len(self.out) == since:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"no answer in {timeout} s")
            self._read(0.05)
        return self.settle(quiet)

    def wait_for(self, pattern: bytes, since: int, timeout: float = 60) -> re.Match[bytes]:
        """Read until ``pattern`` (a regex) shows in the output after offset ``since``."""
        deadline = time.perf_counter() + timeout
        regex = re.compile(pattern)
        while True:
            m = regex.search(self.out, since)
            if m:
                return m
            if time.perf_counter() > deadline:
                text = re.sub(rb"\s+", b" ", _ESCAPES.sub(b" ", bytes(self.out[since:])))
                raise RuntimeError(f"{pattern!r} not shown in {timeout} s; got {text[-1500:]!r}")
            self._read(0.05)

    def settle(self, quiet: float = 0.1, timeout: float = 30) -> float:
        """Read until the output has been quiet for ``quiet`` s; when the last byte came."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if not self._read(quiet):
                break
        return self.last_output

    def until_idle(self, quiet: float = 0.4, timeout: float = 300) -> float:
        """Read output until the process has used (almost) no CPU for ``quiet`` s: its
        background work is done. Returns when it last used CPU."""
        deadline = time.perf_counter() + timeout
        last_cpu, last_busy = self.cpu_seconds(), time.perf_counter()
        while time.perf_counter() < deadline:
            self._read(0.1)
            cpu = self.cpu_seconds()
            if cpu - last_cpu > 0.02:
                last_cpu, last_busy = cpu, time.perf_counter()
            elif time.perf_counter() - last_busy >= quiet:
                break
        return last_busy

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def anonymous_kb(self) -> int:
        try:
            with open(f"/proc/{self.proc.pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Anonymous:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self.fd, b"q")
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        os.close(self.fd)


class PeakSampler(threading.Thread):
    """Samples a terminal's process anonymous RSS every 20 ms; ``peak`` in kB."""

    def __init__(self, term: Terminal) -> None:
        super().__init__(daemon=True)
        self.term = term
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.term.anonymous_kb())
            self.stop.wait(0.02)


def first_screen(path: str, pycache: str) -> tuple[float, float]:
    """Seconds from spawning `krec view PATH` to its first frame with rows and key bar,
    and the CPU seconds the process had used by then."""
    term = Terminal(path, pycache)
    try:
        term.wait_for(b"kernel_started", 0, timeout=20)
        term.wait_for(b"Quit", 0, timeout=20)
        cpu = term.cpu_seconds()
        return term.last_output - term.started, cpu
    finally:
        term.close()


def bare_scan(path: str, text: str) -> tuple[float, float]:
    """Wall and CPU seconds of the same filter's Filter.scan in a plain process."""
    code = (
        "import sys, time\n"
        "from krec.recorder.filter import compile_filter\n"
        "from krec.recorder.logfile import LogReader\n"
        "reader = LogReader(sys.argv[1])\n"
        "flt = compile_filter(sys.argv[2])\n"
        "t, c = time.perf_counter(), time.process_time()\n"
        "flt.scan(reader)\n"
        "print(time.perf_counter() - t, time.process_time() - c)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, path, text], capture_output=True, text=True, check=True
    )
    wall, cpu = done.stdout.split()
    return float(wall), float(cpu)


def session(path: str, pycache: str) -> dict[str, object]:
    """One long session: index, page, filter, threads, timeline; peak memory throughout."""
    out: dict[str, object] = {}
    term = Terminal(path, pycache)
    sampler = PeakSampler(term)
    sampler.start()
    try:
        term.wait_for(b"Quit", 0, timeout=20)
        # the status line drops "(indexing…)" when the whole log is indexed
        m = term.wait_for(rb"([\d,]+) records(?! \(indexing)", 0, timeout=120)
        out["index_s"] = term.last_output - term.started
        out["records"] = int(m.group(1).replace(b",", b""))
        term.settle(0.5)
        pages = []
        for start in (None, out["records"] // 2):  # type: ignore[operator]
            if start is not None:
                term.type(b":")
                term.type(f"#{start}\r".encode())
            for _ in range(15):
                since, sent = term.send(PAGE_DOWN)
                pages.append(term.answer(since) - sent)
        out["page_ms"] = [p * 1e3 for p in pages]
        scans = []
        for text in FILTERS:
            term.type(b"/")
            term.type(text.encode())  # replaces the last expression (selected on opening)
            cpu = term.cpu_seconds()
            since, sent = term.send(b"\r")
            # the frame naming this filter in the status line, with the match count below
            shown = term.wait_for(re.escape(b"filter: " + text.encode()), since, timeout=120)
            m = term.wait_for(rb"([\d,]+) matches in", shown.end(), timeout=30)
            scans.append(
                {
                    "filter": text,
                    "s": term.settle(0.05) - sent,
                    "cpu_s": term.cpu_seconds() - cpu,
                    "matches": int(m.group(1).replace(b",", b"")),
                }
            )
        out["scans"] = scans
        term.type(ESCAPE)  # the list has the focus again: Escape clears the filter
        term.until_idle()
        cpu = term.cpu_seconds()
        since, sent = term.send(b"t")  # on a record in the middle of the log
        term.wait_for(rb"threads: [\d,]+ requests", since, timeout=300)
        out["threads_open_s"] = term.last_output - sent
        out["threads_s"] = term.until_idle() - sent  # the rest is threaded behind the view
        out["threads_cpu_s"] = term.cpu_seconds() - cpu
        term.type(ESCAPE)
        since, sent = term.send(b"l")
        m = term.wait_for(rb"([\d,]+) requests in log order", since, timeout=120)
        out["timeline_s"] = term.settle(0.05) - sent
        out["requests"] = int(m.group(1).replace(b",", b""))
        since, sent = term.send(b"s")
        term.wait_for(rb"slowest first", since, timeout=120)
        out["timeline_sort_s"] = term.settle(0.05) - sent
    finally:
        sampler.stop.set()
        sampler.join()
        term.close()
    out["peak_anon_mb"] = sampler.peak / 1024
    for scan in scans:  # after the session: not beside the viewer on a 2-core machine
        scan["bare"] = bare_scan(path, scan["filter"])  # type: ignore[arg-type]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="messages to synthesize")
    parser.add_argument("--log", help="measure this log instead of synthesizing one")
    parser.add_argument("--launches", type=int, default=5, help="launches to time")
    args = parser.parse_args()
    with big_log(args.log, args.count) as path:
        report(path, args.launches)


def report(path: str, launches_wanted: int) -> None:
    pycache = tempfile.mkdtemp(prefix="krec-bench-pycache-")
    try:
        size = os.path.getsize(path)
        first_screen(path, pycache)  # writes the bytecode caches
        runs = [first_screen(path, pycache) for _ in range(launches_wanted)]
        launches = [wall for wall, _ in runs]
        m = session(path, pycache)
        pages: list[float] = m["page_ms"]  # type: ignore[assignment]
        print(f"log: {m['records']:,} records, {size / 1e6:.0f} MB, {path}")
        print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print(
            f"  launch to first screen   {statistics.median(launches):6.3f} s median "
            f"(min {min(launches):.3f}, max {max(launches):.3f}; {len(launches)} launches; "
            f"CPU {statistics.median(cpu for _, cpu in runs):.3f} s)   target <= 0.5 s"
        )
        print(f"  whole index, background  {m['index_s']:6.2f} s   (usable meanwhile)")
        print(
            f"  page down, unseen rows   {statistics.median(pages):6.1f} ms median, "
            f"{max(pages):.1f} ms max ({len(pages)} pages)   target <= 50 ms"
        )
        print("  filter, Enter to the matches on screen (target <= 2 s); Filter.scan alone:")
        for s in m["scans"]:  # type: ignore[attr-defined]
            bare_wall, bare_cpu = s["bare"]
            print(
                f"    {s['filter']:<22} {s['s']:6.2f} s (CPU {s['cpu_s']:5.2f})  "
                f"{s['matches']:>8,} matches;  alone {bare_wall:5.2f} s (CPU {bare_cpu:5.2f})"
            )
        print(
            f"  thread view (middle)     {m['threads_open_s']:6.2f} s to open, "
            f"{m['threads_s']:.2f} s to thread the whole log (CPU {m['threads_cpu_s']:.2f})"
        )
        print(
            f"  timeline open            {m['timeline_s']:6.2f} s ({m['requests']:,} requests), "
            f"sorted by duration {m['timeline_sort_s']:.2f} s"
        )
        print(f"  peak anonymous RSS       {m['peak_anon_mb']:6.0f} MB   target <= 300 MB")
    finally:
        shutil.rmtree(pycache, ignore_errors=True)


if __name__ == "__main__":
    main()
