"""Benchmark: `wiaudit detect` over a folder of logs, against the issue's targets.

Run from the repository root: `python -m benchmarks.offline_audit [--quick] [--sizes 1000 10000] [--no-million]
[--cache DIR]`.

Prints, in one run: the 90-day / 1-day ratio on a small folder (the raw-record fixtures); `import function_app`;
for generated sample tenants of 1,000 and 10,000 principals and one of about 1M sign-ins in 7 days (10,000
principals signing in 15 times a day each): the load against DuckDB's own read_json of the same files (ratio), then
the whole detection catalog and the posture checks over the directory snapshot, 7-day and 90-day ranges, with wall
time, CPU time and peak memory; `wiaudit demo` with its store already there (Azurite running). Each tenant is
generated once into the cache folder (default: bench-cache in the local home), under a name that holds the
generator's parameters, never by `make test`. `--quick` measures the small folder, the import and a 100-principal
tenant only. Each measurement of a tenant runs in a fresh interpreter, so its peak memory is its own: the 7-day one
loads the folder in memory and keeps the tables in a DuckDB file, and the 90-day one audits that file, as a second
`wiaudit detect` of the folder does.
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
SEED = 7
MILLION = (10000, 15)  # principals and sign-ins a day each: about 1M sign-ins in 7 days
MEMORY_CAP_GIB = 8  # four times the peak target
TARGETS = {"wall_1m": 30.0, "peak_gib": 2.0, "load_ratio": 1.5, "range_ratio": 1.5, "import_s": 0.5, "demo_s": 20.0}


def measure_tenant(folder: Path, days: int, copy: Path) -> dict[str, float]:
    """In this interpreter: the whole catalog over the last `days` days and the posture checks over the directory
    snapshot. When `copy` does not exist yet, the folder is loaded first (timed, beside DuckDB's own read of the
    same files) and the loaded tables are kept in `copy` afterwards; else that copy is audited, as a second
    `wiaudit detect` of the folder would."""
    from shared.catalog.loader import load_catalog
    from shared.detect import run_catalog
    from shared.directory.model import DirectorySnapshot
    from shared.logsource.database import LogDatabase
    from shared.logsource.embedded import EmbeddedLogSource
    from shared.posture.catalog import load_checks
    from shared.posture.run import run_posture
    from shared.sample_tenant.generator import SAMPLE_NOW

    catalog, checks = load_catalog(), load_checks()
    loading = not copy.exists()
    figures: dict[str, float] = {}
    if loading:
        files = _log_files(folder / "logs")
        started, cpu = time.perf_counter(), time.process_time()
        database = LogDatabase()
        database.load_folder(folder / "logs")
        figures |= {"load_s": time.perf_counter() - started, "load_cpu_s": time.process_time() - cpu}
        threads = database.connection.execute("SELECT current_setting('threads')").fetchone()[0]
        native = {kind: _native_read(files, threads, kind) for kind in ("kept", "scanned")}
        figures |= {"native_kept_s": native["kept"][0], "native_kept_cpu_s": native["kept"][1],
                    "native_scanned_s": native["scanned"][0], "native_scanned_cpu_s": native["scanned"][1],
                    "threads": threads}
    else:
        database = LogDatabase.reopen(copy)
    source = EmbeddedLogSource(database, SAMPLE_NOW)
    since = SAMPLE_NOW - timedelta(days=days)
    wall, cpu = time.perf_counter(), time.process_time()
    run = run_catalog(catalog, source, since, SAMPLE_NOW)
    catalog_wall, catalog_cpu = time.perf_counter() - wall, time.process_time() - cpu
    posture = run_posture(checks, DirectorySnapshot.load(folder / "directory.json"), source, SAMPLE_NOW)
    figures |= {"catalog_s": catalog_wall, "catalog_cpu_s": catalog_cpu,
                "posture_s": time.perf_counter() - wall - catalog_wall,
                "posture_cpu_s": time.process_time() - cpu - catalog_cpu,
                "findings": len(run.findings), "posture_findings": len(posture.findings),
                "errors": len(run.errors) + len(posture.errors), "sign_ins": _sign_ins(database, since),
                "rows": sum(database.count(table) for (table,) in database.connection.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()").fetchall()),
                "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if loading:
        _keep(database, copy)
    return figures


def _keep(database, copy: Path) -> None:
    """The loaded tables in a DuckDB file, for the next measurement of the same tenant."""
    copy.parent.mkdir(parents=True, exist_ok=True)
    building = copy.with_suffix(".building")
    building.unlink(missing_ok=True)
    database.connection.execute(f"ATTACH '{building}' AS kept")
    database.connection.execute("COPY FROM DATABASE memory TO kept")
    database.connection.execute("DETACH kept")
    os.replace(building, copy)


def _sign_ins(database, since: datetime) -> int:
    """Service principal and managed identity sign-ins from `since` on."""
    return sum(database.connection.execute(f'SELECT count(*) FROM "{table}" WHERE "TimeGenerated" >= ?',
                                           [since.replace(tzinfo=None)]).fetchone()[0]
               for table in ("AADServicePrincipalSignInLogs", "AADManagedIdentitySignInLogs"))


def _log_files(folder: Path) -> list[Path]:
    """The files the loader reads, all JSON in a generated tenant (DuckDB's read_json reads exactly these), read
    once beforehand so that neither side pays for a cold disk."""
    from shared.logsource.database import log_files_of
    from shared.logsource.readers import log_format

    files = [path for path, _ in log_files_of(folder)]
    others = [path for path in files if log_format(path) != "json"]
    if others:
        raise SystemExit(f"{others[0]}: not JSON; the comparison with read_json needs a folder of JSON files only")
    for path in files:
        path.read_bytes()
    return files


def _native_read(files: list[Path], threads: int, kind: str) -> tuple[float, float]:
    """Wall and CPU seconds of DuckDB reading the same files itself with as many threads as the loader: `kept`
    into a table (what loading does), or `scanned` to count the rows (nothing kept, so it skips building columns).
    In a fresh interpreter, so the table it keeps does not count in this one's peak memory."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_native_figures, (files, threads, kind))


def _native_figures(files: list[Path], threads: int, kind: str) -> tuple[float, float]:
    import duckdb

    connection = duckdb.connect()
    connection.execute(f"SET threads = {int(threads)}")
    read = "read_json(?, union_by_name=true, format='auto')"
    sql = f"CREATE TABLE native AS SELECT * FROM {read}" if kind == "kept" else f"SELECT count(*) FROM {read}"
    started, cpu = time.perf_counter(), time.process_time()
    connection.execute(sql, [[str(path) for path in files]]).fetchall()
    figures = time.perf_counter() - started, time.process_time() - cpu
    connection.close()
    return figures


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


def tenant(cache: Path, principals: int, sign_ins_per_day: int | None = None) -> Path:
    """The generated tenant in the cache, made once per set of generator parameters (named in the folder)."""
    from shared.sample_tenant.generator import generate

    rate = f"-{sign_ins_per_day}-a-day" if sign_ins_per_day else ""
    folder = cache / f"tenant-seed{SEED}-{GENERATED_DAYS}d-{principals}{rate}"
    if not (folder / "manifest.json").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        print(f"generating a {principals:,}-principal tenant into {folder} (once) ...", flush=True)
        generate(folder, seed=SEED, service_principals=principals, days=GENERATED_DAYS,
                 sign_ins_per_day=sign_ins_per_day)
    return folder


def measured(folder: Path, days: int, copy: Path) -> dict[str, float] | str:
    """The figures of one measurement, or why it failed. Its memory is capped at MEMORY_CAP_GIB, so a load that
    outgrows the target many times over fails on its own instead of pushing a shared machine out of memory."""
    def cap() -> None:
        limit = int(MEMORY_CAP_GIB * 2 ** 30)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))

    result = subprocess.run([sys.executable, "-m", "benchmarks.offline_audit", "--measure", str(folder), str(days),
                             str(copy)], cwd=REPO, capture_output=True, text=True, preexec_fn=cap)
    if result.returncode:
        errors = [line for line in result.stderr.splitlines() if "Error" in line] or ["no message"]
        return f"failed (exit {result.returncode}, memory capped at {MEMORY_CAP_GIB} GiB): {errors[-1]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def demo_seconds(cache: Path) -> tuple[float, float]:
    """Wall and CPU seconds of `wiaudit demo` with its sample tenant and store already there (the second of two runs;
    the CPU time is the command's own, Azurite's not counted)."""
    wiaudit = Path(sys.executable).with_name("wiaudit")
    env = {**os.environ, "WIAUDIT_HOME": str(cache / "demo-home")}
    try:
        subprocess.run([str(wiaudit), "demo"], cwd=REPO, env=env, capture_output=True, check=False)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([str(wiaudit), "demo"], cwd=REPO, env=env, capture_output=True, check=False)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.perf_counter() - started, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    finally:
        subprocess.run([str(wiaudit), "store", "stop"], cwd=REPO, env=env, capture_output=True, check=False)


def load_line(figures: dict[str, float]) -> str:
    """Loading against DuckDB's read_json of the same files: the target's ratio is the worse of wall and CPU time
    against a read that counts the rows (it parses every record but builds no columns, the least any load does);
    against a read into a table (DuckDB's own load: it infers and builds nested columns) for comparison."""
    wall, cpu = figures["load_s"], figures["load_cpu_s"]
    counted, kept = ((figures[f"native_{kind}_s"], figures[f"native_{kind}_cpu_s"]) for kind in ("scanned", "kept"))
    ratio = max(wall / counted[0], cpu / counted[1])
    return (f"    load {wall:.1f} s wall / {cpu:.1f} CPU-s: {wall / counted[0]:.2f}x wall and {cpu / counted[1]:.2f}x "
            f"CPU of DuckDB's read_json counting the same files ({counted[0]:.1f} s / {counted[1]:.1f} CPU-s; "
            f"{_verdict(ratio, TARGETS['load_ratio'], 'x')}); {wall / kept[0]:.2f}x wall and {cpu / kept[1]:.2f}x "
            f"CPU of read_json into a table ({kept[0]:.1f} s / {kept[1]:.1f} CPU-s); {figures['threads']:.0f} "
            "threads each")


def _verdict(value: float, target: float, unit: str) -> str:
    met = value <= target
    return f"target <= {target:g}{unit}: " + ("met" if met else f"NOT met, {value - target:.2f}{unit} over")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small folder, import and a 100-principal tenant")
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--no-million", action="store_true", help="leave out the ~1M sign-in tenant")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--no-demo", action="store_true")
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        folder, days, copy = args.measure
        print(json.dumps(measure_tenant(Path(folder), int(days), Path(copy))))
        return
    from benchmarks.app_import import import_seconds
    from shared.local.home import local_home

    cache = args.cache or local_home() / "bench-cache"
    cache.mkdir(parents=True, exist_ok=True)
    print("\noffline audit (wiaudit detect over a folder; wall seconds on this machine, others' work included)")
    print(f"  {os.cpu_count()} cores, load average {_load()} at the start")
    one, ninety = range_ratio()  # wall, both under the same load
    print(f"  small folder ({SMALL_FOLDER.relative_to(REPO)}): 1 day {one:.2f} s, 90 days {ninety:.2f} s, "
          f"ratio {ninety / one:.2f}x ({_verdict(ninety / one, TARGETS['range_ratio'], 'x')})")
    wall, cpu = sorted((import_seconds() for _ in range(3)), key=lambda figures: figures[1])[1]
    print(f"  import function_app: {cpu:.2f} CPU-s, {wall:.2f} s wall ({_verdict(cpu, TARGETS['import_s'], ' CPU-s')})")
    tenants = [(100, None)] if args.quick else [(size, None) for size in args.sizes]
    if not (args.quick or args.no_million):
        tenants.append(MILLION)
    for principals, sign_ins_per_day in tenants:
        folder = tenant(cache, principals, sign_ins_per_day)
        _report_tenant(folder, cache / "loaded" / f"{folder.name}.duckdb", principals, sign_ins_per_day)
    if not (args.quick or args.no_demo):
        demo, demo_cpu = demo_seconds(cache)
        print(f"  wiaudit demo, store already there: {demo:.1f} s wall / {demo_cpu:.1f} CPU-s "
              f"({_verdict(demo, TARGETS['demo_s'], ' s')})")
    print(f"  load average {_load()} at the end")


def _report_tenant(folder: Path, copy: Path, principals: int, sign_ins_per_day: int | None) -> None:
    """Both ranges in fresh interpreters: the 7-day one loads the folder and keeps a copy, the 90-day one audits
    that copy."""
    copy.unlink(missing_ok=True)
    habit = f"{sign_ins_per_day} sign-ins a day each" if sign_ins_per_day else "usual activity"
    for days in (7, 90):
        figures = measured(folder, days, copy)
        if isinstance(figures, str):
            print(f"  {principals:,} principals ({habit}), {days}-day range: {figures}")
            return
        if "load_s" in figures:
            print(f"  {principals:,} principals ({habit}), {figures['rows']:,.0f} rows")
            print(load_line(figures))
        audit = figures["catalog_s"] + figures["posture_s"]
        peak = _verdict(figures["peak_mib"] / 1024, TARGETS["peak_gib"], " GiB")
        over = "with the tables in memory" if "load_s" in figures else "over the copy"
        print(f"    {days}-day range, {figures['sign_ins']:,} sign-ins: catalog {figures['catalog_s']:.1f} s wall / "
              f"{figures['catalog_cpu_s']:.1f} CPU-s ({figures['findings']:,} findings), posture "
              f"{figures['posture_s']:.1f} s / {figures['posture_cpu_s']:.1f} CPU-s "
              f"({figures['posture_findings']:,} findings), {figures['errors']} failed; peak "
              f"{figures['peak_mib']:,.0f} MiB {over} ({peak})")
        if days == 7 and figures["sign_ins"] >= 500_000:
            print(f"    catalog + posture {audit:.1f} s wall at ~{figures['sign_ins'] / 1e6:.1f}M sign-ins in 7 days "
                  f"({_verdict(audit, TARGETS['wall_1m'], ' s')}); with the load {audit + figures['load_s']:.1f} s")


def _load() -> str:
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
