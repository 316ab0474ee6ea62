"""The .krec log: writer, reader, record, header, the format's version chain (compat),
the exchange model and the one rule of which request owns a record (owner).

``LogReader``, ``LogWriter`` and ``Record`` are importable from here; they load on
first use, so importing a submodule (compat, seal...) does not import them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from krec.recorder.log.reader import LogReader
    from krec.recorder.log.record import Record
    from krec.recorder.log.writer import LogWriter

__all__ = ["LogReader", "LogWriter", "Record"]

_HOMES = {"LogReader": "reader", "LogWriter": "writer", "Record": "record"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
