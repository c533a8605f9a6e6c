"""What a run records or repairs of earlier trouble: windows a long gap skipped, findings stored while the directory
could not be read, index rows a crash left behind. Azurite for the store, the sample tenant's logs in the embedded
engine, its directory snapshot."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from shared.audit.pipeline import AuditConfig, AuditPipeline
from shared.catalog.model import Detection
from shared.catalog.rule_files import parse_rule_file
from shared.directory.port import SnapshotFileDirectory
from shared.sample_tenant.generator import SAMPLE_NOW

DETECTIONS = Path(__file__).resolve().parent.parent / "shared" / "detections"
DAY = timedelta(days=1)


def _detection(stem: str) -> Detection:
    problems: list[str] = []
    loaded = parse_rule_file(DETECTIONS / f"{stem}.yaml", Detection, problems)
    assert loaded is not None, problems
    return loaded


@pytest.fixture(scope="module")
def failures() -> Detection:
    return _detection("sp_signin_failures")


def _pipeline(store, detections, source, directory, *, days: int = 2, now=SAMPLE_NOW) -> AuditPipeline:
    return AuditPipeline(list(detections), source, directory, store, [], clock=lambda: now,
                         config=AuditConfig(max_lookback=days * DAY), checks=[])


def test_windows_skipped_by_the_maximum_lookback_are_an_error_of_the_run(finding_store, failures, sample_source,
                                                                         sample_tenant):
    midnight = SAMPLE_NOW.replace(hour=0)
    finding_store.set_checkpoint(failures.id, midnight - 10 * DAY)
    directory = SnapshotFileDirectory(sample_tenant / "directory.json")
    outcome = _pipeline(finding_store, [failures], sample_source, directory).run()

    assert outcome.run.status == "partial"
    assert outcome.run.windows[failures.id] == [(midnight - 2 * DAY, midnight - DAY), (midnight - DAY, midnight)]
    assert outcome.run.errors[f"skipped:{failures.id}"] == (
        "8 windows from 2026-03-05 00:00 UTC to 2026-03-13 00:00 UTC not audited: the last run was longer ago "
        "than MAX_LOOKBACK_DAYS (2 days)")
    assert finding_store.get_run(outcome.run.id).status == "partial"
    assert finding_store.get_checkpoint(failures.id) == midnight

    again = _pipeline(finding_store, [failures], sample_source, directory, now=SAMPLE_NOW + DAY).run()
    assert again.run.status == "succeeded" and again.run.errors == {}
