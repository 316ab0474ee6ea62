"""Regenerate the sample recordings in sample_sessions/ by driving real ipykernel sessions.

Each sample is one scripted frontend session: `krec record --kernel python3` runs the
kernel behind krec, a jupyter_client BlockingKernelClient attached through krec's
connection file plays the frontend (cells, stdin answers, interrupts, a restart,
widget comm messages, introspection), and Ctrl-C ends the recording. The sessions
are deterministic where a notebook can be (fixed seeds, no wall-clock output, a
fresh IPYTHONDIR so no profile or history leaks in) except `nondeterministic`,
which exists to diverge. Usage: ``python sample_sessions/make_samples.py [NAME...]
[-o DIR] [--matplotlib]``; `record_sample(name, directory)` is what the tests call.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any

from jupyter_client import BlockingKernelClient

from krec.recorder.log.reader import LogReader

HERE = Path(__file__).resolve().parent

#: what the stdin sample types at its getpass() prompt; the log keeps it redacted, so
#: `krec replay sample_sessions/stdin.krec --password swordfish` answers it again
PASSWORD = "swordfish"

#: ipykernel aborts requests that reach it within a few ms of an error; a person is slower
PAUSE_AFTER_ERROR = 0.5
TIMEOUT = 60.0


@dataclass
class Outputs:
    """What one request produced: its reply (if it has one) and its iopub messages."""

    reply: dict[str, Any] | None = None
    iopub: list[dict[str, Any]] = field(default_factory=list)

    def comm_id(self, model_name: str) -> str:
        for msg in self.iopub:
            state = msg["content"].get("data", {}).get("state", {})
            if msg["msg_type"] == "comm_open" and state.get("_model_name") == model_name:
                return msg["content"]["comm_id"]
        raise RuntimeError(f"no comm_open for a {model_name}")


class Frontend:
    """A scripted frontend: one jupyter_client connected through krec, waiting like a person.

    Every request is awaited to its reply and its `status: idle` before the next one
    is sent, and exactly one kernel_info_request is sent per kernel start, so the
    recordings (and their request numbers) are the same on every run.
    """

    def __init__(self, connection_file: Path, log: Path) -> None:
        self.log = log
        self.kc = BlockingKernelClient(connection_file=str(connection_file))
        self.kc.load_connection_file()
        self.kc.start_channels()
        self._inbox: list[dict[str, Any]] = []  # iopub messages received, not yet claimed
        self._later: list[dict[str, Any]] = []  # skipped while waiting for another request

    def close(self) -> None:
        self.kc.stop_channels()

    def ready(self) -> None:
        """Wait for the kernel's kernel_info_reply and for iopub to reach us."""
        msg_id = self.kc.kernel_info()
        self._reply(self.kc.get_shell_msg, msg_id)
        # krec welcomes every new iopub subscriber (JEP 65); after a restart the
        # subscription is still there, and the kernel's own status output comes instead
        self.kc.get_iopub_msg(timeout=TIMEOUT)
        self._drain_iopub()

    def run(self, code: str, stdin: list[str] | None = None) -> Outputs:
        """Execute one cell, answering its input prompts from ``stdin`` in order."""
        answers = list(stdin or [])
        out = Outputs()
        out.reply = self.kc.execute_interactive(
            code,
            timeout=TIMEOUT,
            allow_stdin=stdin is not None,
            stdin_hook=lambda msg: self.kc.input(answers.pop(0)),
            output_hook=out.iopub.append,
        )
        if out.reply["content"]["status"] != "ok":
            time.sleep(PAUSE_AFTER_ERROR)
        return out

    def request(self, msg_type: str, content: dict[str, Any], channel: str = "shell") -> Outputs:
        """Send one request and wait for its reply (if it is a *_request) and its idle."""
        msg = self.kc.session.msg(msg_type, content)
        getattr(self.kc, f"{channel}_channel").send(msg)
        msg_id = msg["header"]["msg_id"]
        out = Outputs()
        if msg_type.endswith("_request"):
            get = self.kc.get_control_msg if channel == "control" else self.kc.get_shell_msg
            out.reply = self._reply(get, msg_id)
        out.iopub = self._until_idle(msg_id)
        return out

    def interrupt(self, code: str, after: float) -> Outputs:
        """Run ``code`` and send an interrupt_request on control ``after`` s into it."""
        msg_id = self.kc.execute(code)
        out = Outputs()
        out.iopub = self._until(msg_id, lambda m: m["msg_type"] == "execute_input")
        time.sleep(after)
        self.request("interrupt_request", {}, channel="control")
        out.reply = self._reply(self.kc.get_shell_msg, msg_id)
        out.iopub += self._until_idle(msg_id)
        time.sleep(PAUSE_AFTER_ERROR)
        return out

    def restart(self) -> None:
        """Ask for a restart as a notebook's Restart Kernel does; krec starts a new kernel."""
        started = self._events("kernel_started")
        msg_id = self.kc.shutdown(restart=True)
        self._reply(self.kc.get_control_msg, msg_id)
        self._wait(lambda: self._events("kernel_started") > started, "the restarted kernel")
        self._drain_iopub()
        self.ready()

    # -- waiting ------------------------------------------------------------------------

    def _reply(self, get: Callable[..., dict[str, Any]], msg_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            msg = get(timeout=TIMEOUT)
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg
        raise TimeoutError(f"no reply to {msg_id}")

    def _until(self, msg_id: str, last: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """The iopub messages of ``msg_id`` up to the first for which ``last`` holds.

        Messages of other requests are kept for whoever waits for them (an
        interrupt_request's idle can come before or after the interrupted cell's)."""
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if not self._inbox:
                self._inbox.append(self.kc.get_iopub_msg(timeout=TIMEOUT))
            msg = self._inbox.pop(0)
            if msg["parent_header"].get("msg_id") != msg_id:
                self._later.append(msg)
                continue
            got.append(msg)
            if last(msg):
                self._inbox[:0] = self._later
                self._later = []
                return got
        raise TimeoutError(f"timed out waiting for the iopub output of {msg_id}")

    def _until_idle(self, msg_id: str) -> list[dict[str, Any]]:
        return self._until(
            msg_id,
            lambda m: m["msg_type"] == "status" and m["content"]["execution_state"] == "idle",
        )

    def _drain_iopub(self) -> None:
        self._inbox.clear()
        while True:
            try:
                self.kc.get_iopub_msg(timeout=0.3)
            except Empty:
                return

    def _events(self, name: str) -> int:
        with LogReader(self.log) as reader:
            return sum(1 for record in reader if record.event == name)

    def _wait(self, predicate: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            time.sleep(0.05)


# -- the sessions ---------------------------------------------------------------------------


def basics(fe: Frontend, options: argparse.Namespace) -> None:
    fe.run("greeting = 'hello'\ncount = 3")
    fe.run("for i in range(count):\n    print(greeting, i)")
    fe.run("import sys\nprint('careful: this goes to stderr', file=sys.stderr)\nprint('and back')")
    fe.run("sum(range(10)) * count")
    fe.run("def mean(values):\n    return sum(values) / len(values)\n\nmean([1, 2, 3, 4])")
    fe.run("mean([])")
    fe.run("print('unclosed'")
    fe.run("greeting.upper(), count")


#: a PNG encoder in a dozen lines, so the plot needs nothing beyond the standard library
PNG_HELPER = """\
import math, struct, zlib

def png_plot(f, width=240, height=120, x_range=(0, 2 * math.pi)):
    # plot f over x_range as an 8-bit grey PNG: white background, axis, black curve
    rows = [bytearray(b'\\xff' * width) for _ in range(height)]
    for x in range(width):
        rows[height // 2][x] = 0xc0
    for x in range(width):
        t = x_range[0] + (x_range[1] - x_range[0]) * x / (width - 1)
        y = round((1 - f(t)) * (height - 1) / 2)
        for dy in (-1, 0, 1):
            if 0 <= y + dy < height:
                rows[y + dy][x] = 0
    def chunk(kind, data):
        crc = zlib.crc32(kind + data) & 0xffffffff
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', crc)
    raw = b''.join(b'\\x00' + bytes(row) for row in rows)
    header = struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)
    return (b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', header)
            + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b''))"""

MATPLOTLIB_PLOT = """\
%matplotlib inline
import matplotlib.pyplot as plt
import numpy as np
# no matplotlib version in the PNG: the same plot gives the same bytes
%config InlineBackend.print_figure_kwargs = {'bbox_inches': 'tight', 'metadata': {'Software': None}}
x = np.linspace(0, 2 * np.pi, 200)
plt.figure(figsize=(4, 2))
plt.plot(x, np.sin(x), color='black')
plt.show()"""


def rich_display(fe: Frontend, options: argparse.Namespace) -> None:
    fe.run("from IPython.display import HTML, Image, Markdown, clear_output, display")
    fe.run("display(HTML('<h3>Results</h3><p>three <b>bold</b> claims</p>'))")
    fe.run("display(Markdown('*Markdown* with a [link](https://jupyter.org)'))")
    if options.matplotlib:
        fe.run(MATPLOTLIB_PLOT)
    else:
        fe.run(PNG_HELPER)
        fe.run("display(Image(png_plot(math.sin)))")
    fe.run(
        "class Table:\n"
        "    def _repr_html_(self):\n"
        "        return '<table><tr><td>1</td><td>2</td></tr></table>'\n"
        "    def __repr__(self):\n"
        "        return 'Table(1, 2)'\n\n"
        "Table()"
    )
    fe.run(
        "status = display(Markdown('**loading**...'), display_id='status')\n"
        "status.update(Markdown('**done**: 3 of 3'))"
    )
    fe.run("status.update(HTML('<i>updated from a later cell</i>'))")
    fe.run("print('this line is cleared')\nclear_output()\nprint('only this line stays')")
    fe.run("for step in range(3):\n    clear_output(wait=True)\n    print(f'step {step + 1} of 3')")


def stdin(fe: Frontend, options: argparse.Namespace) -> None:
    fe.run("name = input('Your name: ')\nprint(f'Hello, {name}!')", stdin=["Ada"])
    fe.run(
        "from getpass import getpass\n"
        "secret = getpass('Password: ')\n"
        "print(f'got a password of {len(secret)} characters')",
        stdin=[PASSWORD],
    )
    fe.run(
        "a = int(input('a = '))\nb = int(input('b = '))\nprint(f'{a} + {b} = {a + b}')",
        stdin=["2", "40"],
    )


def interrupt(fe: Frontend, options: argparse.Namespace) -> None:
    fe.run("import time\ndone = []")
    # the interrupt lands in the middle of the first 2 s sleep, in the replay too
    fe.interrupt("for i in range(30):\n    done.append(i)\n    time.sleep(2)", after=1.0)
    fe.run("print(f'the loop ran {len(done)} of 30 times before the interrupt')")
    fe.run("print('the kernel still works')")


def restart(fe: Frontend, options: argparse.Namespace) -> None:
    fe.run("import math\nradius = 2\narea = math.pi * radius ** 2\nprint(round(area, 3))")
    fe.restart()
    fe.run("print(area)")
    fe.run("math.pi")
    fe.run("import math\nradius = 2\nround(math.pi * radius ** 2, 3)")


def widgets(fe: Frontend, options: argparse.Namespace) -> None:
    fe.request("comm_info_request", {"target_name": "jupyter.widget"})
    out = fe.run(
        "import ipywidgets as widgets\n"
        "slider = widgets.IntSlider(value=3, min=0, max=10, description='n')\n"
        "display(slider)"
    )
    slider = out.comm_id("IntSliderModel")
    out = fe.run(
        "button = widgets.Button(description='Click me')\n"
        "clicks = []\n\n"
        "def on_click(b):\n"
        "    clicks.append(slider.value)\n"
        "    print('clicked at', slider.value)\n\n"
        "button.on_click(on_click)\n"
        "display(button)"
    )
    button = out.comm_id("ButtonModel")
    fe.request("comm_info_request", {"target_name": "jupyter.widget"})
    # the user drags the slider to 7: the frontend sends the new state on the comm
    fe.request(
        "comm_msg",
        {
            "comm_id": slider,
            "data": {"method": "update", "state": {"value": 7}, "buffer_paths": []},
        },
    )
    fe.request(
        "comm_msg", {"comm_id": button, "data": {"method": "custom", "content": {"event": "click"}}}
    )
    fe.run("slider.value = 9  # the kernel moves the slider: an update goes to the frontend")
    fe.request(
        "comm_msg", {"comm_id": button, "data": {"method": "custom", "content": {"event": "click"}}}
    )
    fe.run("print('slider', slider.value, 'clicks', clicks)")
    fe.run("slider.close()")
    fe.request("comm_close", {"comm_id": button, "data": {}})
    fe.request("comm_info_request", {"target_name": "jupyter.widget"})


def introspection(fe: Frontend, options: argparse.Namespace) -> None:
    fe.run("sample_values = [3, 1, 2]\nsample_name = 'introspection'")
    fe.request("complete_request", {"code": "sample_", "cursor_pos": 7})
    fe.request("complete_request", {"code": "sample_values.so", "cursor_pos": 16})
    fe.request("inspect_request", {"code": "sorted", "cursor_pos": 6, "detail_level": 0})
    fe.request("inspect_request", {"code": "sample_values", "cursor_pos": 13, "detail_level": 1})
    for code in ("print(1)", "for i in range(3):", "x = (1,", "1 +* 2"):
        fe.request("is_complete_request", {"code": code})
    fe.request(
        "history_request",
        {
            "hist_access_type": "range",
            "session": 0,
            "start": 1,
            "stop": 2,
            "raw": True,
            "output": False,
        },
    )
    fe.request(
        "history_request",
        {"hist_access_type": "tail", "n": 5, "raw": True, "output": False},
    )
    fe.request("kernel_info_request", {})
    fe.request("comm_info_request", {})


#: how many stream messages big_output floods (one print with flush=True each)
FLOOD = 1000


def big_output(fe: Frontend, options: argparse.Namespace) -> None:
    fe.run("import sys")
    fe.run(f"for i in range({FLOOD}):\n    print(f'line {{i}}', flush=True)")
    fe.run(
        "for i in range(250):\n"
        "    print(f'err {i}', file=sys.stderr, flush=True)\n"
        "    print(f'out {i}', flush=True)"
    )
    fe.run("print('after the flood')")


def nondeterministic(fe: Frontend, options: argparse.Namespace) -> None:
    fe.run("import random, time\nrandom.seed(2024)")
    fe.run("print('seeded:', random.randint(1, 1000))")
    fe.run("print('unseeded:', random.SystemRandom().randint(1, 10**9))")
    fe.run("print('now:', time.time())")
    fe.run("print('stable again')")


@dataclass(frozen=True)
class Sample:
    name: str
    drive: Callable[[Frontend, argparse.Namespace], None]
    summary: str


SAMPLES: dict[str, Sample] = {
    s.name: s
    for s in (
        Sample("basics", basics, "state, stdout/stderr, execute_result, two errors"),
        Sample("rich_display", rich_display, "HTML, Markdown, PNG, display ids, clear_output"),
        Sample("stdin", stdin, "input() and getpass() (the password redacted)"),
        Sample("interrupt", interrupt, "a long loop interrupted, then more cells"),
        Sample("restart", restart, "state lost across a kernel restart"),
        Sample("widgets", widgets, "ipywidgets slider and button comm traffic"),
        Sample("introspection", introspection, "complete, inspect, is_complete, history..."),
        Sample("big_output", big_output, f"a flood of {FLOOD + 500} stream messages"),
        Sample("nondeterministic", nondeterministic, "random numbers and the clock: diverges"),
    )
}


def record_sample(name: str, directory: Path, matplotlib: bool = False) -> Path:
    """Record sample ``name`` to ``directory/NAME.krec`` (replacing it only on success)."""
    sample = SAMPLES[name]
    options = argparse.Namespace(matplotlib=matplotlib)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{name}.krec"
    with tempfile.TemporaryDirectory(prefix="krec-sample-") as tmp:
        work = Path(tmp)
        log = work / f"{name}.krec"
        connection_file = work / "frontend.json"
        env = {
            **os.environ,
            # a fresh IPython profile: no user startup files, config or shared history
            "IPYTHONDIR": str(work / "ipython"),
            # debugpy's "frozen modules" warning on stderr, at every kernel start
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        }
        with open(work / "krec.stderr", "wb") as stderr:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "krec.recorder",
                    "record",
                    "--kernel",
                    "python3",
                    "-o",
                    str(log),
                    "--connection-file",
                    str(connection_file),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=env,
            )
        try:
            deadline = time.monotonic() + TIMEOUT
            while not connection_file.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"krec record did not start: {_tail(work)}")
                time.sleep(0.05)
            frontend = Frontend(connection_file, log)
            try:
                frontend.ready()
                sample.drive(frontend, options)
            finally:
                frontend.close()
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            try:
                code = proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)
                raise
        if code != 0:
            raise RuntimeError(f"krec record exited with {code}: {_tail(work)}")
        shutil.move(log, target)
    return target


def _tail(work: Path) -> str:
    text = (work / "krec.stderr").read_text(errors="replace").strip()
    return text.splitlines()[-1] if text else "(no output)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"samples: {', '.join(SAMPLES)}")
    parser.add_argument(
        "-o", "--output", type=Path, default=HERE, help="directory (default: sample_sessions/)"
    )
    parser.add_argument(
        "--matplotlib",
        action="store_true",
        help="plot with matplotlib in rich_display (pip install -e '.[samples]'); that "
        "sample then replays only where the same matplotlib is installed",
    )
    args = parser.parse_args(argv)
    if args.matplotlib and importlib.util.find_spec("matplotlib") is None:
        parser.error("--matplotlib needs matplotlib: pip install -e '.[samples]'")
    unknown = [n for n in args.names if n not in SAMPLES]
    if unknown:
        parser.error(f"no sample named {', '.join(unknown)} (samples: {', '.join(SAMPLES)})")
    for name in args.names or SAMPLES:
        path = record_sample(name, args.output, matplotlib=args.matplotlib)
        with LogReader(path) as reader:
            count = len(reader)
        print(f"{path}  {path.stat().st_size / 1024:.0f} KiB  {count} records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
