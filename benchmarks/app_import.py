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
_MEASURE = ("import time; started = time.perf_counter(); import function_app; "
            "print(time.perf_counter() - started)")


def import_seconds() -> float:
    result = subprocess.run([sys.executable, "-c", _MEASURE], cwd=REPO, capture_output=True, text=True, check=True,
                            env={"PATH": "/usr/bin:/bin"})
    return float(result.stdout.strip())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    times = sorted(import_seconds() for _ in range(args.runs))
    print(f"\nimport function_app, fresh interpreter, {args.runs} runs: median {statistics.median(times):.2f} s, "
          f"fastest {times[0]:.2f} s, slowest {times[-1]:.2f} s")


if __name__ == "__main__":
    main()
