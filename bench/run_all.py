"""Run every benchmark in bench/ (`make bench`): each module with a main(), in name order.

`make bench-smoke` runs the same with BENCH_SMOKE=1: each benchmark at a small scale.

Each benchmark prints its figures as `FIGURE` lines (``bench.figures``); after the last one, all of
them are printed again as one Markdown table, which is also written to the file named by
``BENCH_REPORT`` when it is set.

A benchmark that is missing or fails to import is reported and skipped; the others still run.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import time
import traceback
from pathlib import Path

from bench.figures import machine, table

NOT_BENCHMARKS = {"run_all", "trivial", "gunicorn", "load", "figures"}  # helpers, not benchmarks


def main(names: list[str] | None = None) -> int:
    folder = Path(__file__).resolve().parent
    found = sorted(module.name for module in pkgutil.iter_modules([str(folder)])
                   if module.name not in NOT_BENCHMARKS and not module.name.startswith("_"))
    at_start = machine()
    failed = []
    for name in names or found:
        print(f"== bench.{name}", flush=True)
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as error:
            print(f"   skipped: {error}", flush=True)
            continue
        if not hasattr(module, "main"):
            print("   skipped: no main()", flush=True)
            continue
        started = time.monotonic()
        try:
            module.main()
        except Exception:  # noqa: BLE001 - one broken benchmark must not hide the others
            failed.append(name)
            traceback.print_exc()
        print(f"   ({time.monotonic() - started:.0f} s)", flush=True)
    report = table(at_start, failed)
    print(report, flush=True)
    if os.environ.get("BENCH_REPORT"):
        Path(os.environ["BENCH_REPORT"]).write_text(report, encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or None))
