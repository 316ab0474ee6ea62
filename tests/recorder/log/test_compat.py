"""The format's version chain: older logs read as the current version."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck

from krec.recorder.log.reader import LogReader

GOLDEN = Path(__file__).resolve().parent.parent.parent / "golden"
_SLOW_FIXTURE_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


def test_a_v1_header_upgrades_to_unsealed():
    with LogReader(GOLDEN / "v1.krec") as reader:
        assert reader.header["version"] == 2
        assert reader.header["seal"] is None and reader.header["audit"] is False


def test_an_upgrade_chain_reads_older_logs(monkeypatch):
    """What version 3 will do: v1 headers and records pass through every upgrade function."""
    from krec.recorder.filter import compile_filter
    from krec.recorder.log import compat

    def header_to_v3(header: dict) -> dict:
        return {**header, "version": 3, "clock": "wall"}

    def record_to_v3(record: dict) -> dict:
        record = dict(record)
        if "from" in record:
            record["sender"] = record["from"]
        return record

    monkeypatch.setattr(compat, "CURRENT_VERSION", 3)
    monkeypatch.setitem(compat.UPGRADES, 3, (header_to_v3, record_to_v3))
    with LogReader(GOLDEN / "v1.krec") as reader:
        assert reader.version == 1
        assert reader.header["version"] == 3 and reader.header["clock"] == "wall"
        assert reader.header["seal"] is None  # through the real 1 -> 2 step
        assert reader[3].raw["sender"] == "client"
        assert all("sender" in r.raw for r in reader if not r.is_event)
        # scans of an upgraded log decode through the chain too
        assert list(compile_filter("type:execute_request").scan(reader)) == [3]
        assert list(compile_filter("héllo").scan(reader)) == [3, 5]
