"""Benchmark: how long `import function_app` takes in a fresh interpreter (the Function's cold start share).

Run from the repository root: `python -m benchmarks.app_import [--runs 5]`. tests/test_function_app.py checks
what the import loads; how long it takes depends on the machine, so the figure lives here.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_MEASURE = ("import time; started, cpu = time.perf_counter(), time.process_time(); import function_app; "
            "print(time.perf_counter() - started, time.process_time() - cpu)")


def import_seconds() -> tuple[float, float]:
    """Wall and CPU seconds of the import (on a busy machine the CPU figure is the one to compare)."""
    result = subprocess.run([sys.executable, "-c", _MEASURE], cwd=REPO, capture_output=True, text=True, check=True,
                            env={"PATH": "/usr/bin:/bin"})
    wall, cpu = result.stdout.split()
    return float(wall), float(cpu)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    walls, cpus = zip(*(import_seconds() for _ in range(args.runs)), strict=True)
    print(f"\nimport function_app, fresh interpreter, {args.runs} runs: median {statistics.median(cpus):.2f} CPU-s "
          f"(fastest {min(cpus):.2f}, slowest {max(cpus):.2f}), median {statistics.median(walls):.2f} s wall")


if __name__ == "__main__":
    main()
