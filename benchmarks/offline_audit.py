"""Benchmark: `wiaudit detect` over a folder of logs, against the issue's targets.

Run from the repository root: `python -m benchmarks.offline_audit [--quick] [--sizes 1000 10000] [--cache DIR]`.

Prints, in one run: loading time against DuckDB's own read_json of the same files (ratio); the whole detection
catalog over generated sample tenants (7-day and 90-day ranges) with wall time, CPU time and peak memory; the
90-day / 1-day ratio on a small folder (the raw-record fixtures); `import function_app`; `wiaudit demo` with its
store already there. Big tenants are generated once into the cache folder (default: bench-cache in the local
home), never by `make test`. `--quick` measures the small folder, the import and a 100-principal tenant only.
Each measurement of a tenant runs in a fresh interpreter, so its peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SMALL_FOLDER = REPO / "tests" / "fixtures" / "raw" / "tenant"
SMALL_NOW = datetime(2026, 3, 11, tzinfo=UTC)
GENERATED_DAYS = 8
TARGETS = {"wall_1m": 30.0, "peak_gib": 2.0, "load_ratio": 1.5, "range_ratio": 1.5, "import_s": 0.5, "demo_s": 20.0}


def measure_tenant(folder: Path, days: int) -> dict[str, float]:
    """In this interpreter: load the folder, read it natively, run the catalog over the last `days` days."""
    from shared.catalog.loader import load_catalog
    from shared.detect import run_catalog
    from shared.logsource.database import LogDatabase
    from shared.logsource.embedded import EmbeddedLogSource
    from shared.sample_tenant.generator import SAMPLE_NOW

    catalog = load_catalog()
    started = time.perf_counter()
    database = LogDatabase()
    report = database.load_folder(folder / "logs")
    load = time.perf_counter() - started
    native = _native_read(folder / "logs")
    source = EmbeddedLogSource(database, SAMPLE_NOW)
    wall, cpu = time.perf_counter(), time.process_time()
    run = run_catalog(catalog, source, SAMPLE_NOW - timedelta(days=days), SAMPLE_NOW)
    return {"load_s": load, "native_s": native, "audit_s": time.perf_counter() - wall,
            "audit_cpu_s": time.process_time() - cpu, "findings": len(run.findings), "errors": len(run.errors),
            "sign_ins": report.rows["AADServicePrincipalSignInLogs"] + report.rows["AADManagedIdentitySignInLogs"],
            "rows": sum(report.rows.values()), "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _native_read(folder: Path) -> float:
    """DuckDB reading the same files itself: every JSON file, schema inferred, rows counted."""
    import duckdb

    files = [str(path) for path in sorted(folder.rglob("*.json*")) if path.is_file()]
    started = time.perf_counter()
    duckdb.connect().execute("SELECT count(*) FROM read_json(?, union_by_name=true, format='auto')",
                             [files]).fetchall()
    return time.perf_counter() - started


def range_ratio(runs: int = 2) -> tuple[float, float]:
    """Wall seconds of the catalog over 1 day and over 90 days of the small folder (best of `runs`, warm)."""
    from shared.catalog.loader import load_catalog
    from shared.detect import run_catalog
    from shared.logsource.embedded import EmbeddedLogSource

    catalog = load_catalog()
    source, _ = EmbeddedLogSource.from_folder(SMALL_FOLDER, SMALL_NOW)
    best = {}
    for days in (1, 90, 1, 90)[:2 * runs]:
        started = time.perf_counter()
        run_catalog(catalog, source, SMALL_NOW - timedelta(days=days), SMALL_NOW)
        best[days] = min(best.get(days, float("inf")), time.perf_counter() - started)
    return best[1], best[90]


def tenant(cache: Path, principals: int) -> Path:
    from shared.sample_tenant.generator import generate

    folder = cache / f"tenant-{principals}"
    if not (folder / "manifest.json").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        print(f"generating a {principals}-principal tenant into {folder} (once) ...", flush=True)
        generate(folder, seed=7, service_principals=principals, days=GENERATED_DAYS)
    return folder


def measured(folder: Path, days: int) -> dict[str, float]:
    result = subprocess.run([sys.executable, "-m", "benchmarks.offline_audit", "--measure", str(folder), str(days)],
                            cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def demo_seconds(cache: Path) -> float:
    """`wiaudit demo` with its sample tenant and store already there (the second of two runs)."""
    wiaudit = Path(sys.executable).with_name("wiaudit")
    env = {**os.environ, "WIAUDIT_HOME": str(cache / "demo-home")}
    try:
        subprocess.run([str(wiaudit), "demo"], cwd=REPO, env=env, capture_output=True, check=False)
        started = time.perf_counter()
        subprocess.run([str(wiaudit), "demo"], cwd=REPO, env=env, capture_output=True, check=False)
        return time.perf_counter() - started
    finally:
        subprocess.run([str(wiaudit), "store", "stop"], cwd=REPO, env=env, capture_output=True, check=False)


def _verdict(value: float, target: float, unit: str) -> str:
    met = value <= target
    return f"target <= {target:g}{unit}: " + ("met" if met else f"NOT met, {value - target:.2f}{unit} over")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small folder, import and a 100-principal tenant")
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--no-demo", action="store_true")
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure_tenant(Path(args.measure[0]), int(args.measure[1]))))
        return
    from benchmarks.app_import import import_seconds
    from shared.local.home import local_home

    cache = args.cache or local_home() / "bench-cache"
    cache.mkdir(parents=True, exist_ok=True)
    print("\noffline audit (wiaudit detect over a folder; wall seconds on this machine, others' work included)")
    one, ninety = range_ratio()  # wall, both under the same load
    print(f"  small folder ({SMALL_FOLDER.relative_to(REPO)}): 1 day {one:.2f} s, 90 days {ninety:.2f} s, "
          f"ratio {ninety / one:.2f}x ({_verdict(ninety / one, TARGETS['range_ratio'], 'x')})")
    wall, cpu = sorted((import_seconds() for _ in range(3)), key=lambda figures: figures[1])[1]
    print(f"  import function_app: {cpu:.2f} CPU-s, {wall:.2f} s wall ({_verdict(cpu, TARGETS['import_s'], ' CPU-s')})")
    for principals in ([100] if args.quick else args.sizes):
        folder = tenant(cache, principals)
        for days in (7, 90):
            figures = measured(folder, days)
            ratio = figures["load_s"] / figures["native_s"]
            peak = _verdict(figures["peak_mib"] / 1024, TARGETS["peak_gib"], " GiB")
            print(f"  {principals:,} principals, {figures['rows']:,} rows ({figures['sign_ins']:,} sign-ins), "
                  f"{days}-day range: audit {figures['audit_s']:.1f} s wall / {figures['audit_cpu_s']:.1f} CPU-s, "
                  f"{figures['findings']} findings, {figures['errors']} failed rules; load {figures['load_s']:.1f} s "
                  f"= {ratio:.1f}x DuckDB's read_json ({_verdict(ratio, TARGETS['load_ratio'], 'x')}); peak "
                  f"{figures['peak_mib']:,.0f} MiB ({peak})")
            if figures["sign_ins"] >= 500_000:
                total = figures["load_s"] + figures["audit_s"]
                print(f"    load + audit {total:.1f} s at ~{figures['sign_ins'] / 1e6:.1f}M sign-ins "
                      f"({_verdict(total, TARGETS['wall_1m'], ' s')})")
    if not (args.quick or args.no_demo):
        demo = demo_seconds(cache)
        print(f"  wiaudit demo, store already there: {demo:.1f} s ({_verdict(demo, TARGETS['demo_s'], ' s')})")


if __name__ == "__main__":
    main()
