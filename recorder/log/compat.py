"""Log format versions: check a header, and upgrade old records one version at a time.

Every format version N > 1 adds one entry to ``UPGRADES`` that turns a version
N-1 header and record into version N, so a log written by any earlier krec stays
readable (tests/golden holds one file per version).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from krec.recorder.errors import LogFormatError

FORMAT_NAME = "krec"
CURRENT_VERSION = 2

Upgrade = tuple[
    Callable[[dict[str, Any]], dict[str, Any]], Callable[[dict[str, Any]], dict[str, Any]] | None
]


def _header_1_to_2(header: dict[str, Any]) -> dict[str, Any]:
    """Version 2 adds the hash chain (``seal`` parameters, None: unsealed) and audit logs."""
    return {**header, "version": 2, "seal": None, "audit": bool(header.get("audit", False))}


#: version N -> (header upgrade, record upgrade) from N-1 to N; a record upgrade of None
#: leaves records as they are (version 2 only adds records, seal, and fields, dropped).
UPGRADES: dict[int, Upgrade] = {2: (_header_1_to_2, None)}


def check_header(header: object, path: str = "") -> int:
    """Return the format version of a decoded header, or raise LogFormatError."""
    where = f"{path}: " if path else ""
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise LogFormatError(f"{where}not a krec log (no krec header)")
    version = header.get("version")
    if not isinstance(version, int) or version < 1:
        raise LogFormatError(f"{where}krec header has an invalid version {version!r}")
    if version > CURRENT_VERSION:
        raise LogFormatError(
            f"{where}log format version {version} is newer than this krec understands "
            f"(version {CURRENT_VERSION}); upgrade krec to read it"
        )
    return version


def upgrade_header(header: dict[str, Any], version: int) -> dict[str, Any]:
    """Bring a header from ``version`` up to the current version."""
    for target in range(version + 1, CURRENT_VERSION + 1):
        header = UPGRADES[target][0](header)
    return header


def record_upgrader(version: int) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
    """A function upgrading one record from ``version``, or None when it is current."""
    steps = [
        step
        for target in range(version + 1, CURRENT_VERSION + 1)
        if (step := UPGRADES[target][1]) is not None
    ]
    if not steps:
        return None

    def upgrade(record: dict[str, Any]) -> dict[str, Any]:
        for step in steps:
            record = step(record)
        return record

    return upgrade
