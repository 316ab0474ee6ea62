"""`krec catalog` and `krec query`: real and synthetic logs into Parquet, read back by DuckDB and
pyarrow.dataset, incremental runs, the documented examples, and bad input."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from checklog import violation_log
from conftest import run_krec
from factories import LogBuilder, error, log_header, stream, synthetic_log

from krec.recorder.catalog.query import run_query
from krec.recorder.catalog.schema import METADATA_KEY, SCHEMA_VERSION, TABLES
from krec.recorder.catalog.writer import STATE_FILE, build_catalog
from krec.recorder.log.reader import LogReader

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "sample_sessions"


def _identity_log(path: Path) -> Path:
    """A synthetic session of a JupyterHub user with a client_identity event and a lost beat."""
    header = log_header(user="ada-os", jupyterhub_user="ada")
    with LogBuilder(path, header) as b:
        b.event("client_identity", user="ada", session_path="work/analysis.ipynb", kernel_id="k-1")
        b.execute("print('hi')", [stream("hi\n")], count=1)
        b.execute("1/0", [error()], status="error", count=2, busy_ms=30)
        b.event("heartbeat_lost")
    return path


def _audit_log(path: Path) -> Path:
    with LogBuilder(path, log_header(audit=True)) as b:
        b.execute("secret = 42", count=1)
    return path


def _messages(path: Path) -> int:
    with LogReader(path) as r:
        return sum(not rec.is_event for rec in r)


@pytest.fixture
def logs(tmp_path: Path, rich_log: Path) -> Path:
    """A folder of real recordings (rich_log, samples) and synthetic ones."""
    folder = tmp_path / "logs"
    folder.mkdir()
    shutil.copy(rich_log, folder / "rich.krec")
    for name in ("basics", "stdin", "widgets", "restart"):
        shutil.copy(SAMPLES / f"{name}.krec", folder / f"{name}.krec")
    _identity_log(folder / "identity.krec")
    _audit_log(folder / "audit.krec")
    violation_log(folder / "violation.krec")
    return folder


def test_catalog_of_real_and_synthetic_logs_reads_back_everywhere(logs: Path, tmp_path: Path):
    out = tmp_path / "cat"
    proc = run_krec("catalog", str(logs), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "8 added, 0 replaced, 0 unchanged, 0 failed" in proc.stderr
    assert len(proc.stdout.splitlines()) == 8

    # pyarrow.dataset with the Hive layout: every message of every log, one row each
    messages = ds.dataset(out / "messages", format="parquet", partitioning="hive").to_table()
    expected = {p.name: _messages(p) for p in logs.iterdir()}
    sessions = ds.dataset(out / "sessions", format="parquet", partitioning="hive").to_table()
    assert sessions.num_rows == 8
    by_location = {os.path.basename(r["location"]): r for r in sessions.to_pylist()}
    counts = messages.group_by("log_id").aggregate([("record", "count")]).to_pylist()
    per_id = {c["log_id"]: c["record_count"] for c in counts}
    for name, n in expected.items():
        row = by_location[name]
        assert row["messages"] == n == per_id[row["log_id"]], name
    assert set(messages.column_names) == {c for c, _, _ in TABLES["messages"]} | {"date"}

    # the real recording: kernel facts and latency come from its kernel_info_reply and replies
    rich = by_location["rich.krec"]
    assert rich["kernel_name"] == "python3" and rich["kernel_implementation"] == "ipython"
    assert rich["kernel_version"] and rich["protocol_kernel"].startswith("5.")
    assert rich["requests"] > 10 and rich["errors"] >= 1 and rich["busy_s"] > 0

    # DuckDB through krec query: the same numbers, joined across the views
    proc = run_krec(
        "query",
        str(out),
        "SELECT s.location, count(*) AS n, count(m.latency_ms) AS replies FROM messages m "
        "JOIN sessions s USING (log_id) GROUP BY ALL ORDER BY s.location",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert {os.path.basename(r["location"]): r["n"] for r in rows} == expected
    assert all(r["replies"] > 0 for r in rows)

    # identity, heartbeat loss, audit: as recorded
    ident = by_location["identity.krec"]
    assert (ident["user"], ident["jupyterhub_user"], ident["session_path"], ident["kernel_id"]) == (
        "ada",
        "ada",
        "work/analysis.ipynb",
        "k-1",
    )
    assert ident["heartbeat_losses"] == 1 and ident["errors"] == 1
    audit = run_query(
        str(out),
        "SELECT code FROM messages JOIN sessions USING (log_id) "
        "WHERE audit AND msg_type = 'execute_request'",
    ).to_pylist()
    assert audit == [{"code": None}]
    code = run_query(
        str(out),
        "SELECT m.code FROM messages m JOIN sessions s USING (log_id) "
        "WHERE s.location LIKE '%identity.krec' AND m.msg_type = 'execute_request'",
    )
    assert code.column("code").to_pylist() == ["print('hi')", "1/0"]

    # findings: krec check's, per log
    proc = run_krec("check", str(logs / "violation.krec"), "--json")
    checked = json.loads(proc.stdout)["findings"]
    found = run_query(
        str(out),
        "SELECT rule, record FROM findings JOIN sessions USING (log_id) "
        "WHERE location LIKE '%violation.krec' ORDER BY record, rule",
    ).to_pylist()
    assert found == [{"rule": f["rule"], "record": f["index"]} for f in checked]
    assert by_location["violation.krec"]["finding_errors"] >= 1

    # schema version in each dataset's metadata and in every file
    for dataset in TABLES:
        meta = pq.read_schema(out / dataset / "_common_metadata").metadata
        assert meta[METADATA_KEY] == SCHEMA_VERSION.encode()
    some = next((out / "messages").glob("date=*/*.parquet"))
    assert pq.read_schema(some).metadata[METADATA_KEY] == SCHEMA_VERSION.encode()
    assert pq.ParquetFile(some).metadata.row_group(0).column(0).compression == "ZSTD"


def _files(out: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(out)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in out.rglob("*.parquet")
    }


def test_incremental_adds_new_replaces_changed_rewrites_nothing_else(tmp_path: Path):
    folder = tmp_path / "logs"
    folder.mkdir()
    for name in ("basics", "stdin"):
        shutil.copy(SAMPLES / f"{name}.krec", folder / f"{name}.krec")
    growing = folder / "growing.krec"
    b = LogBuilder(growing)
    b.execute("x = 1", count=1)
    b.flush()
    out = tmp_path / "cat"
    assert build_catalog([str(folder)], str(out)).added and len(_files(out)) >= 6
    before = _files(out)

    again = build_catalog([str(folder)], str(out))
    assert (len(again.unchanged), again.added, again.replaced) == (3, [], [])
    assert _files(out) == before

    b.execute("y = 2", count=2)  # the log grows (a restart appends, say)
    b.close()
    synthetic_log(folder / "new.krec", 500)
    third = build_catalog([str(folder)], str(out))
    assert third.replaced == [str(growing)] and third.added == [str(folder / "new.krec")]
    after = _files(out)
    state = json.loads((out / STATE_FILE).read_text())
    ids = {e["location"]: lid for lid, e in state["logs"].items()}
    old_growing = [k for k in before if os.path.basename(k).startswith(ids[str(growing)])]
    assert old_growing and len(old_growing) < len(before)
    for rel, stamp in before.items():
        if rel in old_growing:
            assert rel not in after  # replaced: new files, the old ones removed
        else:
            assert after[rel] == stamp  # nothing else rewritten
    n = (
        run_query(
            str(out),
            "SELECT count(*) AS n FROM messages m JOIN sessions s "
            f"USING (log_id) WHERE s.location = '{growing}'",
        )
        .column("n")[0]
        .as_py()
    )
    assert n == _messages(growing) == 10
    total = run_query(str(out), "SELECT count(*) AS n FROM sessions").column("n")[0].as_py()
    assert total == 4


def test_catalog_in_a_bucket_read_by_duckdb_and_pyarrow(tmp_path: Path, s3_bucket):
    from s3server import environment

    fs = s3_bucket.filesystem()
    fs.put(str(SAMPLES / "basics.krec"), f"{s3_bucket.name}/logs/basics.krec")
    fs.put(str(SAMPLES / "stdin.krec"), f"{s3_bucket.name}/logs/team/stdin.krec")
    env = environment(s3_bucket.endpoint)
    catalog = f"{s3_bucket.url}/catalog"
    proc = run_krec("catalog", f"{s3_bucket.url}/logs/", "-o", catalog, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "2 added" in proc.stderr
    keys = s3_bucket.keys("catalog")
    assert any(
        re.search(r"catalog/messages/date=\d{4}-\d\d-\d\d/\w+-\w+\.parquet$", k) for k in keys
    )

    dataset = ds.dataset(
        f"{s3_bucket.name}/catalog/messages", filesystem=fs, format="parquet", partitioning="hive"
    )
    expected = _messages(SAMPLES / "basics.krec") + _messages(SAMPLES / "stdin.krec")
    assert dataset.count_rows() == expected

    con = duckdb.connect()
    con.register_filesystem(fs)
    n = con.execute(
        f"SELECT count(*) FROM read_parquet('{catalog}/messages/*/*.parquet', "
        "hive_partitioning = true)"
    ).fetchone()
    assert n == (expected,)

    proc = run_krec("query", catalog, "SELECT count(*) AS n FROM messages", "--csv", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["n", str(expected)]

    again = run_krec("catalog", f"{s3_bucket.url}/logs/", "-o", catalog, env=env)
    assert "0 added, 0 replaced, 2 unchanged" in again.stderr


def test_bad_input_is_one_line_each_and_the_rest_is_catalogued(tmp_path: Path):
    folder = tmp_path / "logs"
    folder.mkdir()
    shutil.copy(SAMPLES / "basics.krec", folder / "basics.krec")
    (folder / "notes.krec").write_text("these are my notes, not a recording\n")
    data = (SAMPLES / "stdin.krec").read_bytes()
    (folder / "damaged.krec").write_bytes(data[: len(data) - 7])  # a crash mid-write
    out = tmp_path / "cat"
    proc = run_krec("catalog", str(folder), str(tmp_path / "missing.krec"), "-o", str(out))
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("krec: error")]
    assert len(errors) == 2 and "Traceback" not in proc.stderr
    assert "notes.krec: " in errors[0] and "not a krec log" in errors[0]
    assert "missing.krec" in errors[1]
    assert re.search(r"krec: warning: .*damaged.krec: truncated last record", proc.stderr)
    sessions = run_query(str(out), "SELECT location, log_warnings FROM sessions ORDER BY 1")
    names = [os.path.basename(x) for x in sessions.column("location").to_pylist()]
    assert names == ["basics.krec", "damaged.krec"]
    assert sessions.column("log_warnings").to_pylist()[1][0].startswith("truncated last record")


def test_query_output_forms_and_errors(tmp_path: Path):
    out = tmp_path / "cat"
    build_catalog([str(SAMPLES / "basics.krec")], str(out))
    sql = (
        "SELECT msg_type, count(*) AS n FROM messages WHERE msg_type LIKE 'execute_%' "
        "GROUP BY ALL ORDER BY msg_type"
    )
    table = run_krec("query", str(out), sql)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["msg_type", "n"] and set(lines[1]) == {"-", " "}
    assert lines[-1] == "(4 rows)"
    as_csv = run_krec("query", str(out), sql, "--csv").stdout.splitlines()
    as_json = json.loads(run_krec("query", str(out), sql, "--json").stdout)
    assert as_csv[0] == "msg_type,n" and len(as_csv) == 5
    assert [f"{r['msg_type']},{r['n']}" for r in as_json] == as_csv[1:]
    assert as_json[0]["msg_type"] == "execute_input" and as_json[0]["n"] == 8

    # no findings in this sample: the findings view is empty, not missing
    empty = run_krec("query", str(out), "SELECT count(*) AS n FROM findings", "--csv")
    assert empty.stdout.splitlines() == ["n", "0"]

    bad = run_krec("query", str(out), "SELEC msg_type FROM messages")
    assert bad.returncode == 2 and bad.stdout == ""
    assert len(bad.stderr.splitlines()) == 1
    assert bad.stderr.startswith("krec: error: query failed: Parser Error: syntax error")
    unknown = run_krec("query", str(out), "SELECT nope FROM messages")
    assert unknown.returncode == 2 and len(unknown.stderr.splitlines()) == 1
    assert '"nope" not found' in unknown.stderr
    missing = run_krec("query", str(tmp_path / "nowhere"), "SELECT 1")
    assert missing.returncode == 2 and "not a krec catalog" in missing.stderr


def test_every_column_is_documented():
    """docs/catalog.md lists every column with the type and meaning schema.py gives it."""
    doc = (ROOT / "docs" / "catalog.md").read_text()
    for dataset, columns in TABLES.items():
        section = doc.split(f"### {dataset}", 1)[1].split("###", 1)[0]
        for name, kind, text in columns:
            assert f"| `{name}` | {kind} | {text} |" in section, f"{dataset}.{name} drifted"


def test_documented_examples_run_and_answer(tmp_path: Path, logs: Path):
    out = tmp_path / "cat"
    result = build_catalog([str(logs)], str(out))
    assert not result.failed
    doc = (ROOT / "docs" / "catalog.md").read_text()
    examples = re.findall(r"```sql\n(.*?)```", doc, re.S)
    assert len(examples) >= 5
    for sql in examples:
        table = run_query(str(out), sql)
        assert table.num_rows > 0, sql


def test_synthetic_log_with_many_days_is_partitioned_by_day(tmp_path: Path):
    path = tmp_path / "long.krec"
    with LogBuilder(path) as b:
        b.execute("a = 1", count=1)
        b.tick(86_400_000)  # a day later
        b.execute("b = 2", [error("NameError", "name 'c' is not defined")], count=2, status="error")
    out = tmp_path / "cat"
    build_catalog([str(path)], str(out))
    days = sorted(p.name for p in (out / "messages").iterdir() if p.is_dir())
    assert days == ["date=2023-11-14", "date=2023-11-15"]
    rows = run_query(
        str(out),
        "SELECT date, ename, execution_count FROM messages WHERE ename IS NOT NULL ORDER BY record",
    ).to_pylist()
    assert [str(r["date"]) for r in rows] == ["2023-11-15", "2023-11-15"]
    assert [r["ename"] for r in rows] == ["NameError", "Error"]
    assert rows[1]["execution_count"] == 2


def test_a_copy_of_a_catalogued_log_stays_skipped_on_later_runs(tmp_path: Path):
    """A truncated copy of a recording (the same log id) is catalogued once, the first
    run's choice: a second run must not swap it in for the unchanged original."""
    folder = tmp_path / "logs"
    folder.mkdir()
    original = folder / "basics.krec"
    shutil.copy(SAMPLES / "basics.krec", original)
    (folder / "copy.krec").write_bytes(original.read_bytes()[:3000])
    out = tmp_path / "cat"
    first = build_catalog([str(folder)], str(out))
    assert first.added == [str(original)] and not first.replaced
    before = {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    for _ in range(2):
        again = build_catalog([str(folder)], str(out))
        assert again.unchanged == [str(original)] and not again.replaced and not again.added
        after = {
            str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()
        }
        del after[STATE_FILE], before[STATE_FILE]
        assert after == before  # nothing rewritten, _common_metadata included
        before = {**after, STATE_FILE: 0}
    n = run_query(str(out), "SELECT count(*) AS n FROM messages").column("n")[0].as_py()
    assert n == _messages(original)


def test_a_catalog_that_cannot_be_written_is_one_line_and_exit_2(tmp_path: Path, s3_bucket):
    """An output that is a file, or a bucket that does not exist (which must not be
    created), is one line and exit 2, not a traceback."""
    from s3server import environment

    log = SAMPLES / "basics.krec"
    proc = run_krec("catalog", str(log), "-o", str(log))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line == f"krec: error: cannot write the catalog {log}: not a directory"

    missing = f"{s3_bucket.name}-missing"
    env = environment(s3_bucket.endpoint)
    proc = run_krec("catalog", str(log), "-o", f"s3://{missing}/catalog", env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"krec: error: cannot write the catalog s3://{missing}/catalog: ")
    assert missing not in s3_bucket.filesystem().ls("")  # no bucket made on a typo
