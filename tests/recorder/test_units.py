"""How krec spells a duration (krec.recorder.units), style by style, at every threshold."""

from __future__ import annotations

import pytest

from krec.recorder.units import format_duration, format_seconds


@pytest.mark.parametrize(
    ("ns", "long", "short"),
    [
        (0, "0 us", "0us"),
        (850_000, "850 us", "850us"),
        (999_999, "1000 us", "1000us"),
        (1_000_000, "1.0 ms", "1.0ms"),
        (5_700_000, "5.7 ms", "5.7ms"),
        (9_999_999, "10.0 ms", "10.0ms"),
        (10_000_000, "10.0 ms", "10ms"),
        (12_340_000, "12.3 ms", "12ms"),
        (404_000_000, "404.0 ms", "404ms"),
        (999_999_999, "1000.0 ms", "1000ms"),
        (1_000_000_000, "1.00 s", "1.00s"),
        (2_000_000_000, "2.00 s", "2.00s"),
        (4_200_000_000, "4.20 s", "4.20s"),
        (59_999_999_999, "60.00 s", "60.00s"),
        (60_000_000_000, "1 m 0 s", "1m00s"),
        (192_000_000_000, "3 m 12 s", "3m12s"),
        (3_723_000_000_000, "62 m 3 s", "62m03s"),
    ],
)
def test_nanoseconds_long_and_short(ns: int, long: str, short: str):
    assert format_duration(ns) == long
    assert format_duration(ns, short=True) == short


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0 us"),
        (0.00085, "850 us"),
        (0.001, "1.0 ms"),
        (0.01234, "12.3 ms"),
        (0.9999, "999.9 ms"),
        (1.0, "1.00 s"),
        (4.2, "4.20 s"),
        (119.99, "119.99 s"),
        (120.0, "2.0 min"),
        (150.0, "2.5 min"),
        (3723.0, "62.0 min"),
    ],
)
def test_seconds_as_krec_stats_prints_them(seconds: float, text: str):
    assert format_seconds(seconds) == text
