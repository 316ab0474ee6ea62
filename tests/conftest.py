"""Shared fixtures: real kernels behind real krec processes, and process hygiene.

Every test runs with a unique KREC_TEST_ID in its environment; every process it
starts (krec, wrappers, kernels, even orphans) inherits it, so the autouse
``no_leftover_processes`` fixture can find and kill whatever a test left behind,
and fails that test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from s3server import s3_bucket, s3_endpoint  # noqa: F401  (fixtures for every test)

# a verdict never depends on timing: no per-example deadline, no "too slow" health check
# (a loaded machine is slow), for every hypothesis test that does not set its own
settings.register_profile(
    "krec", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("krec")
ROOT = Path(__file__).resolve().parent.parent
KREC = [sys.executable, "-m", "krec.recorder"]
# debugpy (loaded by ipykernel) warns about frozen modules on the kernel's stderr at start-up,
# which a kernel sometimes forwards as a stream message into the first cell's output
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
# kernels of concurrent test workers should not share one IPython history database
os.environ.setdefault("IPYTHONDIR", tempfile.mkdtemp(prefix="krec-tests-ipython-"))
# tests stop krec processes with Ctrl-C's SIGINT, and a child inherits an ignored signal:
# a suite started in the background of a non-interactive shell (`cmd &` ignores SIGINT)
# must still reach them. Children get the default action.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, what: str = "") -> object:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what or predicate}")
        time.sleep(0.05)


def _tagged_processes(tag: str) -> list[int]:
    pids = []
    needle = f"KREC_TEST_ID={tag}".encode()
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read()
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in env.split(b"\0") and state != b"Z":
            pids.append(int(entry))
    return pids


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


@pytest.fixture(autouse=True)
def no_leftover_processes(request: pytest.FixtureRequest) -> Iterator[str]:
    """Fail a test that leaves any process it started (kernel, krec, frontend) running."""
    tag = uuid.uuid4().hex
    old = os.environ.get("KREC_TEST_ID")
    os.environ["KREC_TEST_ID"] = tag
    try:
        yield tag
    finally:
        if old is None:
            os.environ.pop("KREC_TEST_ID", None)
        else:
            os.environ["KREC_TEST_ID"] = old
        deadline = time.monotonic() + 10
        left = _tagged_processes(tag)
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = _tagged_processes(tag)
        if left:
            described = "; ".join(f"{pid}: {_cmdline(pid)}" for pid in left)
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if not getattr(request.node, "krec_allow_leftovers", False):
                pytest.fail(f"test left processes running (killed now): {described}")


def free_port() -> int:
    """A port for a server a test starts (jupyter_server...): krec's choice, reserved
    against other krec processes and below the range the OS hands out, so no kernel of a
    concurrent test takes it before the server binds it."""
    from krec.recorder.connect import free_ports

    return free_ports("127.0.0.1", 1)[0]


def ready_after_restart(kc, timeout: float = 60) -> dict:
    """Wait for a kernel_info_reply from a restarted kernel, however long the restart takes.

    jupyter_client's wait_for_ready gives up as soon as one heartbeat is missed when the
    client has no kernel manager, and heartbeats pause while the kernel restarts; this
    asks kernel_info again until an answer comes or ``timeout`` passes.
    """
    from queue import Empty

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg_id = kc.kernel_info()
        step = time.monotonic() + 2
        while time.monotonic() < min(step, deadline):
            try:
                reply = kc.get_shell_msg(timeout=0.5)
            except Empty:
                continue
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply
    pytest.fail(f"the restarted kernel did not answer kernel_info within {timeout:.0f} s")


def attach(connection_file: Path | str, timeout: float = 60):
    """A started, ready BlockingKernelClient for a connection file."""
    from jupyter_client import BlockingKernelClient

    kc = BlockingKernelClient(connection_file=str(connection_file))
    kc.load_connection_file()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=timeout)
    except BaseException:
        kc.stop_channels()
        raise
    return kc


class Recorder:
    """A `krec record` process (``--kernel python3`` unless ``mode`` says otherwise) and the
    files it writes, for one test."""

    def __init__(
        self,
        tmp: Path,
        kernel: str = "python3",
        mode: list[str] | None = None,
        extra: list[str] | None = None,
        env: dict[str, str] | None = None,
        preexec_fn: Callable[[], None] | None = None,
        log: Path | None = None,
    ) -> None:
        self.log = log or tmp / "session.krec"
        self.connection_file = tmp / "frontend.json"
        self.stderr_path = tmp / "krec.stderr"
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                *KREC,
                "record",
                *(mode or ["--kernel", kernel]),
                "-o",
                str(self.log),
                "--connection-file",
                str(self.connection_file),
                *(extra or []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            preexec_fn=preexec_fn,  # noqa: PLW1509 - only resource limits in tests
        )
        self.clients: list = []
        try:
            wait_for(
                lambda: self.connection_file.exists() or self.proc.poll() is not None,
                90,
                "the frontend connection file",
            )
            if self.proc.poll() is not None:
                raise RuntimeError(f"krec record exited: {self.stderr}")
        except BaseException:
            self.kill()
            raise

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def client(self, ready: bool = True):
        if ready:
            kc = attach(self.connection_file)
        else:
            from jupyter_client import BlockingKernelClient

            kc = BlockingKernelClient(connection_file=str(self.connection_file))
            kc.load_connection_file()
            kc.start_channels()
        self.clients.append(kc)
        return kc

    def stop(self, timeout: float = 90) -> int:
        """Ctrl-C krec, as a user would; return its exit status.

        krec bounds every step of its shutdown (kernel: 8 s, each forwarder: 5 s, each
        context: 10 s); on a loaded machine the sum can pass half a minute."""
        for kc in self.clients:
            kc.stop_channels()
        self.clients.clear()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        finally:
            self._stderr.close()

    def kill(self) -> None:
        for kc in self.clients:
            kc.stop_channels()
        self.clients.clear()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
        self._stderr.close()


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[Callable[..., Recorder]]:
    """Factory: start `krec record` and get clients attached through it; stopped at the end."""
    started: list[Recorder] = []

    def start(**kw) -> Recorder:
        sub = tmp_path / f"rec{len(started)}"
        sub.mkdir()
        rec = Recorder(sub, **kw)
        started.append(rec)
        return rec

    yield start
    for rec in started:
        if rec.proc.poll() is None:
            try:
                rec.stop(20)
            except subprocess.TimeoutExpired:
                rec.kill()
        else:
            for kc in rec.clients:
                kc.stop_channels()


def run_krec(*args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess[str]:
    """Run the krec CLI to completion and capture its output."""
    return subprocess.run(
        [*KREC, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        **kw,
    )


@pytest.fixture(scope="session")
def rich_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One recorded session with every common kind of message (recorded once per worker).

    Read-only: tests that modify a log must copy it first.
    """
    from sessions import drive_rich_session

    rec = Recorder(tmp_path_factory.mktemp("rich"))
    try:
        kc = rec.client()
        drive_rich_session(kc)
    finally:
        code = rec.stop()
    assert code == 0, rec.stderr
    return rec.log
