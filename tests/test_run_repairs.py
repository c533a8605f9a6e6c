"""What a run records or repairs of earlier trouble: windows a long gap skipped, findings stored while the directory
could not be read, index rows a crash left behind. Azurite for the store, the sample tenant's logs in the embedded
engine, its directory snapshot."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from azure.data.tables import TableClient, UpdateMode
from fakes import RecordingNotifier

from shared.audit.pipeline import AuditConfig, AuditPipeline
from shared.catalog.model import Detection
from shared.catalog.rule_files import parse_rule_file
from shared.directory.port import SnapshotFileDirectory
from shared.notify.teams_card import teams_message
from shared.sample_tenant.generator import SAMPLE_NOW
from shared.store.codec import index_keys, index_rows
from shared.store.findings import MAX_ATTEMPTS
from shared.store.tables import TableFindingStore

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


def _pipeline(store, detections, source, directory, *, days: int = 2, now=SAMPLE_NOW, notifiers=()) -> AuditPipeline:
    return AuditPipeline(list(detections), source, directory, store, list(notifiers), clock=lambda: now,
                         config=AuditConfig(max_lookback=days * DAY), checks=[])


def test_windows_skipped_by_the_maximum_lookback_are_an_error_of_the_run(finding_store, failures, sample_source,
                                                                         sample_tenant):
    midnight = SAMPLE_NOW.replace(hour=0)
    finding_store.set_checkpoint(failures.id, midnight - 10 * DAY)
    directory = SnapshotFileDirectory(sample_tenant / "directory.json")
    teams = RecordingNotifier("teams")
    outcome = _pipeline(finding_store, [failures], sample_source, directory, notifiers=[teams]).run()

    assert outcome.run.status == "partial"
    assert outcome.run.windows[failures.id] == [(midnight - 2 * DAY, midnight - DAY), (midnight - DAY, midnight)]
    assert outcome.run.errors[f"skipped:{failures.id}"] == (
        "8 windows from 2026-03-05 00:00 UTC to 2026-03-13 00:00 UTC not audited: the last run was longer ago "
        "than MAX_LOOKBACK_DAYS (2 days)")
    assert finding_store.get_run(outcome.run.id).status == "partial"
    assert finding_store.get_checkpoint(failures.id) == midnight
    [digest] = teams.sent
    assert [(section.title, section.lines) for section in digest.sections] == [("Not audited", [
        f"{failures.name}: {outcome.run.errors[f'skipped:{failures.id}']}"])]
    card = json.dumps(teams_message(digest))
    assert "Service principal sign-in failures: 8 windows from 2026-03-05 00:00 UTC" in card

    again = _pipeline(finding_store, [failures], sample_source, directory, now=SAMPLE_NOW + DAY).run()
    assert again.run.status == "succeeded" and again.run.errors == {}


def _contended(store: TableFindingStore, contend: Callable[[dict], bool], times: int = 1_000) -> TableFindingStore:
    """The same tables, with an analyst who changes each finding `contend` picks right after the store reads it
    (at most `times` times each): every write of it meets a changed ETag."""
    touched: Counter = Counter()

    class Contended(TableFindingStore):
        def _read_states(self, ids):
            states = super()._read_states(ids)
            for finding_id, state in states.items():
                if state.entity is not None and contend(state.entity) and touched[finding_id] < times:
                    touched[finding_id] += 1
                    self.findings.update_entity({"PartitionKey": state.entity["PartitionKey"], "RowKey": finding_id,
                                                 "comment": "looking into it"}, mode=UpdateMode.MERGE)
            return states

    contended = Contended(store.service, prefix=store.prefix, channels=store.channels)
    contended.touched = touched
    return contended


def test_an_etag_conflict_is_retried_and_one_that_persists_fails_only_its_findings(finding_store, make_finding):
    first, second = make_finding("sp1"), make_finding("sp2")
    finding_store.upsert_findings([first, second], "run-1", SAMPLE_NOW)
    later = [make_finding("sp1", day=1), make_finding("sp2", day=1)]

    once = _contended(finding_store, lambda entity: entity["RowKey"] == first.id, times=1)
    retried = once.upsert_findings(later, "run-2", SAMPLE_NOW + DAY)
    assert (sorted(retried.recurring), retried.conflicted) == (sorted([first.id, second.id]), [])
    assert once.touched[first.id] == 1

    always = _contended(finding_store, lambda entity: entity["RowKey"] == first.id)
    later = [make_finding("sp1", day=2), make_finding("sp2", day=2)]
    result = always.upsert_findings(later, "run-3", SAMPLE_NOW + 2 * DAY)
    assert (result.conflicted, result.recurring) == ([first.id], [second.id])
    assert always.touched[first.id] == MAX_ATTEMPTS
    assert finding_store.get_finding(first.id).occurrences == 2  # day 2 not stored: the next run stores it
    assert finding_store.get_finding(second.id).occurrences == 3


def test_a_detection_whose_findings_keep_conflicting_keeps_its_checkpoint(finding_store, failures, sample_source,
                                                                          sample_tenant):
    credentials = _detection("new_credential_added")
    directory = SnapshotFileDirectory(sample_tenant / "directory.json")
    midnight = SAMPLE_NOW.replace(hour=0)
    _pipeline(finding_store, [failures, credentials], sample_source, directory, now=SAMPLE_NOW - DAY).run()
    contended = _contended(finding_store, lambda entity: entity["detection_id"] == failures.id)
    outcome = _pipeline(contended, [failures, credentials], sample_source, directory).run()

    assert outcome.run.status == "partial"
    assert "kept changing while being stored (another writer)" in outcome.run.errors[failures.id]
    assert finding_store.get_checkpoint(failures.id) == midnight - DAY
    assert finding_store.get_checkpoint(credentials.id) == midnight
    assert set(outcome.run.errors) == {failures.id}


def test_findings_stored_during_a_directory_outage_get_context_and_severity_from_the_next_inventory(
        finding_store, sample_source, sample_tenant, tmp_path):
    owners = _detection("owner_added_to_workload_identity")
    scenarios = json.loads((sample_tenant / "manifest.json").read_text())["scenarios"]
    automation = next(s for s in scenarios if s["id"] == "owner-of-privileged-application")["principal_id"]
    outage = _pipeline(finding_store, [owners], sample_source, SnapshotFileDirectory(tmp_path / "missing.json"),
                       days=7).run()
    assert outage.run.status == "partial" and "does not exist" in outage.run.errors["inventory"]
    [finding] = [f for i in outage.new_findings if (f := finding_store.get_finding(i)).principal_id == automation]
    assert (finding.context, finding.severity) == (None, "Medium")
    assert set(finding_store.unenriched()) == set(outage.new_findings)

    later = _pipeline(finding_store, [owners], sample_source, SnapshotFileDirectory(sample_tenant / "directory.json"),
                      days=7).run()
    assert later.run.status == "succeeded" and later.run.windows[owners.id] == []  # nothing new was detected
    enriched = finding_store.get_finding(finding.id)
    assert enriched.context["directory_roles"] == ["Global Administrator"] and enriched.severity == "High"
    assert finding_store.unenriched() == []
    high, _ = finding_store.query_findings(min_severity="High")
    assert [f.id for f in high] == [finding.id]  # the index follows the raised severity


class _DiesBeforeDeleting(TableClient):
    """The index table of a process that is killed when it gets to deleting old index rows."""

    def submit_transaction(self, operations, **kwargs):
        if any(operation[0] == "delete" for operation in operations):
            raise SystemExit("killed")
        return super().submit_transaction(operations, **kwargs)

    def delete_entity(self, *args, **kwargs):
        raise SystemExit("killed")


def _index_rows_of(store: TableFindingStore, finding_id: str) -> set[tuple[str, str]]:
    return {(row["PartitionKey"], row["RowKey"]) for row in store.index.query_entities(
        "id eq @id", parameters={"id": finding_id}, select=["PartitionKey", "RowKey"])}


def test_index_rows_left_by_a_crash_are_deleted_when_read_and_rows_being_written_are_not(
        finding_store, azurite, make_finding):
    first = make_finding("sp1")
    finding_store.upsert_findings([first], "run-1", SAMPLE_NOW)
    before = _index_rows_of(finding_store, first.id)
    crashing = TableFindingStore(finding_store.service, prefix=finding_store.prefix, channels=finding_store.channels)
    crashing.index = _DiesBeforeDeleting.from_connection_string(azurite.connection_string,
                                                                table_name=finding_store.index.table_name)
    with pytest.raises(SystemExit):
        crashing.upsert_findings([make_finding("sp1", day=1)], "run-2", SAMPLE_NOW + DAY)
    current = index_keys(finding_store.get_finding(first.id))
    assert _index_rows_of(finding_store, first.id) == before | current and not before & current

    found, _ = finding_store.query_findings()  # reads the status partitions
    assert [f.occurrences for f in found] == [2]
    left = _index_rows_of(finding_store, first.id)
    assert {key for key in left if key[0].startswith("s~")} == {key for key in current if key[0].startswith("s~")}
    finding_store.query_findings(detection=first.detection_id)
    finding_store.query_findings(principal=first.principal_id)
    finding_store.query_findings(principal=first.principal_name)
    finding_store.query_findings(min_severity="Informational")
    assert _index_rows_of(finding_store, first.id) == current

    acknowledged = finding_store.get_finding(first.id).model_copy(update={"status": "acknowledged"})
    being_written = {(row["PartitionKey"], row["RowKey"]) for row in index_rows(acknowledged)} - current
    for row in index_rows(acknowledged):  # a triage that has written its index rows, not yet the finding
        finding_store.index.upsert_entity(row)
    assert finding_store.query_findings(status="acknowledged")[0] == []
    assert being_written <= _index_rows_of(finding_store, first.id)
