"""The audit run end to end on the sample tenant: embedded logs, snapshot directory, Azurite store."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from fakes import FailingFor, RecordingNotifier

from shared.audit.pipeline import AuditConfig, AuditPipeline
from shared.audit.plan import plan_windows
from shared.catalog.loader import load_catalog
from shared.directory.port import SnapshotFileDirectory
from shared.logsource.embedded import EmbeddedLogSource
from shared.posture.catalog import load_checks
from shared.sample_tenant.generator import SAMPLE_NOW
from shared.sample_tenant.manifest import Manifest
from shared.store.model import Triage
from shared.store.tables import TableFindingStore

CATALOG = list(load_catalog())
DAY = timedelta(days=1)


@pytest.fixture(scope="session")
def tenant(sample_tenant) -> Path:
    return sample_tenant


@pytest.fixture(scope="session")
def source(sample_source) -> EmbeddedLogSource:
    return sample_source


SHORT = AuditConfig(max_lookback=2 * DAY)  # enough for the stories these tests look at, and quick


def _pipeline(tenant, source, store, notifiers=(), now=SAMPLE_NOW, directory=None, config=SHORT) -> AuditPipeline:
    return AuditPipeline(CATALOG, source, directory or SnapshotFileDirectory(tenant / "directory.json"), store,
                         list(notifiers), clock=lambda: now, config=config)


def test_plan_runs_whole_windows_after_the_ingestion_delay():
    now = SAMPLE_NOW  # 06:00
    first = plan_windows(DAY, None, now, timedelta(minutes=15), timedelta(days=7))
    assert first[0][0] == now.replace(hour=0) - 7 * DAY and first[-1][1] == now.replace(hour=0)
    assert len(first) == 7 and all(end - start == DAY for start, end in first)
    assert plan_windows(DAY, now.replace(hour=0), now, timedelta(minutes=15), timedelta(days=7)) == []
    late = plan_windows(DAY, now.replace(hour=0) - 3 * DAY, now, timedelta(minutes=15), timedelta(days=7))
    assert len(late) == 3
    midnight_run = plan_windows(DAY, None, now.replace(hour=0, minute=10), timedelta(minutes=15), timedelta(days=7))
    assert midnight_run[-1][1] == now.replace(hour=0) - DAY  # today's window waits for late logs


def test_first_run_stores_enriched_findings_and_second_run_finds_nothing_new(tenant, source, finding_store):
    teams, email = RecordingNotifier("teams"), RecordingNotifier("email")
    first = _pipeline(tenant, source, finding_store, [teams, email], config=AuditConfig()).run(trigger="test")
    assert first.run.status == "succeeded", first.run.errors
    assert first.new_findings and len(teams.sent) == len(email.sent) == 1
    assert {f.id for f in teams.sent[0].findings} == set(first.new_findings)
    manifest = Manifest.load(tenant / "manifest.json", load_catalog(), load_checks())
    stored = [finding_store.get_finding(i) for i in first.new_findings]
    assert manifest.missed(stored) == []
    for detection in CATALOG:
        assert finding_store.get_checkpoint(detection.id) == SAMPLE_NOW.replace(hour=0)
    assert finding_store.get_run(first.run.id).status == "succeeded"

    second = _pipeline(tenant, source, finding_store, [teams, email]).run(trigger="test")
    assert second.new_findings == [] and second.run.windows == {d.id: [] for d in CATALOG}
    assert len(teams.sent) == len(email.sent) == 1


def test_findings_carry_the_directory_context_of_their_principal(tenant, source, finding_store):
    outcome = _pipeline(tenant, source, finding_store).run()
    stored = [finding_store.get_finding(i) for i in outcome.new_findings]
    backdoor = next(f for f in stored if f.detection_name.startswith("Credential added") and
                    f.principal_name == "payroll-sync")
    context = backdoor.context
    assert context["type"] == "application" and not context["deleted"]
    assert "sync-2026" in [c["display_name"] for c in context["credentials"]]
    assert context["owners"] and all(o["name"].endswith("@contoso.com") for o in context["owners"])
    expired = next(f for f in stored if f.detection_name == "Service principal sign-in failures"
                   and f.principal_name == "nightly-export")
    assert expired.context["credential_used"]["display_name"] == "nightly-export-secret"
    automation = next(f for f in stored if f.principal_name == "tenant-automation")
    assert automation.context["directory_roles"] == ["Global Administrator"]
    assert "RoleManagement.ReadWrite.Directory" in automation.context["privileged_permissions"]


def test_a_principal_missing_from_the_directory_is_marked_deleted(tenant, source, finding_store, tmp_path):
    snapshot = (tenant / "directory.json").read_text()
    manifest = Manifest.load(tenant / "manifest.json", load_catalog())
    payroll = next(s for s in manifest.scenarios if s.id == "backdoor-credential").principal_id
    trimmed = tmp_path / "directory.json"
    trimmed.write_text(snapshot.replace(payroll, "00000000-0000-4000-8000-000000000000"))
    outcome = _pipeline(tenant, source, finding_store, directory=SnapshotFileDirectory(trimmed)).run()
    contexts = [finding_store.get_finding(i).context for i in outcome.new_findings]
    assert {"deleted": True, "looked_up": payroll} in contexts


def test_a_failing_detection_is_recorded_and_the_others_still_run(tenant, source, finding_store):
    failing = next(d for d in CATALOG if d.name == "Service principal sign-in failures")
    outcome = _pipeline(tenant, FailingFor(source, "ErrorMeanings"), finding_store).run()
    assert outcome.run.status == "partial"
    assert "workspace answered 500" in outcome.run.errors[failing.id]
    assert finding_store.get_checkpoint(failing.id) is None
    others = [d for d in CATALOG if d.id != failing.id]
    assert all(finding_store.get_checkpoint(d.id) == SAMPLE_NOW.replace(hour=0) for d in others)
    assert (outcome.new_findings and failing.id not in outcome.run.counts) or \
        outcome.run.counts[failing.id]["findings"] == 0


def test_a_directory_failure_stores_findings_without_context(tenant, source, finding_store, tmp_path):
    outcome = _pipeline(tenant, source, finding_store, directory=SnapshotFileDirectory(tmp_path / "none.json")).run()
    assert outcome.run.status == "partial" and "does not exist" in outcome.run.errors["inventory"]
    assert outcome.new_findings
    assert all(finding_store.get_finding(i).context is None for i in outcome.new_findings)


def test_a_failed_notification_stays_pending_and_goes_out_once_with_the_next_run(tenant, source, finding_store):
    teams = RecordingNotifier("teams", failures=1)
    first = _pipeline(tenant, source, finding_store, [teams]).run()
    assert first.run.status == "partial" and "answered 500" in first.run.errors["notify:teams"]
    assert teams.sent == [] and first.new_findings
    second = _pipeline(tenant, source, finding_store, [teams], now=SAMPLE_NOW + timedelta(hours=1)).run()
    assert second.new_findings == []
    assert len(teams.sent) == 1 and {f.id for f in teams.sent[0].findings} == set(first.new_findings)
    _pipeline(tenant, source, finding_store, [teams], now=SAMPLE_NOW + timedelta(hours=2)).run()
    assert len(teams.sent) == 1


def _everything(store) -> set[tuple]:
    findings, token = store.query_findings(limit=500)
    assert token is None
    return {(f.id, f.occurrences, f.window_end, f.summary) for f in findings}


def test_a_missed_day_is_caught_up_with_the_same_result(tenant, source, finding_store, table_service, table_prefix):
    for days_back in (2, 1, 0):
        _pipeline(tenant, source, finding_store, now=SAMPLE_NOW - days_back * DAY).run()
    catch_up = TableFindingStore(table_service, prefix=f"{table_prefix}c")
    catch_up.ensure_tables()
    _pipeline(tenant, source, catch_up, now=SAMPLE_NOW - 2 * DAY).run()
    late = _pipeline(tenant, source, catch_up).run()
    assert all(len(windows) == 2 for windows in late.run.windows.values())
    assert late.run.windows[CATALOG[0].id][0][0] == (SAMPLE_NOW - 2 * DAY).replace(hour=0)
    assert _everything(catch_up) == _everything(finding_store)


def test_detection_parameters_from_settings_reach_the_query(tenant, source, finding_store):
    from shared.audit.build import parameter_overrides

    overrides = parameter_overrides(load_catalog(), {"DETECTION_PARAMETERS": json.dumps(
        {"credential_added_to_active_identity": {"SignInLookback": "1h"}})})
    rule = next(d for d in CATALOG if d.name.startswith("Credential added to an identity"))

    def payroll_findings(store, config) -> list:
        outcome = _pipeline(tenant, source, store, config=config).run()
        found = [store.get_finding(i) for i in outcome.new_findings]
        return [f for f in found if f.detection_id == rule.id and f.principal_name == "payroll-sync"]

    assert payroll_findings(finding_store, SHORT)
    other = TableFindingStore(finding_store.service, prefix=f"{finding_store.prefix}p")
    other.ensure_tables()
    # payroll-sync's last sign-in was 7 h before the backdoor credential: outside a 1 h lookback
    assert payroll_findings(other, AuditConfig(max_lookback=2 * DAY, parameters=overrides)) == []


def test_a_resolved_finding_that_fires_again_is_new_counted_and_in_the_next_digest(tenant, source, finding_store):
    teams = RecordingNotifier("teams")
    first = _pipeline(tenant, source, finding_store, [teams], now=SAMPLE_NOW - DAY).run()
    for finding_id in first.new_findings:
        finding_store.triage(finding_id, Triage(status="resolved", comment="looked fine", by="alice"), SAMPLE_NOW - DAY)
    second = _pipeline(tenant, source, finding_store, [teams]).run()
    stored = [finding_store.get_finding(finding_id) for finding_id in first.new_findings]
    reopened = {finding.id: finding for finding in stored if finding.status == "new"}
    assert reopened, "the sample tenant has findings that fire on consecutive days"
    for finding in reopened.values():
        assert finding.last_detected == SAMPLE_NOW and finding.comment == "looked fine"
        assert [(entry.by, entry.to) for entry in finding.history] == [("alice", "resolved"), ("wiaudit", "new")]
    assert all(finding.last_detected < SAMPLE_NOW for finding in stored if finding.id not in reopened)
    assert set(reopened) <= set(second.new_findings)
    assert sum(counts["new"] for counts in second.run.counts.values()) == len(set(second.new_findings))
    digest = teams.sent[-1]
    assert set(reopened) <= {finding.id for finding in digest.findings}
    assert digest.findings_query == "/api/findings?since=" + SAMPLE_NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
