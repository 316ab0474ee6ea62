"""Logs delivered to a real S3 API server (moto's, on 127.0.0.1): recorded through
`krec record -o s3://...`, rotated into segments during a session, a SIGKILLed recorder's
spool uploaded by the next run, read back by every reading command; no credential anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import Recorder, run_krec
from s3server import CREDENTIALS, Bucket
from sessions import execute

from krec.recorder.log.reader import LogReader
from krec.recorder.log.storage import local_log
from krec.recorder.log.writer import complete_length

pytestmark = pytest.mark.timeout(240)

SECRET = CREDENTIALS["AWS_SECRET_ACCESS_KEY"]

# a frontend session driven by a script, as a notebook tool would
SCRIPT = """\
import sys, time
from jupyter_client.manager import start_new_kernel
km, kc = start_new_kernel(kernel_name="python3")
try:
    for i in range(int(sys.argv[1])):
        kc.execute_interactive(f"print('line {i} ' + 'x' * 300)", timeout=60,
                               output_hook=lambda m: None)
    if len(sys.argv) > 2:  # wait until a segment is in the store while the session runs
        import s3fs
        fs = s3fs.S3FileSystem(skip_instance_cache=True)
        deadline = time.monotonic() + 60
        while not [k for k in fs.find(sys.argv[2]) if k.endswith(".part")]:
            assert time.monotonic() < deadline, "no segment uploaded during the session"
            time.sleep(0.2)
        kc.execute_interactive("print('after a segment')", timeout=60, output_hook=lambda m: None)
finally:
    kc.stop_channels()
    km.shutdown_kernel()
"""


@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "spool"
    monkeypatch.setenv("KREC_SPOOL", str(folder))
    monkeypatch.setenv("KREC_CACHE", str(tmp_path / "cache"))
    return folder


def _record(
    tmp_path: Path, url: str, *args: str, cells: int = 3, extra: list[str] = ()
) -> subprocess.CompletedProcess:
    script = tmp_path / "session.py"
    script.write_text(SCRIPT)
    return run_krec(
        "record",
        "-o",
        url,
        *extra,
        "--",
        sys.executable,
        str(script),
        str(cells),
        *args,
        timeout=180,
    )


def _no_secret(*places: Path | str) -> None:
    for place in places:
        if isinstance(place, Path):
            files = [place] if place.is_file() else [p for p in place.rglob("*") if p.is_file()]
            for f in files:
                assert SECRET.encode() not in f.read_bytes(), f
        else:
            assert SECRET not in place


def test_a_session_recorded_to_a_bucket_reads_back_everywhere(
    tmp_path: Path, s3_bucket: Bucket, spool: Path
) -> None:
    done = _record(tmp_path, f"{s3_bucket.url}/team/logs")
    assert done.returncode == 0, done.stderr
    keys = s3_bucket.keys("team/logs")
    assert keys and all(k.endswith(".part") for k in keys), keys
    (log_url,) = {f"s3://{k.rsplit('/', 1)[0]}" for k in keys}
    assert log_url.split("/")[-1].startswith("python3-") and log_url.endswith(".krec")
    assert log_url in done.stderr  # "recorded 1 kernel session(s): s3://..."
    shown = run_krec("show", log_url)
    assert shown.returncode == 0, shown.stderr
    assert "execute_request" in shown.stdout and "line 2" in shown.stdout
    for command in (["stats", log_url], ["check", log_url], ["export", log_url, "--to", "jsonl"]):
        result = run_krec(*command)
        assert result.returncode in (0, 1), (command, result.stderr)
        assert result.stdout
    with LogReader(local_log(log_url)) as reader:
        assert not reader.warnings
        assert reader.header["user"]
        assert reader[len(reader) - 2].event == "recording_stopped"
        assert reader[len(reader) - 1].event == "seal"  # closed: the final seal
    assert run_krec("verify", "--strict", log_url).returncode == 0  # one chain over segments
    assert not any(spool.rglob("*.krec"))  # uploaded: the spool is emptied
    _no_secret(done.stderr, shown.stdout, spool, Path(local_log(log_url)))


def test_a_long_session_is_uploaded_in_segments_while_it_runs(
    tmp_path: Path, s3_bucket: Bucket, spool: Path
) -> None:
    prefix = f"{s3_bucket.name}/rotating"
    done = _record(
        tmp_path,
        f"s3://{prefix}",
        prefix,
        cells=40,
        extra=["--segment-size", "4k", "--segment-seconds", "0.5"],
    )
    assert done.returncode == 0, done.stderr
    keys = s3_bucket.keys("rotating")
    # one segment was in the store while the session ran (the script waited for it), and
    # the cell run after that is in a later one: at least two, however fast the cells ran
    assert len(keys) >= 2, keys
    (log_url,) = {f"s3://{k.rsplit('/', 1)[0]}" for k in keys}
    fs = s3_bucket.filesystem()
    joined = tmp_path / "joined.krec"
    with joined.open("wb") as out:
        for key in keys:  # every segment ends on a record boundary
            out.write(fs.cat_file(key))
            out.flush()
            assert complete_length(str(joined)) == joined.stat().st_size, key
    with LogReader(local_log(log_url)) as reader:
        assert not reader.warnings and not reader.truncated
        code = [r.content["code"] for r in reader if r.msg_type == "execute_request"]
    assert len(code) == 41 and code[-1] == "print('after a segment')"


def test_a_killed_recorder_leaves_a_spool_that_the_next_run_uploads(
    tmp_path: Path, s3_bucket: Bucket, spool: Path
) -> None:
    url = f"{s3_bucket.url}/killed/session.krec"
    rec = Recorder(tmp_path, log=url)  # type: ignore[arg-type]
    try:
        kc = rec.client()
        assert execute(kc, "survivor = 'kept'")["content"]["status"] == "ok"
    finally:
        rec.kill()  # SIGKILL: no chance to upload
    assert s3_bucket.keys("killed") == []
    (spooled,) = spool.rglob("session.krec")
    assert b"survivor" in spooled.read_bytes()
    # the next krec that records on this machine uploads it
    done = _record(tmp_path, f"{s3_bucket.url}/next", cells=1)
    assert done.returncode == 0, done.stderr
    assert s3_bucket.keys("killed")
    shown = run_krec("show", url)
    assert shown.returncode == 0 and "survivor" in shown.stdout, shown.stderr
    assert not any(spool.rglob("*.krec"))
    _no_secret(rec.stderr, done.stderr)


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("s3://someone:" + SECRET + "@bucket/logs", "must not carry credentials"),
        ("s3://no-such-bucket-krec/logs", "no-such-bucket-krec"),
        ("nosuchscheme://x/y", "nosuchscheme://x/y"),
        ("s3://", "no bucket or path"),
    ],
)
def test_an_unusable_destination_is_one_line_and_exit_2(
    tmp_path: Path, s3_bucket: Bucket, spool: Path, location: str, message: str
) -> None:
    done = run_krec("record", "-o", location, "--", sys.executable, "-c", "pass")
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("krec: error: ") and message in line
    _no_secret(done.stderr)


def test_missing_credentials_is_one_line_and_exit_2(
    tmp_path: Path, s3_bucket: Bucket, spool: Path
) -> None:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("AWS_") or k == "AWS_ENDPOINT_URL"
    }
    env["AWS_SHARED_CREDENTIALS_FILE"] = env["AWS_CONFIG_FILE"] = str(tmp_path / "none")
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    done = run_krec(
        "record", "-o", f"{s3_bucket.url}/x", "--", sys.executable, "-c", "pass", env=env
    )
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "credentials" in line.lower(), line


def test_a_store_that_fails_while_recording_is_a_warning_and_the_spool_keeps_the_log(
    tmp_path: Path, s3_bucket: Bucket, spool: Path
) -> None:
    script = tmp_path / "session.py"
    script.write_text(SCRIPT)
    # the bucket is removed after krec has checked it: uploads fail, the session goes on
    remove = textwrap.dedent(f"""\
        import s3fs, subprocess, sys
        s3fs.S3FileSystem(skip_instance_cache=True).rm("{s3_bucket.name}", recursive=True)
        sys.exit(subprocess.call([sys.executable, {str(script)!r}, "2"]))
    """)
    (tmp_path / "remove.py").write_text(remove)
    done = run_krec(
        "record",
        "-o",
        f"{s3_bucket.url}/logs",
        "--",
        sys.executable,
        str(tmp_path / "remove.py"),
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert "warning: cannot upload" in done.stderr
    (spooled,) = spool.rglob("*.krec")
    with LogReader(spooled) as reader:
        assert [r.content["code"] for r in reader if r.msg_type == "execute_request"][:2] == [
            "print('line 0 ' + 'x' * 300)",
            "print('line 1 ' + 'x' * 300)",
        ]
    _no_secret(done.stderr, spool)


def test_recording_kernel_manager_records_to_a_url_and_restarts_into_it(
    tmp_path: Path, s3_bucket: Bucket, spool: Path
) -> None:
    from krec.recorder import RecordingKernelManager

    url = f"{s3_bucket.url}/managed/session.krec"
    km = RecordingKernelManager(kernel_name="python3", log_path=url)
    km.start_kernel()
    try:
        for code in ("a = 1", "b = 2"):
            kc = km.client()
            kc.start_channels()
            try:
                kc.wait_for_ready(timeout=60)
                assert execute(kc, code)["content"]["status"] == "ok"
            finally:
                kc.stop_channels()
            if code == "a = 1":
                km.restart_kernel(now=False)
    finally:
        km.shutdown_kernel(now=False)
    with LogReader(local_log(url)) as reader:
        assert not reader.warnings
        records = list(reader)
    assert [r.content["code"] for r in records if r.msg_type == "execute_request"] == [
        "a = 1",
        "b = 2",
    ]
    assert [r.event for r in records if r.event == "restart"] == ["restart"]
    assert not any(spool.rglob("*.krec"))


def test_krec_provisioner_delivers_its_logs_to_a_bucket(
    tmp_path: Path, s3_bucket: Bucket, spool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from jupyter_client.manager import KernelManager

    from krec.recorder.capture.provisioner import provisioner_spec
    from krec.recorder.kernelspec import find_spec

    folder = tmp_path / "jupyter" / "kernels" / "py-krec"
    folder.mkdir(parents=True)
    spec = provisioner_spec(find_spec("python3"), f"{s3_bucket.url}/fleet")
    (folder / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    km = KernelManager(kernel_name="py-krec")
    km.start_kernel()
    try:
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)
            assert execute(kc, "provisioned = True")["content"]["status"] == "ok"
        finally:
            kc.stop_channels()
    finally:
        km.shutdown_kernel(now=False)
    keys = s3_bucket.keys("fleet")
    (log_url,) = {f"s3://{k.rsplit('/', 1)[0]}" for k in keys}
    with LogReader(local_log(log_url)) as reader:
        assert reader.header["mode"] == "provisioner"
        assert [r.content["code"] for r in reader if r.msg_type == "execute_request"] == [
            "provisioned = True"
        ]
    assert not any(spool.rglob("*.krec"))


def test_a_log_left_for_a_restart_is_not_taken_for_a_leftover_until_it_is_stale(
    tmp_path: Path, s3_bucket: Bucket, spool: Path
) -> None:
    from krec.recorder.capture.upload import (
        MANIFEST,
        RESTART_GRACE,
        open_log_file,
        upload_leftovers,
    )
    from krec.recorder.log.header import log_header

    url = f"{s3_bucket.url}/restarting/session.krec"
    log = open_log_file(url, log_header(kernel={"name": "python3"}))
    log.writer.write_event("kernel_started", pid=1)
    log.finish(keep=True)  # a wrapper whose kernel restarts: its successor appends
    assert upload_leftovers() == []
    manifest = Path(log.entry or "") / MANIFEST
    old = manifest.stat().st_mtime - RESTART_GRACE - 1
    os.utime(manifest, (old, old))  # no successor came
    assert upload_leftovers() == [url]
    assert not Path(log.entry or "").exists()
    with LogReader(local_log(url)) as reader:
        assert [r.event for r in reader] == ["kernel_started", "seal"]
