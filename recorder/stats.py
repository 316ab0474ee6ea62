"""Moved to krec.recorder.log.stats (the numbers) and krec.recorder.cli.stats (the command)."""

from krec.recorder.log.stats import Stats, _union_length, collect, percentile, to_json

__all__ = ["Stats", "_union_length", "collect", "percentile", "to_json"]
