"""Shared pytest fixtures."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

# --- The local home (shared/local/home.py): never the project's own .wiaudit in tests ----------------


@pytest.fixture(scope="session", autouse=True)
def wiaudit_home(tmp_path_factory) -> Iterator[Any]:
    """WIAUDIT_HOME for the whole session (subprocesses inherit it); its Azurite, if a command started one, is
    stopped at the end. A test that needs a fresh store sets its own home and stops its Azurite."""
    import os

    from shared.local.project_azurite import ProjectAzurite

    home = tmp_path_factory.mktemp("wiaudit-home")
    previous = os.environ.get("WIAUDIT_HOME")
    os.environ["WIAUDIT_HOME"] = str(home)
    yield home
    ProjectAzurite(home).stop()
    if previous is None:
        os.environ.pop("WIAUDIT_HOME", None)
    else:
        os.environ["WIAUDIT_HOME"] = previous


# --- FindingStore on Azurite (shared/local/azurite.py, shared/store/) ---------------------------

T0 = datetime(2024, 5, 1, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def azurite() -> Iterator[Any]:
    """One in-memory Azurite Table service for the whole session (tests keep apart by table prefix)."""
    from shared.local.azurite import AzuriteTable

    with AzuriteTable(location=None) as running:
        yield running


@pytest.fixture
def table_prefix() -> str:
    """A fresh table-name prefix per test, so no test sees another's rows."""
    return f"t{uuid.uuid4().hex[:16]}"


@pytest.fixture(scope="session")
def table_service(azurite: Any) -> Any:
    from azure.data.tables import TableServiceClient

    return TableServiceClient.from_connection_string(azurite.connection_string)


@pytest.fixture
def finding_store(table_service: Any, table_prefix: str) -> Any:
    """A TableFindingStore with its own tables on the session's Azurite, channels teams and email."""
    from shared.store import TableFindingStore

    store = TableFindingStore(table_service, prefix=table_prefix, channels=("teams", "email"))
    store.ensure_tables()
    return store


@pytest.fixture
def unavailable_stores() -> list[tuple[Callable[[], Any], str]]:
    """Store factories the API cannot use, each named: "unreachable" (its endpoint answers nothing, no retries) and
    "unconfigured" (FINDINGS_TABLE_ENDPOINT is not set)."""
    from azure.data.tables import TableServiceClient

    from shared.settings import SettingsError
    from shared.store import TableFindingStore

    unreachable = TableFindingStore(TableServiceClient.from_connection_string(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;"), prefix="nowhere")
    unreachable.service._client._config.retry_policy.total_retries = 0

    def unconfigured() -> Any:
        raise SettingsError("setting FINDINGS_TABLE_ENDPOINT is not set")

    return [(lambda: unreachable, "unreachable"), (unconfigured, "unconfigured")]


@pytest.fixture(scope="session")
def make_finding() -> Callable[..., Any]:
    """Factory of Findings: make_finding(principal="sp1", day=0, detection="det_a", **overrides)."""
    from shared.findings import Finding

    def make(principal: str = "sp1", day: int = 0, detection: str = "det_a", **overrides: Any) -> Finding:
        start = T0 + timedelta(days=day)
        fields: dict[str, Any] = {
            "detection_id": detection, "detection_name": f"Detection {detection}", "severity": "Medium",
            "principal_id": principal, "principal_name": f"name-{principal}",
            "entities": {"Account.AadUserId": principal}, "window_start": start,
            "window_end": start + timedelta(days=1), "first_seen": start + timedelta(hours=1),
            "last_seen": start + timedelta(hours=2), "summary": f"{detection} fired for {principal}",
            "evidence": {"count": 3, "ips": ["10.0.0.1"]},
        }
        fields.update(overrides)
        return Finding(**fields)

    return make


# --- The Azure Functions app (function_app.py) ---------------------------------------------------


@pytest.fixture(scope="session")
def function_app_functions() -> dict[str, Any]:
    """function_app's functions by name. `app.get_functions()` raises on a second call, so it is made once here."""
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:  # `python -m pytest` puts the repository root on the path, plain `pytest` does not
        sys.path.insert(0, root)
    import function_app

    return {function.get_function_name(): function for function in function_app.app.get_functions()}


# --- The sample tenant most tests audit, generated and loaded once per session ----------------------


@pytest.fixture(scope="session")
def sample_tenant(tmp_path_factory) -> Any:
    """Seed 7, 20 principals (or the stories' minimum), 10 days of logs ending at SAMPLE_NOW. Read-only."""
    from shared.sample_tenant.generator import MIN_SERVICE_PRINCIPALS, generate

    out = tmp_path_factory.mktemp("sample-tenant")
    generate(out, seed=7, service_principals=max(20, MIN_SERVICE_PRINCIPALS), days=10)
    return out


@pytest.fixture(scope="session")
def sample_source(sample_tenant: Any) -> Any:
    """The sample tenant's logs in the embedded engine (shared, so its query translations are reused)."""
    from shared.logsource.embedded import EmbeddedLogSource
    from shared.sample_tenant.generator import SAMPLE_NOW

    return EmbeddedLogSource.from_folder(sample_tenant / "logs", SAMPLE_NOW)[0]


# --- The managed identity of the Function, as azure-identity reaches it in App Service ---------------


@pytest.fixture(scope="module")
def token_server() -> Iterator[Any]:
    from servers.token_server import ManagedIdentityTokenServer

    with ManagedIdentityTokenServer() as server:
        yield server


@pytest.fixture
def credential(token_server, monkeypatch) -> Iterator[Any]:
    """The production credential class, pointed at the local token endpoint the way App Service points it."""
    from azure.identity import ManagedIdentityCredential

    for name, value in token_server.environ.items():
        monkeypatch.setenv(name, value)
    with ManagedIdentityCredential() as credential:
        yield credential


# --- Log Analytics' Logs Ingestion API, where findings and their changes go (shared/export/) ---------------


@pytest.fixture
def ingestion_server(token_server) -> Iterator[Any]:
    """The local Logs Ingestion API with one data collection rule (`rule_id`), checking the managed identity's
    tokens."""
    from servers.ingestion_server import IngestionServer

    with IngestionServer("dcr-" + "0123456789abcdef" * 2, token_validator=token_server.is_valid) as server:
        yield server


@pytest.fixture
def ingestion_sink(ingestion_server, credential) -> Iterator[Any]:
    """The production sink on the real `azure-monitor-ingestion` client, pointed at the local server, with two quick
    retries."""
    from azure.monitor.ingestion import LogsIngestionClient

    from shared.export.ingestion import LogsIngestionSink

    client = LogsIngestionClient(ingestion_server.url, credential, retry_total=2, retry_backoff_factor=0.01)
    sink = LogsIngestionSink(ingestion_server.url, ingestion_server.rule_id, credential, client=client)
    yield sink
    sink.close()
