"""A triage through the API or the web page reaches WorkloadIdentityFindings_CL at once, before any audit: the API on
Azurite, the real `azure-monitor-ingestion` client and azure-identity's ManagedIdentityCredential against the local
Logs Ingestion server. While an audit holds the lease the change waits for that audit's delivery, which sends it
once; an ingestion outage leaves it queued and the person still gets their answer. TestClient runs a response's
background tasks before it returns, so each assertion sees the delivery done."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fakes import RecordingNotifier
from fastapi.testclient import TestClient

from shared.api import create_api
from shared.audit.lease import LEASE, AuditLease
from shared.export.ingestion import LogsIngestionSink
from shared.export.records import STREAM
from shared.store import TableFindingStore
from shared.web.session import CSRF_COOKIE

KEY = "test-key-0123456789abcdefghijkl"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
T0 = datetime(2024, 5, 1, 6, 0, tzinfo=UTC)
RULE = "dcr-" + "0123456789abcdef" * 2


@pytest.fixture
def store(table_service, table_prefix):
    store = TableFindingStore(table_service, prefix=table_prefix, channels=("teams",), export_changes=True)
    store.ensure_tables()
    return store


@pytest.fixture
def client(store, ingestion_sink):
    sinks_built = []

    def export_sink():
        sinks_built.append(ingestion_sink)
        return ingestion_sink

    app = create_api(lambda: store, api_key=KEY, clock=lambda: NOW, export_sink=export_sink)
    with TestClient(app, follow_redirects=False, headers={"x-api-key": KEY}) as client:
        client.sinks_built = sinks_built
        yield client


@pytest.fixture
def finding_id(store, make_finding, ingestion_server, ingestion_sink):
    """A stored finding whose `new` change has already gone to Log Analytics (as an audit would have sent it)."""
    from shared.export.deliver import deliver_changes

    finding = make_finding("sp1", severity="High")
    store.upsert_findings([finding], run_id="run1", now=T0)
    assert deliver_changes(store, ingestion_sink).sent == 1
    ingestion_server.rows[STREAM].clear()
    return finding.id


def triage_rows(server) -> list[tuple[str, str, str, str]]:
    return [(row["Change"], row["Status"], row["ChangedBy"], row["Comment"]) for row in server.rows[STREAM]]


def triage_from_the_page(client: TestClient, store, finding_id: str, action: str, comment: str) -> int:
    page = client.get("/api/ui/login")
    signed_in = client.post("/api/ui/login", data={"csrf": page.cookies[CSRF_COOKIE], "name": "alice@contoso.com",
                                                   "key": KEY, "next": "/api/ui/findings"})
    assert signed_in.status_code == 303
    reply = client.post(f"/api/ui/findings/{finding_id}/triage",
                        data={"csrf": client.cookies[CSRF_COOKIE], "action": action, "comment": comment,
                              "version": store.get_finding(finding_id).version})
    return reply.status_code


def test_a_triage_through_the_api_arrives_before_any_audit(client, store, ingestion_server, finding_id):
    reply = client.patch(f"/api/findings/{finding_id}",
                         json={"status": "acknowledged", "comment": "asked the owners", "by": "ana@contoso.com"})
    assert reply.status_code == 200
    assert triage_rows(ingestion_server) == [("triage", "acknowledged", "ana@contoso.com", "asked the owners")]
    assert ingestion_server.rows[STREAM][0]["FindingId"] == finding_id
    assert store.pending_changes() == []

    client.patch(f"/api/findings/{finding_id}", json={"comment": "rotated the secret", "by": "ana@contoso.com"})
    assert triage_rows(ingestion_server)[1:] == [("triage", "acknowledged", "ana@contoso.com", "rotated the secret")]
    assert len(client.sinks_built) == 1  # built on the first triage and kept
    assert len(ingestion_server.rows[STREAM]) == 2  # each change sent once


def test_a_triage_from_the_web_page_arrives_with_the_signed_in_name(client, store, ingestion_server, finding_id):
    assert triage_from_the_page(client, store, finding_id, "resolved", "secret rotated") == 303
    assert triage_rows(ingestion_server) == [("triage", "resolved", "alice@contoso.com", "secret rotated")]
    assert store.pending_changes() == []


def test_a_refused_triage_sends_nothing(client, store, ingestion_server, finding_id):
    stale = client.patch(f"/api/findings/{finding_id}", json={"status": "resolved", "by": "ana"},
                         headers={"If-Match": '"not-the-version"'})
    assert stale.status_code == 412
    assert client.sinks_built == [] and ingestion_server.rows[STREAM] == []


def test_without_log_analytics_a_triage_is_only_stored(store, finding_id, ingestion_server):
    app = create_api(lambda: store, api_key=KEY, clock=lambda: NOW, export_sink=lambda: None)
    with TestClient(app, headers={"x-api-key": KEY}) as client:
        assert client.patch(f"/api/findings/{finding_id}", json={"status": "resolved", "by": "ana"}).status_code == 200
    assert ingestion_server.rows[STREAM] == []
    assert store.get_finding(finding_id).status == "resolved"


@pytest.mark.parametrize("through", ["api", "page"])
def test_an_ingestion_outage_leaves_the_triage_queued_and_the_answer_unchanged(client, store, ingestion_server,
                                                                               ingestion_sink, finding_id, through,
                                                                               caplog):
    from shared.export.deliver import deliver_changes

    ingestion_server.fail_next(500, times=3)  # the first try and azure-core's two retries
    with caplog.at_level(logging.WARNING, logger="shared.export.after_triage"):
        if through == "api":
            status = client.patch(f"/api/findings/{finding_id}",
                                  json={"status": "resolved", "comment": "done", "by": "ana"}).status_code
        else:
            status = triage_from_the_page(client, store, finding_id, "resolved", "done")
    assert status == (200 if through == "api" else 303)
    assert ingestion_server.rows[STREAM] == []
    assert [change.change for change in store.pending_changes()] == ["triage"]
    assert "1 finding change not accepted by Log Analytics, kept for the next delivery: HTTP 500" in caplog.text
    assert store.get_finding(finding_id).status == "resolved"

    assert deliver_changes(store, ingestion_sink).sent == 1  # the next delivery (the audit's or a triage's) sends it
    assert [row[0] for row in triage_rows(ingestion_server)] == ["triage"]


def test_an_unreachable_ingestion_endpoint_is_logged_not_raised(store, finding_id, credential, caplog):
    from azure.monitor.ingestion import LogsIngestionClient

    nowhere = "http://127.0.0.1:9"
    dead = LogsIngestionSink(nowhere, RULE, credential, client=LogsIngestionClient(nowhere, credential,
                                                                                   retry_total=0))
    app = create_api(lambda: store, api_key=KEY, clock=lambda: NOW, export_sink=lambda: dead)
    with caplog.at_level(logging.WARNING, logger="shared.export"), TestClient(app,
                                                                             headers={"x-api-key": KEY}) as client:
        assert client.patch(f"/api/findings/{finding_id}", json={"status": "resolved", "by": "ana"}).status_code == 200
    assert [change.change for change in store.pending_changes()] == ["triage"]
    assert "kept for the next delivery: ServiceRequestError" in caplog.text
    assert store.lease_holder(LEASE) is None  # the delivery gave the lease back


def test_a_sink_that_cannot_be_built_is_logged_not_raised(store, finding_id, caplog):
    from shared.settings import SettingsError

    def broken():
        raise SettingsError("setting FINDINGS_DCR_IMMUTABLE_ID is not set")

    app = create_api(lambda: store, api_key=KEY, clock=lambda: NOW, export_sink=broken)
    with caplog.at_level(logging.ERROR, logger="shared.export"), TestClient(app,
                                                                           headers={"x-api-key": KEY}) as client:
        assert client.patch(f"/api/findings/{finding_id}", json={"status": "resolved", "by": "ana"}).status_code == 200
    assert [change.change for change in store.pending_changes()] == ["triage"]
    assert "the triage stays queued for Log Analytics: delivering it failed" in caplog.text
    assert "FINDINGS_DCR_IMMUTABLE_ID is not set" in caplog.text


def test_while_an_audit_holds_the_lease_the_triage_waits_and_goes_once(client, store, ingestion_server, finding_id):
    audit = AuditLease(store, "20240601T120000Z-abcdef", timedelta(hours=1))
    audit.acquire()
    assert client.patch(f"/api/findings/{finding_id}", json={"status": "resolved", "by": "ana"}).status_code == 200
    assert ingestion_server.rows[STREAM] == []
    assert [change.change for change in store.pending_changes()] == ["triage"]
    assert store.lease_holder(LEASE)[0] == audit.owner  # the triage did not take or drop the audit's lease
    audit.release()


def test_an_audit_that_starts_during_a_triage_delivery_waits_for_it(store):
    from shared.audit.lease import DELIVERY_OWNER, AuditAlreadyRunning

    delivery = f"{DELIVERY_OWNER}0123"
    assert store.acquire_lease(LEASE, delivery, timedelta(minutes=10), datetime.now(UTC))
    waits = []

    def delivery_ends(seconds: float) -> None:
        waits.append(seconds)
        store.release_lease(LEASE, delivery)

    audit = AuditLease(store, "20240601T120000Z-abcdef", timedelta(hours=1), sleep=delivery_ends)
    audit.acquire()
    assert len(waits) == 1 and store.lease_holder(LEASE)[0] == audit.owner

    later = AuditLease(store, "20240601T130000Z-fedcba", timedelta(hours=1), sleep=delivery_ends)
    with pytest.raises(AuditAlreadyRunning, match="another audit run holds the lease until"):
        later.acquire()  # another audit is not waited for
    assert len(waits) == 1
    audit.release()


class Analyst:
    """Someone who triages a finding through the API while an audit runs (and holds its lease)."""

    def __init__(self, client: TestClient, store, server) -> None:
        self.client, self.store, self.server = client, store, server
        self.seen: dict[str, object] = {}

    def triage(self, finding_id: str) -> None:
        if self.seen:
            return
        reply = self.client.patch(f"/api/findings/{finding_id}",
                                  json={"status": "false_positive", "comment": "the backup job", "by": "ana"})
        self.seen = {"status": reply.status_code, "finding": finding_id, "sent": list(self.server.rows[STREAM]),
                     "queued": [change.change for change in self.store.pending_changes()].count("triage")}


class TriageDuringDigest(RecordingNotifier):
    def __init__(self, analyst: Analyst) -> None:
        super().__init__("teams")
        self.analyst = analyst

    def send(self, digest) -> None:
        self.analyst.triage(digest.findings[0].id)
        super().send(digest)


class TriageDuringUpload:
    """The audit's sink: someone triages just as the audit uploads what it read from the outbox."""

    def __init__(self, sink, analyst: Analyst) -> None:
        self.sink, self.analyst = sink, analyst

    def upload(self, rows):
        self.analyst.triage(rows[0]["FindingId"])
        return self.sink.upload(rows)


@pytest.mark.parametrize("during", ["digest", "upload"])
def test_a_triage_during_an_audit_is_sent_by_that_audit_exactly_once(client, store, ingestion_server, ingestion_sink,
                                                                     sample_tenant, sample_source, during):
    from shared.audit.pipeline import AuditConfig, AuditPipeline
    from shared.catalog.loader import load_catalog
    from shared.directory.port import SnapshotFileDirectory
    from shared.sample_tenant.generator import SAMPLE_NOW

    analyst = Analyst(client, store, ingestion_server)
    notifiers = [TriageDuringDigest(analyst)] if during == "digest" else []
    sink = TriageDuringUpload(ingestion_sink, analyst) if during == "upload" else ingestion_sink
    directory = SnapshotFileDirectory(sample_tenant / "directory.json")
    outcome = AuditPipeline(list(load_catalog()), sample_source, directory, store, notifiers,
                            clock=lambda: SAMPLE_NOW, config=AuditConfig(max_lookback=timedelta(days=1)),
                            export=sink).run()
    assert analyst.seen["status"] == 200
    assert (analyst.seen["sent"], analyst.seen["queued"]) == ([], 1)  # left queued while the audit ran
    assert "findings export" not in outcome.run.errors
    triaged = [row for row in ingestion_server.rows[STREAM] if row["Change"] == "triage"]
    assert [(row["FindingId"], row["Status"], row["ChangedBy"], row["Comment"]) for row in triaged] == [
        (analyst.seen["finding"], "false_positive", "ana", "the backup job")]
    assert len(ingestion_server.rows[STREAM]) == len(outcome.new_findings) + 1
    assert store.pending_changes() == []
    assert store.lease_holder(LEASE) is None


def test_the_function_app_sends_a_triage_with_its_managed_identity(function_app_functions, azurite, ingestion_server,
                                                                  credential, make_finding, monkeypatch):
    """The real wiring: store and sink from the app settings, DefaultAzureCredential on the managed-identity
    endpoint, the request handled the way the Python worker hands it to the ASGI app."""
    import asyncio

    import azure.functions as func

    import function_app

    monkeypatch.setattr(function_app.app.middleware._app, "_app", None)  # built from this test's settings
    for name in ("FINDINGS_TABLE_ENDPOINT", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID",
                 "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    settings = {"FINDINGS_CONNECTION_STRING": azurite.connection_string,
                "FINDINGS_INGESTION_ENDPOINT": ingestion_server.url,
                "FINDINGS_DCR_IMMUTABLE_ID": ingestion_server.rule_id}
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    store = TableFindingStore.from_settings(None, settings)
    store.ensure_tables()
    finding = make_finding(f"sp-{uuid.uuid4().hex[:8]}", severity="High")
    store.upsert_findings([finding], "run-fa", datetime.now(UTC))

    request = func.HttpRequest("PATCH", url=f"https://wiaudit-func.azurewebsites.net/api/findings/{finding.id}",
                               headers={"content-type": "application/json"},
                               body=json.dumps({"status": "resolved", "comment": "rotated", "by": "ana"}).encode())
    response = asyncio.run(function_app_functions["http_app_func"].get_user_function()(request, None))
    assert response.status_code == 200, response.get_body()
    mine = [row for row in ingestion_server.rows[STREAM] if row["FindingId"] == finding.id]
    assert [(row["Change"], row["Status"], row["ChangedBy"], row["Comment"]) for row in mine] == [
        ("new", "new", "", ""), ("triage", "resolved", "ana", "rotated")]
    assert all(request.headers["Authorization"].startswith("Bearer mi-") for request in ingestion_server.requests)
