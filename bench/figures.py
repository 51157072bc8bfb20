"""One line per figure, in one format, recorded for the table `bench.run_all` prints at the end.

    from bench.figures import figure
    figure("summary 10 M lines: province × specialty, one year", "p50 14 ms  p95 16 ms",
           baseline="GROUP BY p95 2271 ms", ratio=16 / 2271,
           target="p95 <= 150 ms and < GROUP BY", meets=True)

prints

    FIGURE  summary 10 M lines: province × specialty, one year   p50 14 ms  p95 16 ms | GROUP BY
    p95 2271 ms | ratio 0.007 | target p95 <= 150 ms and < GROUP BY | meets

(on one line). A figure without a target says "no target" instead of meets or misses.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    name: str
    value: str
    baseline: str
    ratio: str
    target: str
    verdict: str  # meets, misses or no target


FIGURES: list[Figure] = []  # every figure printed in this process, in order


def _ratio(ratio: float | None) -> str:
    if ratio is None:
        return ""
    return f"{ratio:.0f}" if ratio >= 10 else f"{ratio:.2g}"


def figure(name: str, value: str, *, baseline: str = "", ratio: float | None = None,
           target: str = "", meets: bool = False) -> Figure:
    """Print one figure line and record it; `meets` is read only when there is a target."""
    verdict = ("meets" if meets else "misses") if target else "no target"
    recorded = Figure(name, value, baseline, _ratio(ratio), target, verdict)
    FIGURES.append(recorded)
    parts = [f"{name}   {value}", baseline, f"ratio {recorded.ratio}" if recorded.ratio else "",
             f"target {target}" if target else "", verdict]
    print("FIGURE  " + " | ".join(part for part in parts if part), flush=True)
    return recorded


def scale(count: int) -> str:
    """A number of tally lines for a figure's name: "10 M lines", "10.3 M lines", "20,736 lines"."""
    return f"{count / 1e6:.3g} M lines" if count >= 1_000_000 else f"{count:,} lines"


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} {five:.1f} {fifteen:.1f}"


def machine() -> str:
    """When and where: date (UTC), host name, CPUs and load average (1, 5, 15 min)."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{now}, {socket.gethostname()}, {os.cpu_count()} CPUs, load average {_load()}"


def table(started: str, failed: list[str]) -> str:
    """Every recorded figure as a Markdown table, under a line saying when and where."""
    cell = str.maketrans({"|": "/", "\n": " "})
    lines = [f"== all figures, {machine()} (at the start: {started})", "",
             "| figure | value | baseline | ratio | target | verdict |",
             "|---|---|---|---|---|---|"]
    for item in FIGURES:
        parts = (item.name, item.value, item.baseline, item.ratio, item.target, item.verdict)
        lines.append("| " + " | ".join(part.translate(cell) for part in parts) + " |")
    if failed:
        lines += ["", f"Failed (no figures or only some): {', '.join(failed)}."]
    return "\n".join(lines) + "\n"
