"""Posture checks in the audit run: on the sample tenant, through the pipeline, into the Azurite store."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fakes import FailingFor

from shared.audit.pipeline import AuditConfig, AuditPipeline
from shared.catalog.loader import load_catalog
from shared.directory.model import DirectorySnapshot
from shared.directory.port import SnapshotFileDirectory
from shared.logsource.embedded import EmbeddedLogSource
from shared.posture.catalog import load_checks
from shared.posture.run import POSTURE_CHECKPOINT, run_posture
from shared.sample_tenant.generator import SAMPLE_NOW
from shared.sample_tenant.manifest import Manifest
from shared.severity import severity_rank
from shared.store.tables import TableFindingStore

CHECKS = load_checks()
CHECK_IDS = {check.id for check in CHECKS}
MIDNIGHT = SAMPLE_NOW.replace(hour=0)
DAY = timedelta(days=1)
FIRST_DETECTION = next(iter(load_catalog()))  # one detection, so the run also persists detection findings


@pytest.fixture(scope="session")
def tenant(sample_tenant) -> Path:
    return sample_tenant


@pytest.fixture(scope="session")
def source(sample_source) -> EmbeddedLogSource:
    return sample_source


@pytest.fixture(scope="module")
def manifest(tenant) -> Manifest:
    return Manifest.load(tenant / "manifest.json", load_catalog(), CHECKS)


def _pipeline(tenant, source, store, now=SAMPLE_NOW, directory=None, detections=()) -> AuditPipeline:
    return AuditPipeline(list(detections), source, directory or SnapshotFileDirectory(tenant / "directory.json"),
                         store, [], clock=lambda: now, config=AuditConfig())


def test_every_posture_expectation_of_the_stories_is_found_and_nothing_above_informational_without_one(
        tenant, source, manifest):
    snapshot = DirectorySnapshot.load(tenant / "directory.json")
    result = run_posture(CHECKS, snapshot, source, MIDNIGHT)
    assert result.errors == {}
    expected = [s for s in manifest.scenarios if s.detection_id in CHECK_IDS]
    assert {s.detection_id for s in expected} == CHECK_IDS  # the stories exercise all ten checks
    assert [f"{s.id}: {s.detection_id}" for s in manifest.missed(result.findings) if s.detection_id in CHECK_IDS] == []
    unexplained = [f"{f.detection_name}: {f.principal_name}" for f in result.findings
                   if severity_rank(f.severity) > 0 and manifest.scenario_of(f) is None]
    assert unexplained == []


def test_without_the_checks_the_manifest_leaves_posture_expectations_out(tenant):
    detections_only = Manifest.load(tenant / "manifest.json", load_catalog())
    assert not {s.detection_id for s in detections_only.scenarios} & CHECK_IDS
    assert detections_only.scenarios


def test_the_run_stores_posture_findings_counts_them_per_check_and_keeps_the_inventory(tenant, source,
                                                                                      finding_store, manifest):
    outcome = _pipeline(tenant, source, finding_store, detections=[FIRST_DETECTION]).run(trigger="test")
    assert outcome.run.status == "succeeded", outcome.run.errors
    assert set(outcome.run.counts) == CHECK_IDS | {FIRST_DETECTION.id}
    assert outcome.run.windows.keys() == {FIRST_DETECTION.id}  # posture days are not detection windows
    stored = [finding_store.get_finding(i) for i in outcome.new_findings]
    posture = [f for f in stored if f.detection_id in CHECK_IDS]
    assert sum(outcome.run.counts[c]["new"] for c in CHECK_IDS) == len(posture) > 0
    assert [s.id for s in manifest.missed(stored) if s.detection_id in CHECK_IDS] == []
    assert all((f.window_start, f.window_end) == (MIDNIGHT - DAY, MIDNIGHT) for f in posture)
    assert all(f.context and not f.context["deleted"] for f in posture)  # enriched like the detections' findings
    expired = next(f for f in posture if f.principal_name == "nightly-export")
    assert expired.context["credential_used"]["display_name"] == "nightly-export-secret"
    assert outcome.inventory and outcome.inventory_taken_at == MIDNIGHT
    assert {"deploy-payments", "uami-batch"} <= {record.principal_name for record in outcome.inventory}
    assert finding_store.get_checkpoint(POSTURE_CHECKPOINT) == MIDNIGHT


def test_the_same_day_again_adds_nothing_and_the_next_day_recurs(tenant, source, finding_store):
    first = _pipeline(tenant, source, finding_store).run()
    again = _pipeline(tenant, source, finding_store, now=SAMPLE_NOW + timedelta(hours=3)).run()
    assert first.new_findings and again.new_findings == []
    assert again.inventory is not None  # the latest day is judged again for the reports
    ids = first.new_findings
    assert {finding_store.get_finding(i).occurrences for i in ids} == {1}
    _pipeline(tenant, source, finding_store, now=SAMPLE_NOW + DAY).run()
    recurring = [finding_store.get_finding(i) for i in ids]
    assert all(f.occurrences == 2 and f.window_end == MIDNIGHT + DAY for f in recurring)


def _everything(store) -> set[tuple]:
    findings, token = store.query_findings(limit=500)
    assert token is None
    return {(f.id, f.occurrences, f.window_end, f.summary, f.severity) for f in findings}


def test_a_missed_day_is_caught_up_with_the_same_result(tenant, source, finding_store, table_service, table_prefix):
    for days_back in (2, 1, 0):
        _pipeline(tenant, source, finding_store, now=SAMPLE_NOW - days_back * DAY).run()
    catch_up = TableFindingStore(table_service, prefix=f"{table_prefix}c")
    catch_up.ensure_tables()
    _pipeline(tenant, source, catch_up, now=SAMPLE_NOW - 2 * DAY).run()
    _pipeline(tenant, source, catch_up).run()
    assert _everything(catch_up) == _everything(finding_store)


def test_a_posture_failure_is_recorded_and_the_run_goes_on(tenant, source, finding_store):
    usage_fails = FailingFor(source, 'Kind = "earliest"')  # the sign-in usage query
    outcome = _pipeline(tenant, usage_fails, finding_store, detections=[FIRST_DETECTION]).run()
    assert outcome.run.status == "partial"
    assert "workspace answered 500" in outcome.run.errors["posture"]
    assert FIRST_DETECTION.id in outcome.run.counts and not CHECK_IDS & set(outcome.run.counts)
    assert outcome.inventory is None
    assert finding_store.get_checkpoint(POSTURE_CHECKPOINT) is None  # the day is judged again next run
    assert finding_store.get_checkpoint(FIRST_DETECTION.id) == MIDNIGHT


def test_without_a_directory_there_is_no_posture_and_no_second_error(tenant, source, finding_store, tmp_path):
    outcome = _pipeline(tenant, source, finding_store, directory=SnapshotFileDirectory(tmp_path / "none.json")).run()
    assert set(outcome.run.errors) == {"inventory"}
    assert outcome.new_findings == [] and outcome.inventory is None
