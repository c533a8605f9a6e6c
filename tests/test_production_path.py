"""`wiaudit run` with the production adapters and the real SDKs, against local servers that speak the
real protocols: a managed-identity token endpoint, Log Analytics, Microsoft Graph, a Teams Workflows
webhook, and Azurite for Table Storage. Nothing of the product is replaced."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime

import pytest
from azure.data.tables import TableServiceClient
from servers.graph_server import GraphServer
from servers.log_analytics_server import LogAnalyticsServer
from servers.token_server import ManagedIdentityTokenServer
from servers.webhook_server import WebhookServer
from typer.testing import CliRunner

from shared.audit.build import azure_credential
from shared.cli import app
from shared.directory.model import DirectorySnapshot
from shared.local.azurite import AzuriteTable
from shared.sample_tenant.generator import MIN_SERVICE_PRINCIPALS, generate
from shared.store.tables import TableFindingStore

CLIENT_ID = "7f3d6c2e-5b1a-4e8f-9d0c-2a4b6c8e0f11"
WORKSPACE = "5a8c1e3f-7b9d-4f2a-8c6e-0d1b3f5a7c9e"
runner = CliRunner(env={"COLUMNS": "200"})
RISK_TABLES = ("AADRiskyServicePrincipals", "AADServicePrincipalRiskEvents")


@pytest.fixture(scope="module")
def tenant(tmp_path_factory):
    """A sample tenant whose 'now' is now, so the production clock finds its stories."""
    out = tmp_path_factory.mktemp("live-tenant")
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    generate(out, seed=11, service_principals=max(20, MIN_SERVICE_PRINCIPALS), days=10, now=now)
    return out


def _authorized(tokens: ManagedIdentityTokenServer):
    return lambda header: bool(header) and tokens.is_valid(header.split()[-1])


def test_default_credential_uses_the_user_assigned_managed_identity(monkeypatch):
    with ManagedIdentityTokenServer(client_id=CLIENT_ID) as tokens:
        for name, value in tokens.environ.items():
            monkeypatch.setenv(name, value)
        token = azure_credential({"AZURE_CLIENT_ID": CLIENT_ID}).get_token("https://api.loganalytics.io/.default")
        assert tokens.is_valid(token.token)
        assert [(r.client_id, r.resource) for r in tokens.requests][-1] == (CLIENT_ID, "https://api.loganalytics.io")


def test_wiaudit_run_audits_through_every_production_adapter(tenant, monkeypatch):
    snapshot = DirectorySnapshot.load(tenant / "directory.json")
    with ManagedIdentityTokenServer(client_id=CLIENT_ID) as tokens, \
            LogAnalyticsServer(folder=tenant / "logs", workspace_id=WORKSPACE, token_validator=tokens.is_valid) as la, \
            GraphServer(snapshot, authorize=_authorized(tokens)) as graph, WebhookServer() as teams, \
            AzuriteTable() as azurite:
        environ = {**tokens.environ, "AZURE_CLIENT_ID": CLIENT_ID, "LOG_ANALYTICS_WORKSPACE_ID": WORKSPACE,
                   "LOG_ANALYTICS_ENDPOINT": la.url, "GRAPH_ENDPOINT": graph.endpoint,
                   "FINDINGS_CONNECTION_STRING": azurite.connection_string, "TEAMS_WEBHOOK_URL": teams.webhook_url,
                   "MAIL_SENDER": "auditor@contoso.com", "MAIL_TO": "soc@contoso.com"}
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        result = runner.invoke(app, ["run"])
        assert result.exit_code == 0, result.output
        assert "succeeded" in result.output
        store = TableFindingStore(TableServiceClient.from_connection_string(azurite.connection_string))
        stored, _ = store.query_findings(min_severity="Medium", limit=500)

        manifest = json.loads((tenant / "manifest.json").read_text())
        expired = next(s for s in manifest["scenarios"] if s["id"] == "expired-secret")
        assert any(f.principal_id == expired["principal_id"] and f.context and not f.context["deleted"]
                   for f in stored)
        assert all(request.headers.get("Authorization", "").startswith("Bearer ") for request in la.query_requests)
        resources = {tokens.resource_of(t.token) for t in tokens.issued.values()}
        assert {la.url.rstrip("/"), graph.endpoint} <= {r.rstrip("/") for r in resources}, resources
        assert graph.count(r"/servicePrincipals$") >= 1 and graph.count(r"/servicePrincipals/[0-9a-f-]+$") == 0
        assert len(teams.received) == 1 and len(graph.sent_mail) == 1
        assert graph.sent_mail[0][0] == "auditor@contoso.com"

        second = runner.invoke(app, ["run"])
        assert second.exit_code == 0 and "0 new findings" in second.output
        assert len(teams.received) == 1 and len(graph.sent_mail) == 1


def test_wiaudit_run_with_the_risk_rules_turned_off_exits_0_without_risk_tables(tenant, tmp_path, monkeypatch):
    """A tenant without Workload Identities Premium: its risk tables never get rows, and it turns their rules off."""
    logs = tmp_path / "logs"
    shutil.copytree(tenant / "logs", logs, ignore=shutil.ignore_patterns("AADRisky*", "AADServicePrincipalRisk*"))
    snapshot = DirectorySnapshot.load(tenant / "directory.json")
    with ManagedIdentityTokenServer(client_id=CLIENT_ID) as tokens, \
            LogAnalyticsServer(folder=logs, workspace_id=WORKSPACE, token_validator=tokens.is_valid) as la, \
            GraphServer(snapshot, authorize=_authorized(tokens)) as graph, AzuriteTable() as azurite:
        environ = {**tokens.environ, "AZURE_CLIENT_ID": CLIENT_ID, "LOG_ANALYTICS_WORKSPACE_ID": WORKSPACE,
                   "LOG_ANALYTICS_ENDPOINT": la.url, "GRAPH_ENDPOINT": graph.endpoint,
                   "FINDINGS_CONNECTION_STRING": azurite.connection_string,
                   "DISABLED_DETECTIONS": "microsoft_risky_service_principal,microsoft_service_principal_risk_events"}
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        result = runner.invoke(app, ["run"])
        assert result.exit_code == 0, result.output
        assert not any(table in request.body["query"] for request in la.query_requests for table in RISK_TABLES)
    assert "turned off by DISABLED_DETECTIONS: Microsoft Entra ID Protection rates a service principal risky and " \
           "Microsoft Entra ID Protection flagged a risk on a service principal" in " ".join(result.output.split())
    assert "not evaluated" not in result.output


def test_wiaudit_run_refuses_an_unknown_disabled_detection_by_name(monkeypatch):
    monkeypatch.setenv("DISABLED_DETECTIONS", "microsoft_risky_service_principal, risky_sp")
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 2
    assert '"risky_sp"' in result.output and "DISABLED_DETECTIONS" in result.output
    assert "Traceback" not in result.output


def test_wiaudit_run_without_azure_names_what_is_missing(monkeypatch):
    for name in ("LOG_ANALYTICS_WORKSPACE_ID", "FINDINGS_CONNECTION_STRING", "FINDINGS_TABLE_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 2
    assert "LOG_ANALYTICS_WORKSPACE_ID is not set" in result.output
    assert "Traceback" not in result.output
