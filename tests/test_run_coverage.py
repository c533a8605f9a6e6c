"""An audit run measures its coverage: the run record and the digest say which rules had no log rows to read."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from azure.identity import ManagedIdentityCredential
from fakes import RecordingNotifier
from servers.log_analytics_server import LogAnalyticsServer
from servers.token_server import ManagedIdentityTokenServer

from shared.audit.build import disabled_rules
from shared.audit.pipeline import AuditConfig, AuditPipeline
from shared.catalog.loader import load_catalog
from shared.cli.exit_codes import OK, audit_exit
from shared.coverage import AUDIT_RULES, coverage_line
from shared.directory.port import SnapshotFileDirectory
from shared.logsource.coverage import detection_requirement, measure_coverage
from shared.logsource.embedded import EmbeddedLogSource
from shared.logsource.log_analytics import LogAnalyticsSource
from shared.notify.email import email_message
from shared.notify.teams_card import serialize, teams_message
from shared.posture.catalog import load_checks
from shared.sample_tenant.generator import SAMPLE_NOW
from shared.text import join_list
from shared.windows import slices

CATALOG = load_catalog()
DAY = timedelta(days=1)
WORKSPACE = "3c9d2e1f-4a5b-4c6d-8e7f-0a1b2c3d4e5f"
SIGN_IN_FAILURES = "Service principal sign-in failures"


@pytest.fixture(scope="module")
def audit_logs_only(sample_tenant, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("audit-logs-only")
    shutil.copy(sample_tenant / "logs" / "AuditLogs.json", folder / "AuditLogs.json")
    return folder


def test_the_run_record_and_the_digest_carry_the_coverage(sample_tenant, audit_logs_only, finding_store):
    source, _ = EmbeddedLogSource.from_folder(audit_logs_only, SAMPLE_NOW)
    teams = RecordingNotifier("teams")
    outcome = AuditPipeline(list(CATALOG), source, SnapshotFileDirectory(sample_tenant / "directory.json"),
                            finding_store, [teams], clock=lambda: SAMPLE_NOW,
                            config=AuditConfig(max_lookback=2 * DAY)).run(trigger="test")

    coverage = finding_store.get_run(outcome.run.id).coverage
    assert coverage is not None and coverage.tables["AuditLogs"].rows > 0
    assert coverage.tables["AADServicePrincipalSignInLogs"].rows == 0
    not_evaluated = {gap.name for gap in coverage.not_evaluated.values()}
    assert SIGN_IN_FAILURES in not_evaluated
    assert "Service principal added to a privileged directory role" not in not_evaluated
    usage_checks = {check.name for check in load_checks() if check.usageLookback}
    assert usage_checks and usage_checks <= not_evaluated  # the posture checks that read sign-ins
    assert len(not_evaluated) == len([d for d in CATALOG if set(d.tables) != {"AuditLogs"}]) + len(usage_checks)
    assert coverage.rules == len(CATALOG) + len(load_checks())

    [digest] = teams.sent
    [section] = digest.sections
    assert section.title.startswith(f"{len(not_evaluated)} of {coverage.rules} detections and posture checks "
                                    "not evaluated: ")
    assert "AADServicePrincipalSignInLogs" in section.title and "AuditLogs" not in section.title
    assert section.title in email_message(digest).text
    assert section.title in serialize(teams_message(digest)).decode()


# Microsoft's risk tables get rows only when Entra ID Protection flags something: in the sample tenant, on its
# stories' days. The other rules' tables have rows every day.
RISK_TABLES = {"AADRiskyServicePrincipals", "AADServicePrincipalRiskEvents"}


def test_a_fully_covered_run_sends_no_coverage_section(sample_tenant, sample_source, finding_store):
    teams = RecordingNotifier("teams")
    daily = [detection for detection in CATALOG if not RISK_TABLES & set(detection.tables)]
    assert len(daily) < len(CATALOG)
    outcome = AuditPipeline(daily, sample_source, SnapshotFileDirectory(sample_tenant / "directory.json"),
                            finding_store, [teams], clock=lambda: SAMPLE_NOW,
                            config=AuditConfig(max_lookback=2 * DAY)).run(trigger="test")
    assert outcome.run.coverage is not None and not outcome.run.coverage.gaps
    assert teams.sent and teams.sent[0].sections == []


def test_risk_rules_turned_off_are_named_once_and_leave_no_gap(sample_tenant, sample_source, finding_store):
    """A tenant without Workload Identities Premium turns off the two rules that read its empty risk tables."""
    risk_rules = {d.id: d.name for d in CATALOG if RISK_TABLES & set(d.tables)}
    assert len(risk_rules) == 2
    disabled = disabled_rules(CATALOG, load_checks(), {"DISABLED_DETECTIONS": ", ".join(risk_rules.values())})
    teams, email = RecordingNotifier("teams"), RecordingNotifier("email")
    outcome = AuditPipeline(list(CATALOG), sample_source, SnapshotFileDirectory(sample_tenant / "directory.json"),
                            finding_store, [teams, email], clock=lambda: SAMPLE_NOW,
                            config=AuditConfig(max_lookback=2 * DAY, disabled=disabled)).run(trigger="test")

    coverage = finding_store.get_run(outcome.run.id).coverage
    assert coverage is not None and coverage.gaps == {}
    assert coverage.disabled == list(risk_rules.values())
    assert coverage.rules == len(CATALOG) - 2 + len(load_checks())
    assert not risk_rules.keys() & outcome.run.windows.keys()
    assert audit_exit(failed=outcome.run.status != "succeeded", coverage=coverage) == OK
    turned_off = f"turned off by DISABLED_DETECTIONS: {join_list(risk_rules.values())}"
    assert coverage_line(coverage, AUDIT_RULES) == (f"all {coverage.rules} detections and posture checks evaluated: "
                                                   f"every table they read had rows; {turned_off}")
    [section] = teams.sent[0].sections
    assert section.title == coverage_line(coverage, AUDIT_RULES) and section.lines == []
    assert email_message(email.sent[0]).text.count(turned_off) == 1
    assert serialize(teams_message(teams.sent[0])).decode().count(turned_off) == 1


def test_log_analytics_answers_the_coverage_query_as_the_embedded_engine_does(audit_logs_only, monkeypatch):
    requirements = [detection_requirement(d, slices(SAMPLE_NOW - 3 * DAY, SAMPLE_NOW, d.frequency)) for d in CATALOG]
    embedded, _ = EmbeddedLogSource.from_folder(audit_logs_only, SAMPLE_NOW)
    expected = measure_coverage(embedded, requirements)
    with ManagedIdentityTokenServer() as tokens, \
            LogAnalyticsServer(folder=audit_logs_only, workspace_id=WORKSPACE, token_validator=tokens.is_valid) as la:
        for name, value in tokens.environ.items():
            monkeypatch.setenv(name, value)
        with ManagedIdentityCredential() as credential, \
                LogAnalyticsSource(WORKSPACE, credential, endpoint=la.url, retry_total=0) as source:
            measured = measure_coverage(source, requirements)
        queries = [request.body["query"] for request in la.query_requests]
    assert measured == expected and expected.tables["AuditLogs"].rows > 0
    assert len(queries) == 1  # the whole range, cut into cells no longer than the shortest window
    assert all("union isfuzzy=true" in query and "summarize Rows = count()" in query for query in queries)
