"""A detection whose result Log Analytics cuts at its row limit is retried as shorter detection windows, through
the real SDK against the local query server; when even the shortest window is cut, the detection fails with the
reason and its checkpoint stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from azure.identity import ManagedIdentityCredential
from servers.log_analytics_server import LogAnalyticsServer
from servers.token_server import ManagedIdentityTokenServer

from shared.audit.pipeline import AuditConfig, AuditPipeline
from shared.catalog.loader import load_catalog
from shared.directory.model import DirectorySnapshot
from shared.directory.port import SnapshotFileDirectory
from shared.logsource.database import LogDatabase
from shared.logsource.log_analytics import LogAnalyticsSource

WORKSPACE = "2b7e4c1a-9d3f-4e8b-a6c5-0f1d2e3a4b5c"
DAY = datetime(2026, 3, 10, tzinfo=UTC)
FAILURES = load_catalog().get("sp_signin_failures")


def _failures() -> LogDatabase:
    """Twelve principals failing to sign in, three in each quarter of DAY: 12 result rows for the day."""
    database = LogDatabase()
    rows = [(None, {"TimeGenerated": (DAY + timedelta(hours=6 * (n // 3) + 1)).isoformat(), "ResultType": "7000215",
                    "ServicePrincipalId": f"00000000-0000-4000-8000-{n:012d}", "IPAddress": "20.1.2.3"})
            for n in range(12)]
    assert database.insert("AADServicePrincipalSignInLogs", rows) == []
    return database


def _detection_requests(server: LogAnalyticsServer) -> list:
    """The rule's queries (the credential inventory reads sign-in usage too)."""
    return [request for request in server.query_requests if "ErrorMeanings" in request.body["query"]]


@pytest.fixture
def audit(tmp_path, monkeypatch, finding_store):
    snapshot = tmp_path / "directory.json"
    DirectorySnapshot(tenantId=WORKSPACE, exportedAt=DAY).save(snapshot)
    with ManagedIdentityTokenServer() as tokens, \
            LogAnalyticsServer(_failures(), workspace_id=WORKSPACE, token_validator=tokens.is_valid) as server:
        for name, value in tokens.environ.items():
            monkeypatch.setenv(name, value)
        with ManagedIdentityCredential() as credential, \
                LogAnalyticsSource(WORKSPACE, credential, endpoint=server.url, retry_total=0) as source:

            def run(row_limit: int, min_window: timedelta):
                server.row_limit = row_limit
                config = AuditConfig(max_lookback=timedelta(days=1), min_window=min_window)
                pipeline = AuditPipeline([FAILURES], source, SnapshotFileDirectory(snapshot), finding_store, [],
                                         clock=lambda: DAY + timedelta(days=1, hours=6), config=config, checks=[])
                return pipeline.run(), server

            yield run


def test_an_over_limit_window_is_retried_as_halves_and_loses_nothing(audit, finding_store):
    outcome, server = audit(row_limit=8, min_window=timedelta(hours=1))
    assert outcome.run.status == "succeeded", outcome.run.errors
    assert len(outcome.new_findings) == 12
    stored = [finding_store.get_finding(i) for i in outcome.new_findings]
    assert {(f.window_start, f.window_end) for f in stored} == {
        (DAY, DAY + timedelta(hours=12)), (DAY + timedelta(hours=12), DAY + timedelta(days=1))}
    assert len(_detection_requests(server)) == 3  # the day (cut at 8 rows), then each half (6 rows)
    assert finding_store.get_checkpoint(FAILURES.id) == DAY + timedelta(days=1)


def test_a_window_still_cut_at_the_shortest_length_fails_the_detection_and_keeps_its_checkpoint(audit, finding_store):
    outcome, server = audit(row_limit=2, min_window=timedelta(hours=6))
    assert outcome.run.status == "partial"
    assert "incomplete result" in outcome.run.errors[FAILURES.id]
    assert outcome.new_findings == []
    assert finding_store.get_checkpoint(FAILURES.id) is None
    assert len(_detection_requests(server)) == 3  # the day, its first half, and its first quarter (still cut)
