"""Proxy overhead, direct vs through krec, measured side by side in one run.

Starts one ipykernel directly (jupyter_client KernelManager) and one behind
`krec record --kernel python3`, then alternates rounds (direct, krec, direct, ...)
and prints the median of the per-pair ratios, as DESIGN.md section 7 asks:

- execute round trip of ``pass`` (median per round), krec / direct (target <= 1.05)
- iopub flood throughput of ``print(i, flush=True)``, krec / direct (target >= 0.95)
- messages lost between kernel and frontend and between kernel and log (target 0)
- krec's own CPU time per forwarded message (target <= 10 us), measured once the
  capture thread has caught up, and split by thread (capture, forwarders, libzmq I/O)

    python benchmarks/proxy.py                 # defaults: 5 rounds, 200 executes, 20000 prints
    python benchmarks/proxy.py --encrypt       # the same with CurveZMQ on every hop
    python benchmarks/proxy.py --otlp          # plus a krec recording with --otlp to a local
                                               # OTLP/HTTP receiver (tests/otlpreceiver.py)
    python benchmarks/proxy.py --audit         # plus a krec recording with --audit
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from jupyter_client import BlockingKernelClient, KernelManager
from recording import attach, start_recording, stop_recording

from krec.recorder.log.reader import LogReader

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its threads."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def thread_cpu(pid: int) -> dict[str, float]:
    """utime + stime per thread name of a process (libzmq's I/O threads summed as one)."""
    out: dict[str, float] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # the thread ended
            continue
        name = stat[stat.index(b"(") + 1 : stat.rindex(b")")].decode(errors="replace")
        if name.startswith("ZMQbg"):
            name = "libzmq " + name.split("/")[1]  # ZMQbg/IO/0, ZMQbg/Reaper
        fields = stat.rsplit(b")", 1)[1].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICKS
    return out


def round_trip(kc: BlockingKernelClient, n: int) -> float:
    """Median seconds from execute_request sent to execute_reply received."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        msg_id = kc.execute("pass", store_history=False)
        while True:
            reply = kc.get_shell_msg(timeout=30)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        times.append(time.perf_counter() - t)
        # wait for idle so the next request starts from a quiet kernel
        while True:
            msg = kc.get_iopub_msg(timeout=30)
            if (
                msg["parent_header"].get("msg_id") == msg_id
                and msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"
            ):
                break
    return statistics.median(times)


def flood_lines(text: str) -> int:
    """The flood's own lines in a stream text (numbers), not the kernel's start-up chatter."""
    return sum(1 for line in text.splitlines() if line.isdigit())


def flood(kc: BlockingKernelClient, n: int) -> tuple[float, int, int]:
    """(messages per second, stream messages received, lines received) for n flushed prints."""
    code = f"for i in range({n}):\n    print(i, flush=True)"
    msg_id = kc.execute(code, store_history=False)
    start = None
    messages = lines = 0
    while True:
        msg = kc.get_iopub_msg(timeout=120)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind = msg["msg_type"]
        if kind == "execute_input":
            start = time.perf_counter()
        elif kind == "stream":
            messages += 1
            lines += flood_lines(msg["content"]["text"])
        elif kind == "status" and msg["content"]["execution_state"] == "idle":
            break
    elapsed = time.perf_counter() - (start or time.perf_counter())
    while True:  # the execute_reply
        reply = kc.get_shell_msg(timeout=30)
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    return messages / elapsed, messages, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--executes", type=int, default=200)
    parser.add_argument("--flood", type=int, default=20000)
    parser.add_argument("--encrypt", action="store_true", help="CurveZMQ on both paths")
    parser.add_argument(
        "--otlp",
        action="store_true",
        help="also measure a krec recording with --otlp (spans to a local OTLP/HTTP receiver)",
    )
    parser.add_argument(
        "--audit", action="store_true", help="also measure a krec recording with --audit"
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="krec-bench-"))
    log, cf = tmp / "bench.krec", tmp / "frontend.json"
    krec = start_recording(log, cf, *(["--encrypt"] if args.encrypt else []))
    with contextlib.ExitStack() as stack:
        otlp = stack.enter_context(_OtlpPath(tmp, args.encrypt)) if args.otlp else None
        audit = stack.enter_context(_AuditPath(tmp, args.encrypt)) if args.audit else None
        _measure(args, log, cf, krec, otlp, audit)


class _AuditPath:
    """Another `krec record --kernel`, with --audit (outputs dropped, chain sealed)."""

    def __init__(self, tmp: Path, encrypt: bool) -> None:
        self.log, self.cf = tmp / "audit.krec", tmp / "audit-frontend.json"
        self._encrypt = encrypt
        self.rows: list[tuple[float, ...]] = []

    def __enter__(self) -> _AuditPath:
        extra = ["--audit", *(["--encrypt"] if self._encrypt else [])]
        self.proc = start_recording(self.log, self.cf, *extra)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            stop_recording(self.proc)


class _OtlpPath:
    """A second `krec record --kernel` exporting spans to a receiver in this process."""

    def __init__(self, tmp: Path, encrypt: bool) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from otlpreceiver import Receiver

        self.receiver = Receiver()
        self.log, self.cf = tmp / "otlp.krec", tmp / "otlp-frontend.json"
        self._encrypt = encrypt

    def __enter__(self) -> _OtlpPath:
        self.receiver.__enter__()
        extra = ["--otlp", self.receiver.url, *(["--encrypt"] if self._encrypt else [])]
        self.proc = start_recording(self.log, self.cf, *extra)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            stop_recording(self.proc)
        self.receiver.__exit__()


def _measure(
    args: argparse.Namespace,
    log: Path,
    cf: Path,
    krec,
    otlp: _OtlpPath | None,
    audit: _AuditPath | None = None,
) -> None:
    km = KernelManager(
        kernel_name="python3", transport_encryption="required" if args.encrypt else "disabled"
    )
    km.start_kernel()
    try:
        direct = km.client()
        direct.start_channels()
        direct.wait_for_ready(timeout=60)
        through = attach(cf)
        traced = attach(otlp.cf) if otlp is not None else None
        audited = attach(audit.cf) if audit is not None else None
        if audited is not None:
            round_trip(audited, 20)
        # warm up both paths
        round_trip(direct, 20)
        round_trip(through, 20)
        if traced is not None:
            round_trip(traced, 20)

        rt_ratios, flood_ratios, rows = [], [], []
        otlp_rows: list[tuple[float, float, float, float]] = []  # rt, flood, their ratios, cpu
        lost_frontend = 0
        cpu_per_msg = []
        by_thread: dict[str, list[float]] = {}  # thread name -> us per message, per round
        for r in range(args.rounds):
            rt_d = round_trip(direct, args.executes)
            rt_k = round_trip(through, args.executes)
            fl_d, _, lines_d = flood(direct, args.flood)
            with LogReader(log) as reader:
                before_records = len(reader)
            cpu0, threads0 = cpu_seconds(krec.pid), thread_cpu(krec.pid)
            fl_k, msgs_k, lines_k = flood(through, args.flood)
            time.sleep(0.3)  # let the capture thread catch up with the end of a flood
            cpu1, threads1 = cpu_seconds(krec.pid), thread_cpu(krec.pid)
            with LogReader(log) as reader:
                forwarded = len(reader) - before_records
            lost_frontend += args.flood - lines_k
            rt_ratios.append(rt_k / rt_d)
            flood_ratios.append(fl_k / fl_d)
            cpu_per_msg.append((cpu1 - cpu0) / max(forwarded, 1) * 1e6)
            for name, seconds in threads1.items():
                spent = (seconds - threads0.get(name, 0.0)) / max(forwarded, 1) * 1e6
                by_thread.setdefault(name, []).append(spent)
            rows.append(
                (r + 1, rt_d * 1e3, rt_k * 1e3, fl_d, fl_k, lines_d, lines_k, cpu_per_msg[-1])
            )
            if traced is not None and otlp is not None:
                rt_o = round_trip(traced, args.executes)
                cpu0 = cpu_seconds(otlp.proc.pid)
                fl_o, _, lines_o = flood(traced, args.flood)
                cpu1 = cpu_seconds(otlp.proc.pid)
                lost_frontend += args.flood - lines_o
                # same number of forwarded messages as the plain krec path's flood
                cpu_o = (cpu1 - cpu0) / max(forwarded, 1) * 1e6
                otlp_rows.append((rt_o / rt_d, fl_o / fl_d, rt_o / rt_k, fl_o / fl_k, cpu_o))
            if audited is not None and audit is not None:
                rt_a = round_trip(audited, args.executes)
                cpu0 = cpu_seconds(audit.proc.pid)
                fl_a, _, lines_a = flood(audited, args.flood)
                cpu1 = cpu_seconds(audit.proc.pid)
                lost_frontend += args.flood - lines_a
                cpu_a = (cpu1 - cpu0) / max(forwarded, 1) * 1e6
                audit.rows.append((rt_a / rt_d, fl_a / fl_d, rt_a / rt_k, fl_a / fl_k, cpu_a))
        if audited is not None:
            audited.stop_channels()
        if traced is not None:
            traced.stop_channels()
        through.stop_channels()
        direct.stop_channels()
    finally:
        stop_recording(krec)
        km.shutdown_kernel(now=True)

    # every flood line must be in the log too
    with LogReader(log) as reader:
        logged_lines = sum(
            flood_lines(r.content.get("text", "")) for r in reader if r.msg_type == "stream"
        )
    lost_log = args.rounds * args.flood - logged_lines

    print(
        f"{'round':>5} {'rt direct':>10} {'rt krec':>9} {'flood direct':>13} "
        f"{'flood krec':>11} {'lines d':>8} {'lines k':>8} {'krec us/msg':>11}"
    )
    for row in rows:
        print(
            f"{row[0]:>5} {row[1]:>8.2f}ms {row[2]:>7.2f}ms {row[3]:>9.0f}/s {row[4]:>9.0f}/s "
            f"{row[5]:>8} {row[6]:>8} {row[7]:>11.1f}"
        )
    print()
    print(
        f"round trip ratio krec/direct (median of pairs): {statistics.median(rt_ratios):.3f}"
        "   target <= 1.05"
    )
    print(
        f"flood throughput ratio krec/direct (median):     {statistics.median(flood_ratios):.3f}"
        "   target >= 0.95"
    )
    print(f"messages lost, kernel -> frontend through krec:  {lost_frontend}   target 0")
    print(f"messages lost, kernel -> log:                    {lost_log}   target 0")
    print(
        f"krec CPU per forwarded message (median):         {statistics.median(cpu_per_msg):.1f} us"
        "   target <= 10 us"
    )
    print("  of which, by thread (median us per forwarded message; /proc's 10 ms ticks):")
    for name, spent in sorted(by_thread.items(), key=lambda kv: -statistics.median(kv[1])):
        if statistics.median(spent) >= 0.05:
            print(f"    {name:<20} {statistics.median(spent):6.1f}")
    print(f"(log: {log}, {log.stat().st_size / 1e6:.1f} MB)")
    if otlp is not None and otlp_rows:
        stop_recording(otlp.proc)
        spans = len(otlp.receiver.spans())
        with LogReader(otlp.log) as reader:
            requests = sum(1 for r in reader if r.source == "client" and r.ch == "shell")

        def med(i: int) -> float:
            return statistics.median(row[i] for row in otlp_rows)

        print()
        print("with --otlp (spans to a local OTLP/HTTP receiver), same rounds:")
        print(f"round trip ratio krec+otlp/direct (median):      {med(0):.3f}")
        print(f"flood throughput ratio krec+otlp/direct (median): {med(1):.3f}")
        print(f"round trip ratio krec+otlp/krec (median):        {med(2):.3f}")
        print(f"flood throughput ratio krec+otlp/krec (median):  {med(3):.3f}")
        print(f"krec+otlp CPU per forwarded message (median):    {med(4):.1f} us")
        print(f"spans received / shell requests logged:          {spans} / {requests}")

    if audit is not None and audit.rows:
        stop_recording(audit.proc)
        rows_a = audit.rows

        def med_a(i: int) -> float:
            return statistics.median(row[i] for row in rows_a)

        print()
        print("with --audit (outputs dropped, chain sealed), same rounds:")
        print(f"round trip ratio krec+audit/direct (median):      {med_a(0):.3f}")
        print(f"flood throughput ratio krec+audit/direct (median): {med_a(1):.3f}")
        print(f"round trip ratio krec+audit/krec (median):        {med_a(2):.3f}")
        print(f"flood throughput ratio krec+audit/krec (median):  {med_a(3):.3f}")
        print(f"krec+audit CPU per forwarded message (median):    {med_a(4):.1f} us")
        print(f"(audit log: {audit.log}, {audit.log.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
