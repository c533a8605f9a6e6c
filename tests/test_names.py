"""One resolver for names: identities by object id, app id, application object id, display name or a unique prefix;
detections by GUID, file name or a unique prefix; ambiguity lists the candidates, an unknown name says so. In the
CLI (`trail`, `findings list`) and the API filters. `trail` follows the identity to its application's object id."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from shared.api import create_api
from shared.catalog.loader import rule_names
from shared.cli import app
from shared.directory.model import DirectorySnapshot
from shared.identities import IDENTITY_QUERIES, directory_identities, resolve_identity
from shared.kql.validator import validate_queries
from shared.names import AmbiguousName, UnknownName, resolve
from shared.posture.model import CredentialRecord
from shared.store import TableFindingStore

runner = CliRunner(env={"COLUMNS": "250"})
KEY = "test-key-0123456789abcdefghijkl"
NOW = datetime(2026, 3, 15, 6, 0, tzinfo=UTC)
SP, APP_ID, APP_OBJECT = "c1d3fcff-0000-4000-8000-000000000001", "4cdd2055-0000-4000-8000-000000000002", \
    "c7a2ea20-0000-4000-8000-000000000003"
SNAPSHOT = DirectorySnapshot.model_validate({
    "tenantId": "t", "exportedAt": "2026-03-15T00:00:00Z",
    "applications": [{"id": APP_OBJECT, "appId": APP_ID, "displayName": "payroll-sync"}],
    "servicePrincipals": [
        {"id": SP, "appId": APP_ID, "displayName": "payroll-sync"},
        {"id": "aaaa0000-0000-4000-8000-000000000001", "appId": "b1", "displayName": "reports"},
        {"id": "aaaa0000-0000-4000-8000-000000000002", "appId": "b2", "displayName": "Reports"},
    ]})
IDENTITIES = directory_identities(SNAPSHOT)
RULES = rule_names()
NEW_NETWORK_ID = next(rule.id for rule in RULES if "workload_signin_new_network" in rule.names)


@pytest.mark.parametrize("name", [SP, APP_ID, APP_OBJECT, "payroll-sync", "PAYROLL-SYNC", "payroll-s", "c1d3f"])
def test_an_identity_by_any_of_its_names_or_a_unique_prefix(name):
    found = resolve_identity(name, IDENTITIES)
    assert found.id == SP and set(found.aliases) == {APP_ID, APP_OBJECT}


def test_an_ambiguous_identity_lists_the_candidates_and_an_unknown_one_says_so():
    with pytest.raises(AmbiguousName) as ambiguous:
        resolve_identity("reports", IDENTITIES)
    assert str(ambiguous.value).startswith("ambiguous identity reports, it could be: ")
    assert "aaaa0000-0000-4000-8000-000000000001" in str(ambiguous.value)
    assert "aaaa0000-0000-4000-8000-000000000002" in str(ambiguous.value)
    with pytest.raises(UnknownName, match=r"^unknown identity payroll-synk$"):
        resolve_identity("payroll-synk", IDENTITIES)


@pytest.mark.parametrize("name", [NEW_NETWORK_ID, NEW_NETWORK_ID[:6], "workload_signin_new_network",
                                  "workload_signin_new_n", "WORKLOAD_SIGNIN_NEW_NETWORK"])
def test_a_detection_by_guid_file_name_or_unique_prefix(name):
    assert resolve(name, RULES, "detection").id == NEW_NETWORK_ID


def test_an_ambiguous_or_unknown_detection():
    with pytest.raises(AmbiguousName, match=r"credential_added_to_active_identity.*credential_added_to_dormant"):
        resolve("credential_added_to", RULES, "detection")
    with pytest.raises(UnknownName, match=r"^unknown detection payroll_rule$"):
        resolve("payroll_rule", RULES, "detection")


# --- wiaudit trail ----------------------------------------------------------------------------------------------

def _trail(tenant: Path, *arguments: str):
    return runner.invoke(app, ["trail", *arguments, "--logs", str(tenant / "logs"), "--now", "2026-03-15T06:00:00Z",
                               "--since", "2026-03-13T00:00:00Z"])


def _credential_on_application(output: str) -> bool:
    return any("Certificates and secrets management" in line and "payroll-sync" in line
               for line in output.splitlines())


def test_trail_of_a_service_principal_shows_the_credential_added_on_its_application(sample_tenant):
    snapshot = DirectorySnapshot.load(sample_tenant / "directory.json")
    sp = next(sp for sp in snapshot.servicePrincipals if sp.displayName == "payroll-sync")
    application = next(app for app in snapshot.applications if app.appId == sp.appId)
    by_id = _trail(sample_tenant, sp.id, "--directory", str(sample_tenant / "directory.json"))
    assert by_id.exit_code == 0, by_id.output
    assert _credential_on_application(by_id.output) and application.id in by_id.output.replace("\n", "")
    by_name_from_logs = _trail(sample_tenant, "payroll-sync")
    assert by_name_from_logs.exit_code == 0, by_name_from_logs.output
    assert _credential_on_application(by_name_from_logs.output)
    assert by_name_from_logs.output.count("\n") == by_id.output.count("\n")


def test_trail_of_an_unknown_or_ambiguous_identity_fails_by_name(sample_tenant, tmp_path):
    unknown = _trail(sample_tenant, "payroll-synk")
    assert unknown.exit_code == 2 and "unknown identity payroll-synk" in unknown.output
    assert "0 events" not in unknown.output
    snapshot = tmp_path / "directory.json"
    SNAPSHOT.save(snapshot)
    ambiguous = _trail(sample_tenant, "reports", "--directory", str(snapshot))
    assert ambiguous.exit_code == 2 and "ambiguous identity reports" in ambiguous.output


# --- findings list and GET /api/findings ------------------------------------------------------------------------

@pytest.fixture
def store(table_service, table_prefix, make_finding):
    """Findings of the new-network rule for payroll-sync and reports, and the inventory naming payroll-sync."""
    store = TableFindingStore(table_service, prefix=table_prefix, channels=("teams",))
    store.ensure_tables()
    store.upsert_findings([make_finding(SP, detection=NEW_NETWORK_ID, principal_name="payroll-sync"),
                           make_finding("other", detection=NEW_NETWORK_ID, principal_name="reports"),
                           make_finding("legacy", detection="retired-rule-id")], "run-1", NOW)
    store.replace_inventory([CredentialRecord(
        principal_id=SP, principal_name="payroll-sync", principal_type="application", app_id=APP_ID,
        application_id=APP_OBJECT, held_on="application", key_id="k1", type="secret", status="active",
        usage_known=True)], NOW)
    return store


@pytest.mark.parametrize(("params", "expected"), [
    ({"principal": APP_OBJECT}, [SP]),
    ({"principal": APP_ID, "detection": "workload_signin_new"}, [SP]),
    ({"principal": "Payroll-Sync"}, [SP]),
    ({"detection": NEW_NETWORK_ID[:8]}, ["other", SP]),
    ({"detection": "retired-rule-id"}, ["legacy"]),  # a rule since removed: its stored findings stay reachable
    ({"principal": "other"}, ["other"]),  # not in the inventory, but stored findings name it
])
def test_api_filters_resolve_names(store, params, expected):
    with TestClient(create_api(lambda: store, api_key=KEY), headers={"x-api-key": KEY}) as client:
        response = client.get("/api/findings", params=params)
    assert response.status_code == 200, response.text
    assert sorted(item["principal_id"] for item in response.json()["items"]) == sorted(expected)


@pytest.mark.parametrize(("params", "message"), [
    ({"principal": "payroll-synk"}, "unknown identity payroll-synk"),
    ({"detection": "payroll_rule"}, "unknown detection payroll_rule"),
    ({"detection": "expir"}, "ambiguous detection expir"),
])
def test_api_refuses_unknown_or_ambiguous_names(store, params, message):
    with TestClient(create_api(lambda: store, api_key=KEY), headers={"x-api-key": KEY}) as client:
        response = client.get("/api/findings", params=params)
    assert response.status_code == 422 and message in response.text
    assert [error["field"] for error in response.json()["errors"]] == list(params)


def test_findings_list_resolves_names_and_fails_on_unknown_ones(azurite, table_service, make_finding, monkeypatch):
    monkeypatch.setenv("FINDINGS_CONNECTION_STRING", azurite.connection_string)
    cli_store = TableFindingStore(table_service, prefix="wiaudit", channels=("teams", "email"))
    cli_store.ensure_tables()
    finding = make_finding("names-sp", detection=NEW_NETWORK_ID, principal_name="names-test-identity")
    cli_store.upsert_findings([finding], "run-1", NOW + timedelta(days=1))
    listed = runner.invoke(app, ["findings", "list", "--detection", "workload_signin_new_net", "--principal",
                                 "NAMES-TEST-IDENTITY", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [item["id"] for item in json.loads(listed.stdout)] == [finding.id]
    unknown = runner.invoke(app, ["findings", "list", "--principal", "payroll-synk"])
    assert unknown.exit_code == 2 and "unknown identity payroll-synk" in unknown.output
    unknown = runner.invoke(app, ["findings", "list", "--detection", "payroll_rule"])
    assert unknown.exit_code == 2 and "unknown detection payroll_rule" in unknown.output


def test_the_identity_queries_pass_microsofts_kusto_parser():
    header = "let WindowStart = datetime(2026-01-01T00:00:00Z); let WindowEnd = datetime(2026-01-02T00:00:00Z);"
    checks = validate_queries(list(IDENTITY_QUERIES.items()), headers=dict.fromkeys(IDENTITY_QUERIES, header))
    assert {name: check.errors for name, check in checks.items() if check.errors} == {}
