"""Findings and their changes into WorkloadIdentityFindings_CL: the real `azure-monitor-ingestion` client and
azure-identity's ManagedIdentityCredential against a local server speaking the Logs Ingestion API, the outbox in
Azurite. Pending until accepted, a failed delivery sent again, a repeated one recognisable by its ChangeId."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.export.deliver import deliver_changes
from shared.export.ingestion import LogsIngestionSink, sink_from_settings
from shared.export.records import STREAM
from shared.settings import SettingsError
from shared.store import TableFindingStore
from shared.store.model import Triage
from shared.tables import table_schemas

NOW = datetime(2024, 5, 2, tzinfo=UTC)
RULE = "dcr-" + "0123456789abcdef" * 2


@pytest.fixture
def store(table_service, table_prefix):
    store = TableFindingStore(table_service, prefix=table_prefix, export_changes=True)
    store.ensure_tables()
    return store


@pytest.fixture
def server(ingestion_server):
    return ingestion_server


@pytest.fixture
def sink(ingestion_sink):
    return ingestion_sink


def test_new_recurred_and_triaged_findings_arrive_once_with_the_tables_columns(store, sink, server, make_finding):
    finding = make_finding(principal="sp1", severity="High")
    store.upsert_findings([finding], run_id="run1", now=NOW)
    assert deliver_changes(store, sink).sent == 1
    store.triage(finding.id, Triage(status="resolved", comment="rotated", by="ana@contoso.com"),
                 NOW + timedelta(hours=1))
    store.upsert_findings([make_finding(principal="sp1", severity="High", day=1)], run_id="run2",
                          now=NOW + timedelta(days=1))
    report = deliver_changes(store, sink)
    assert (report.sent, report.pending) == (2, 0)
    assert deliver_changes(store, sink).sent == 0  # accepted: never sent again

    rows = server.rows[STREAM]
    assert [(r["Change"], r["Status"], r["ChangedBy"], r["Comment"], r["RunId"]) for r in rows] == [
        ("new", "new", "", "", "run1"),
        ("triage", "resolved", "ana@contoso.com", "rotated", ""),
        ("recurred", "new", "", "", "run2"),
    ]
    columns = set(table_schemas()["WorkloadIdentityFindings_CL"].columns) - {"TenantId", "Type"}
    assert all(set(row) == columns for row in rows)
    assert rows[0]["FindingId"] == finding.id and rows[0]["TimeGenerated"] == "2024-05-02T00:00:00Z"
    assert len({row["ChangeId"] for row in rows}) == 3
    request = server.requests[0]
    assert request.query == {"api-version": ["2023-01-01"]}
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.path == f"/dataCollectionRules/{RULE}/streams/{STREAM}"


def test_a_failed_delivery_stays_pending_and_goes_with_the_next(store, sink, server, make_finding):
    store.upsert_findings([make_finding(principal="sp1")], run_id="run1", now=NOW)
    server.fail_next(500, times=3)  # the first try and azure-core's two retries
    report = deliver_changes(store, sink)
    assert (report.sent, report.pending) == (0, 1) and "HTTP 500" in report.reason
    assert server.rows[STREAM] == []
    assert deliver_changes(store, sink).sent == 1
    assert len(server.rows[STREAM]) == 1


def test_throttling_is_waited_out_within_the_same_delivery(store, sink, server, make_finding):
    store.upsert_findings([make_finding(principal="sp1")], run_id="run1", now=NOW)
    server.fail_next(429)
    assert deliver_changes(store, sink).sent == 1
    assert len(server.requests) == 2 and len(server.rows[STREAM]) == 1


def test_a_repeated_delivery_carries_the_same_change_id(store, sink, server, make_finding):
    store.upsert_findings([make_finding(principal="sp1")], run_id="run1", now=NOW)
    server.fail_next("lost")  # the service kept the rows, its answer did not arrive; azure-core sends again
    assert deliver_changes(store, sink).sent == 1
    assert deliver_changes(store, sink).sent == 0
    first, second = server.rows[STREAM]
    assert first == second  # the same row twice: `summarize arg_max(TimeGenerated, *) by ChangeId` folds it


def test_a_store_that_does_not_export_queues_nothing(table_service, table_prefix, make_finding):
    store = TableFindingStore(table_service, prefix=table_prefix)
    store.ensure_tables()
    store.upsert_findings([make_finding()], run_id="run1", now=NOW)
    assert store.pending_changes() == []


def test_settings_turn_it_on_only_with_both_values(credential):
    assert sink_from_settings(credential, {}) is None
    with pytest.raises(SettingsError, match="FINDINGS_DCR_IMMUTABLE_ID is not set"):
        sink_from_settings(credential, {"FINDINGS_INGESTION_ENDPOINT": "https://dcr.westeurope-1.ingest.monitor.azure.com"})
    with pytest.raises(SettingsError, match="FINDINGS_DCR_IMMUTABLE_ID"):
        sink_from_settings(credential, {"FINDINGS_INGESTION_ENDPOINT": "https://x.ingest.monitor.azure.com",
                                        "FINDINGS_DCR_IMMUTABLE_ID": "not-a-rule"})
    sink = sink_from_settings(credential, {"FINDINGS_INGESTION_ENDPOINT": "https://x.ingest.monitor.azure.com",
                                           "FINDINGS_DCR_IMMUTABLE_ID": RULE})
    assert (sink.endpoint, sink.rule_id) == ("https://x.ingest.monitor.azure.com", RULE)
    with pytest.raises(ValueError, match="must be https"):
        LogsIngestionSink("http://x.ingest.monitor.azure.com", RULE, credential)


def test_an_audit_sends_its_new_findings_and_a_failed_send_waits_for_the_next_run(sample_tenant, sample_source,
                                                                                   store, sink, server):
    from shared.audit.pipeline import AuditConfig, AuditPipeline
    from shared.catalog.loader import load_catalog
    from shared.directory.port import SnapshotFileDirectory
    from shared.sample_tenant.generator import SAMPLE_NOW

    directory = SnapshotFileDirectory(sample_tenant / "directory.json")

    def audit():
        return AuditPipeline(list(load_catalog()), sample_source, directory, store, [], clock=lambda: SAMPLE_NOW,
                             config=AuditConfig(max_lookback=timedelta(days=1)), export=sink).run()

    server.fail_next(500, times=3)
    first = audit()
    assert first.new_findings
    assert "kept for the next run: HTTP 500" in first.run.errors["findings export"]
    assert server.rows[STREAM] == []
    second = audit()  # the same window again: nothing new, the pending changes go out
    assert "findings export" not in second.run.errors
    rows = server.rows[STREAM]
    assert sorted(row["FindingId"] for row in rows) == sorted(first.new_findings)
    assert {row["Change"] for row in rows} == {"new"}
    assert {row["RunId"] for row in rows} == {first.run.id}


def test_a_store_from_settings_queues_changes_when_findings_go_to_log_analytics(azurite):
    settings = {"FINDINGS_CONNECTION_STRING": azurite.connection_string}
    assert not TableFindingStore.from_settings(None, settings).export_changes
    settings |= {"FINDINGS_INGESTION_ENDPOINT": "https://x.ingest.monitor.azure.com", "FINDINGS_DCR_IMMUTABLE_ID": RULE}
    assert TableFindingStore.from_settings(None, settings).export_changes  # so API and CLI triage is queued too


def _sign_in_failures(reverse: bool) -> list:
    """The sign-in failures rule's findings of its own firing case, its rows in their order or reversed."""
    from shared.catalog.loader import load_catalog
    from shared.detect import run_detection
    from shared.logsource.database import LogDatabase
    from shared.logsource.embedded import EmbeddedLogSource

    detection = next(d for d in load_catalog() if d.name == "Service principal sign-in failures")
    test = next(t for t in detection.tests if t.expect)
    database = LogDatabase()
    for table, rows in test.rows.items():
        assert not database.insert(table, ((None, row) for row in (rows[::-1] if reverse else rows)))
    return run_detection(detection, EmbeddedLogSource(database, now=test.window.end), test.window.start,
                         test.window.end)


def test_the_same_logs_again_in_another_order_queue_no_change_and_a_later_window_does(store):
    first, again = _sign_in_failures(reverse=False), _sign_in_failures(reverse=True)
    assert {f.id: f.evidence for f in first} == {f.id: f.evidence for f in again}  # sets sorted where they are made
    assert any(isinstance(value, list) and len(value) > 1 for f in first for value in f.evidence.values())
    store.upsert_findings(first, run_id="run1", now=NOW)
    result = store.upsert_findings(again, run_id="run2", now=NOW + timedelta(hours=1))
    assert sorted(result.unchanged) == sorted(f.id for f in first) and not result.recurring
    assert [change.change for change in store.pending_changes()] == ["new"] * len(first)

    day = timedelta(days=1)
    later = first[0].model_copy(update={"window_start": first[0].window_start + day,
                                        "window_end": first[0].window_end + day})
    assert store.upsert_findings([later], run_id="run3", now=NOW + day).recurring == [later.id]
    assert [change.change for change in store.pending_changes()] == ["new"] * len(first) + ["updated"]
