"""Human spellings of durations: the one place that says how krec prints how long something took.

A style is a list of steps, each the value below which it applies and how it spells
the value, tried in order; past the last step the value is spelled in minutes. The
viewer counts in nanoseconds (``format_duration``: ``12.3 ms``, or ``short`` to fit a
7-cell column: ``5.7ms``), ``krec stats`` in seconds (``format_seconds``: ``2.5 min``).
Each step does its arithmetic in the caller's unit, so the output is exactly what each
caller printed before the styles shared a home. (The filter language's exact, parse-able
spelling of a duration is another thing: krec.recorder.filter.operators.spell_duration.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

Step = tuple[float, Callable[[float], str]]  # (applies below this value, spelling)


def _minutes(ns: float) -> str:
    m, s = divmod(ns / 1e9, 60)
    return f"{int(m)} m {int(s)} s"


def _minutes_short(ns: float) -> str:
    m, s = divmod(int(ns / 1e9), 60)
    return f"{m}m{s:02d}s"


#: the viewer's detail panes and timeline: ``850 us``, ``12.3 ms``, ``4.20 s``, ``3 m 12 s``
LONG: Sequence[Step] = (
    (1_000_000, lambda ns: f"{ns / 1e3:.0f} us"),
    (1_000_000_000, lambda ns: f"{ns / 1e6:.1f} ms"),
    (60_000_000_000, lambda ns: f"{ns / 1e9:.2f} s"),
    (float("inf"), _minutes),
)
#: the thread list's 7-cell column: ``850us``, ``5.7ms``, ``404ms``, ``2.00s``, ``3m12s``
SHORT: Sequence[Step] = (
    (1_000_000, lambda ns: f"{ns / 1e3:.0f}us"),
    (10_000_000, lambda ns: f"{ns / 1e6:.1f}ms"),
    (1_000_000_000, lambda ns: f"{ns / 1e6:.0f}ms"),
    (60_000_000_000, lambda ns: f"{ns / 1e9:.2f}s"),
    (float("inf"), _minutes_short),
)
#: krec stats, in seconds: ``850 us``, ``12.3 ms``, ``4.20 s`` up to two minutes, ``2.5 min``
SECONDS: Sequence[Step] = (
    (1e-3, lambda s: f"{s * 1e6:.0f} us"),
    (1, lambda s: f"{s * 1e3:.1f} ms"),
    (120, lambda s: f"{s:.2f} s"),
    (float("inf"), lambda s: f"{s / 60:.1f} min"),
)


def spell(value: float, style: Sequence[Step]) -> str:
    """``value`` spelled by the first step of ``style`` it is below (the last step takes all)."""
    for below, spelling in style:
        if value < below:
            return spelling(value)
    return style[-1][1](value)


def format_duration(ns: float, *, short: bool = False) -> str:
    """A duration in nanoseconds: ``12.3 ms`` (``short``: at most 7 cells, ``5.7ms``)."""
    return spell(ns, SHORT if short else LONG)


def format_seconds(seconds: float) -> str:
    """A duration in seconds, as ``krec stats`` prints it: ``12.3 ms``, ``4.20 s``, ``2.5 min``."""
    return spell(seconds, SECONDS)
