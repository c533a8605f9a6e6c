"""function_app.py as the Functions host sees it: the functions it indexes (triggers, auth levels, the
timer schedule), what importing it costs, and each function called the way the Python worker calls it."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import azure.functions as func
import pytest
from azure.data.tables import TableServiceClient
from azure.functions.timer import TimerRequest
from servers.graph_server import GraphServer
from servers.log_analytics_server import LogAnalyticsServer
from servers.token_server import ManagedIdentityTokenServer
from servers.webhook_server import WebhookServer

from shared.audit.lease import LEASE
from shared.audit.pipeline import AuditPipeline
from shared.store import TableFindingStore

REPO = Path(__file__).resolve().parent.parent
WORKSPACE = "11111111-2222-3333-4444-555555555555"
UNSET = ("FINDINGS_TABLE_ENDPOINT", "AZURE_CLIENT_ID", "TEAMS_WEBHOOK_URL", "MAIL_SENDER", "MAIL_TO",
         "MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT", "AZURE_CLIENT_SECRET",
         "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE")


def http(function, method: str, path: str, headers: dict[str, str] | None = None) -> func.HttpResponse:
    request = func.HttpRequest(method, url=f"https://wiaudit-func.azurewebsites.net{path}", headers=headers or {},
                               body=b"")
    handler = function.get_user_function()
    result = handler(request, None) if function.get_function_name() == "http_app_func" else handler(request)
    return asyncio.run(result) if asyncio.iscoroutine(result) else result


def test_the_host_indexes_the_api_the_pages_health_and_the_timer(function_app_functions):
    assert set(function_app_functions) == {"http_app_func", "browser_pages", "health", "audit"}
    api = function_app_functions["http_app_func"].get_trigger().get_dict_repr()
    assert (api["type"], api["route"], api["authLevel"]) == ("httpTrigger", "/{*route}", func.AuthLevel.FUNCTION)
    assert {str(method.value) for method in api["methods"]} >= {"GET", "PATCH"}
    health = function_app_functions["health"].get_trigger().get_dict_repr()
    assert (health["type"], health["route"], health["authLevel"]) == ("httpTrigger", "health",
                                                                      func.AuthLevel.ANONYMOUS)
    assert [method.value for method in health["methods"]] == ["GET"]
    # The host matches routes in registration order (by function name), not by specificity: health first.
    assert sorted(["health", "http_app_func"])[0] == "health"
    timer = function_app_functions["audit"].get_trigger().get_dict_repr()
    assert (timer["type"], timer["schedule"], timer["runOnStartup"], timer["name"]) == (
        "timerTrigger", "%AUDIT_SCHEDULE%", False, "timer")
    assert not function_app_functions["audit"].is_http_function()


def test_importing_the_app_is_light():
    """What the import loads, never how long it takes (that figure is in `make bench`)."""
    code = ("import sys; import function_app; "
            "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in "
            "('msgraph', 'msgraph_core', 'kiota_abstractions', 'kiota_http', 'duckdb', 'duckdb_kql', 'fastapi', "
            "'pydantic')} | "
            "{m for m in ('shared.audit.build', 'shared.audit.pipeline', 'azure.identity') if m in sys.modules}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                            env={"PATH": "/usr/bin:/bin"})
    assert result.stdout.strip() == "[]"


def test_health_is_anonymous_and_says_nothing_else(function_app_functions):
    response = http(function_app_functions["health"], "GET", "/api/health")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert json.loads(response.get_body()) == {"status": "ok"}


def test_the_api_function_serves_findings_from_the_configured_store(function_app_functions, azurite, monkeypatch,
                                                                    make_finding):
    """The real function_app wiring: TableFindingStore.from_settings(azure_credential()) on first request."""
    monkeypatch.setenv("FINDINGS_CONNECTION_STRING", azurite.connection_string)
    for name in UNSET:
        monkeypatch.delenv(name, raising=False)
    principal = f"sp-{uuid.uuid4().hex[:8]}"
    store = TableFindingStore(TableServiceClient.from_connection_string(azurite.connection_string))
    store.ensure_tables()
    store.upsert_findings([make_finding(principal, severity="High")], "run-fa", datetime.now(UTC))
    api = function_app_functions["http_app_func"]
    response = http(api, "GET", f"/api/findings?principal={principal}&code=the-function-key")
    assert response.status_code == 200, response.get_body()
    assert [item["principal_id"] for item in json.loads(response.get_body())["items"]] == [principal]
    assert http(api, "GET", "/api/findings?severity=urgent").status_code == 422
    docs = http(api, "GET", "/api/openapi.json")
    assert json.loads(docs.get_body())["components"]["securitySchemes"]["functionKey"]["name"] == "x-functions-key"


def test_the_timer_returns_cleanly_when_another_audit_holds_the_lease(function_app_functions, finding_store,
                                                                      monkeypatch, caplog):
    """Only the AuditAlreadyRunning path: a real pipeline over Azurite whose lease someone else holds."""
    from shared.audit import build

    now = datetime.now(UTC)
    assert finding_store.acquire_lease(LEASE, "another-run", timedelta(hours=1), now)
    pipeline = AuditPipeline([], source=None, directory=None, store=finding_store, notifiers=[],  # type: ignore[arg-type]
                             clock=lambda: now)
    monkeypatch.setattr(build, "pipeline_from_settings", lambda: pipeline)
    with caplog.at_level(logging.INFO, logger="wiaudit.function_app"):
        assert function_app_functions["audit"].get_user_function()(TimerRequest(past_due=True)) is None
    messages = [record.getMessage() for record in caplog.records]
    assert any("past due" in message for message in messages)
    assert any("audit skipped" in message and "holds the lease" in message for message in messages)
    assert finding_store.list_runs()[0] == []  # it did nothing


@pytest.fixture
def audited_tenant(tmp_path, azurite, monkeypatch):
    """Log Analytics, Microsoft Graph and the managed-identity endpoint as local servers over a sample tenant
    whose 'now' is the wall clock (the timer's pipeline uses the real clock), Azurite as the store; every
    app setting pointed at them, so the production builder is what runs."""
    from shared.directory.model import DirectorySnapshot
    from shared.sample_tenant.generator import MIN_SERVICE_PRINCIPALS, generate

    now = datetime.now(UTC)
    generate(tmp_path, service_principals=MIN_SERVICE_PRINCIPALS, days=8, now=now)
    with ManagedIdentityTokenServer() as tokens:

        def authorise(header: str | None) -> bool:
            return bool(header) and tokens.is_valid(header.removeprefix("Bearer "))

        snapshot = DirectorySnapshot.load(tmp_path / "directory.json")
        with LogAnalyticsServer(folder=tmp_path / "logs", workspace_id=WORKSPACE, token_validator=tokens.is_valid,
                                now=now) as logs, GraphServer(snapshot, authorize=authorise) as graph, \
                WebhookServer() as teams:
            for name in UNSET:
                monkeypatch.delenv(name, raising=False)
            settings = {**tokens.environ, "LOG_ANALYTICS_WORKSPACE_ID": WORKSPACE, "LOG_ANALYTICS_ENDPOINT": logs.url,
                        "GRAPH_ENDPOINT": graph.endpoint, "FINDINGS_CONNECTION_STRING": azurite.connection_string,
                        "AUDIT_SCHEDULE": "0 0 6 * * *", "TEAMS_WEBHOOK_URL": teams.webhook_url,
                        "MAX_LOOKBACK_DAYS": "1"}  # one daily window per detection keeps the run to seconds
            for name, value in settings.items():
                monkeypatch.setenv(name, value)
            yield logs, graph, teams


def test_the_timer_runs_a_real_audit_from_the_app_settings(function_app_functions, audited_tenant, azurite,
                                                           caplog):
    """The production builder end to end: DefaultAzureCredential (managed identity endpoint) -> Log Analytics
    queries, the Graph inventory, findings and the run in Table Storage (Azurite), the digest to Teams."""
    logs, graph, teams = audited_tenant
    store = TableFindingStore(TableServiceClient.from_connection_string(azurite.connection_string))
    store.ensure_tables()
    before = {run.id for run in store.list_runs(limit=1000)[0]}
    with caplog.at_level(logging.INFO, logger="wiaudit.function_app"):
        function_app_functions["audit"].get_user_function()(TimerRequest(past_due=True))
    runs = [run for run in store.list_runs(limit=1000)[0] if run.id not in before]
    assert len(runs) == 1
    run = runs[0]
    assert run.trigger == "timer" and run.status == "succeeded", run.errors
    assert logs.query_requests and all({k.lower(): v for k, v in r.headers.items()}["authorization"]
                                       .startswith("Bearer mi-") for r in logs.query_requests)
    assert graph.requests  # the inventory went through Microsoft Graph
    assert run.counts and not run.errors
    assert len(teams.received) == 1 and teams.received[0].json()["type"] == "message"  # the digest
    assert store.pending_notifications("teams") == []
    assert sum(count["findings"] for count in run.counts.values()) > 0
    assert any("past due" in record.getMessage() for record in caplog.records)
    findings, _ = store.query_findings(limit=1000)
    assert {finding.detection_id for finding in findings} >= set(run.counts) - {d for d, c in run.counts.items()
                                                                                if not c["findings"]}
