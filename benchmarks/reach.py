"""Benchmark of reach: how many of Microsoft Sentinel's service-principal, managed-identity and application rules
and hunting queries (benchmarks/sentinel_queries, see its SOURCES.md) run offline on the sample tenant, before and
after the project's rewrite layer (shared/kql/rewrite.py), and what the refused ones need, by feature.

Run from the repository root: `python -m benchmarks.reach [--tenant DIR]`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from shared.hunt.outcome import FAILED, RAN, REFUSED, Outcome, run_queries
from shared.hunt.queries import HuntQuery, collect
from shared.logsource.database import LogDatabase
from shared.logsource.embedded import EmbeddedLogSource
from shared.logsource.values import parse_datetime

COLLECTION = Path(__file__).resolve().parent / "sentinel_queries"


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


def sentinel_queries() -> list[HuntQuery]:
    return collect(str(COLLECTION))


def measure(database: LogDatabase, now: datetime, *, rewriting: bool) -> Reach:
    source = EmbeddedLogSource(database, now, rewriting=rewriting)
    return Reach(run_queries(source, sentinel_queries(), now - timedelta(days=1), now))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenant", type=Path, help="a sample tenant folder; default: a new one (seed 7)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        tenant = args.tenant or _generate(Path(scratch) / "tenant")
        now = parse_datetime(json.loads((tenant / "manifest.json").read_text())["now"])
        database = LogDatabase()
        database.load_folder(tenant / "logs")
        before, after = measure(database, now, rewriting=False), measure(database, now, rewriting=True)
    print(f"\nSentinel queries run offline on the sample tenant ({len(after.outcomes)} rules and hunting queries)")
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
