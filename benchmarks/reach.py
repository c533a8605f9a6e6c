"""Benchmark of reach: how many KQL queries run offline on the sample tenant, before and after the project's
rewrite layer (shared/kql/rewrite.py), and what the refused ones need, by feature.

Two collections: the project's own compatibility queries (benchmarks/compat_queries, always), and Microsoft
Sentinel's service-principal, managed-identity and application rules and hunting queries listed in
benchmarks/sentinel_reach.yaml, read from a local clone of Azure/Azure-Sentinel when one is given
(`--sentinel-repo DIR` or SENTINEL_REPO); the benchmark never downloads it.

Run from the repository root: `python -m benchmarks.reach [--tenant DIR] [--sentinel-repo DIR]`.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import yaml

from shared.hunt.outcome import FAILED, RAN, REFUSED, Outcome, run_queries
from shared.hunt.queries import HuntQuery, collect, read_file
from shared.logsource.database import LogDatabase
from shared.logsource.embedded import EmbeddedLogSource
from shared.logsource.values import parse_datetime
from shared.text import plural

HERE = Path(__file__).resolve().parent
COMPAT = HERE / "compat_queries"
SENTINEL_LIST = HERE / "sentinel_reach.yaml"


@dataclass
class Reach:
    outcomes: list[Outcome]
    counts: Counter[str] = field(init=False)
    refused_by: Counter[str] = field(init=False)

    def __post_init__(self) -> None:
        self.counts = Counter(outcome.status for outcome in self.outcomes)
        self.refused_by = Counter(outcome.feature for outcome in self.outcomes if outcome.status == REFUSED)

    def line(self) -> str:
        features = ", ".join(f"{feature} {count}" for feature, count in self.refused_by.most_common())
        return (f"{self.counts[RAN]} ran, {self.counts[REFUSED]} refused"
                + (f" ({features})" if features else "") + f", {self.counts[FAILED]} failed")


def compat_queries() -> list[HuntQuery]:
    """The project's own compatibility queries."""
    return collect(str(COMPAT))


def sentinel_paths() -> list[str]:
    """The Azure-Sentinel repository paths of the measured rules and hunting queries."""
    return [entry["path"] for entry in yaml.safe_load(SENTINEL_LIST.read_text())["queries"]]


def sentinel_queries(checkout: Path) -> tuple[list[HuntQuery], list[str]]:
    """The listed queries read from a local clone of Azure/Azure-Sentinel, and the listed paths it does not hold."""
    if not checkout.is_dir():
        raise FileNotFoundError(f"the Sentinel checkout {checkout} is not a folder")
    present = [path for path in sentinel_paths() if (checkout / path).is_file()]
    missing = [path for path in sentinel_paths() if path not in present]
    return [read_file(checkout / path) for path in present], missing


def measure(database: LogDatabase, now: datetime, queries: list[HuntQuery], *, rewriting: bool) -> Reach:
    source = EmbeddedLogSource(database, now, rewriting=rewriting)
    return Reach(run_queries(source, queries, now - timedelta(days=1), now))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenant", type=Path, help="a sample tenant folder; default: a new one (seed 7)")
    parser.add_argument("--sentinel-repo", type=Path, default=os.environ.get("SENTINEL_REPO") or None,
                        help="a local clone of github.com/Azure/Azure-Sentinel (default: $SENTINEL_REPO)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        tenant = args.tenant or _generate(Path(scratch) / "tenant")
        now = parse_datetime(json.loads((tenant / "manifest.json").read_text())["now"])
        database = LogDatabase()
        database.load_folder(tenant / "logs")
        _report("The project's compatibility queries (benchmarks/compat_queries)", database, now, compat_queries())
        if args.sentinel_repo is None:
            print("\nSentinel queries skipped: no checkout given. To measure them, clone "
                  "https://github.com/Azure/Azure-Sentinel and pass --sentinel-repo DIR or set SENTINEL_REPO.")
            return
        try:
            queries, missing = sentinel_queries(args.sentinel_repo)
        except FileNotFoundError as error:
            print(f"\nSentinel queries skipped: {error}.")
            return
        _report(f"Microsoft Sentinel's queries from {args.sentinel_repo}", database, now, queries)
        for path in missing:
            print(f"  not in the checkout: {path}")


def _report(title: str, database: LogDatabase, now: datetime, queries: list[HuntQuery]) -> None:
    before = measure(database, now, queries, rewriting=False)
    after = measure(database, now, queries, rewriting=True)
    print(f"\n{title}, run offline on the sample tenant ({plural(len(queries), 'query', 'queries')})")
    print(f"  before the rewrite layer: {before.line()}")
    print(f"  after the rewrite layer:  {after.line()}")
    for outcome in after.outcomes:
        if outcome.status == FAILED:
            print(f"  failed: {outcome.query.name}: {outcome.reason}")


def _generate(folder: Path) -> Path:
    from shared.sample_tenant.generator import generate

    generate(folder, seed=7)
    return folder


if __name__ == "__main__":
    main()
