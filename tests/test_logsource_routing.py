"""Raw records reach the table Azure would put them in, whatever category Azure wrote, and nothing is routed to a
table named after a file: legacy activity-log categories, records without a top-level time, Graph activity's
tenant and the non-interactive sign-ins' processing time."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.logsource.database import LogDatabase
from shared.logsource.embedded import EmbeddedLogSource

NOW = datetime(2026, 3, 11, tzinfo=UTC)
TENANT = "8a1f5c3e-2d4b-4c6a-9e7f-0b1c2d3e4f50"
SP_OID = "11111111-2222-4333-8444-555555555555"
VAULT = ("/SUBSCRIPTIONS/3C9D2B7A-6E51-4F08-A1B2-C3D4E5F60718/RESOURCEGROUPS/RG-PAYROLL/PROVIDERS/MICROSOFT.KEYVAULT"
         "/VAULTS/KV-PAYROLL")


def _load(folder: Path):
    database = LogDatabase()
    report = database.load_folder(folder)
    return EmbeddedLogSource(database, NOW), report


def _write(folder: Path, name: str, *records: dict) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def _activity(category: str, operation: str) -> dict:
    return {"time": "2026-03-10T06:12:33.5523110Z", "resourceId": VAULT, "operationName": operation,
            "category": category, "resultType": "Success", "resultSignature": "Succeeded.OK",
            "callerIpAddress": "20.61.5.10", "correlationId": "e8c9d0e1-f2a3-41e7-92f3-6e7f8091a2b3",
            "level": "Information",
            "identity": {"claims": {"appid": "aaaaaaaa-1111-4222-8333-444444444444", "uti": "qT3xV9kLm0aB",
                                    "http://schemas.microsoft.com/identity/claims/objectidentifier": SP_OID}},
            "properties": {"statusCode": "OK"}}


@pytest.mark.parametrize("category, operation", [
    ("Action", "MICROSOFT.KEYVAULT/VAULTS/LISTKEYS/ACTION"),
    ("Write", "MICROSOFT.KEYVAULT/VAULTS/ACCESSPOLICIES/WRITE"),
    ("Delete", "MICROSOFT.KEYVAULT/VAULTS/DELETE"),
])
def test_legacy_activity_log_categories_land_in_azure_activity(tmp_path, category, operation):
    _write(tmp_path, "insights-operational-logs/PT1H.json", _activity(category, operation))
    source, report = _load(tmp_path)
    assert report.problems == []
    assert report.rows == Counter({"AzureActivity": 1})
    rows = source.query("AzureActivity | project TimeGenerated, Caller, CallerIpAddress, OperationNameValue, "
                        "CategoryValue, ActivityStatusValue, SubscriptionId, ResourceGroup, ResourceProviderValue, "
                        "Uti = tostring(Claims_d.uti), Type", NOW, NOW)
    assert rows == [{
        "TimeGenerated": datetime(2026, 3, 10, 6, 12, 33, 552311, tzinfo=UTC), "Caller": SP_OID,
        "CallerIpAddress": "20.61.5.10", "OperationNameValue": operation, "CategoryValue": category,
        "ActivityStatusValue": "Success", "SubscriptionId": "3C9D2B7A-6E51-4F08-A1B2-C3D4E5F60718",
        "ResourceGroup": "RG-PAYROLL", "ResourceProviderValue": "MICROSOFT.KEYVAULT", "Uti": "qT3xV9kLm0aB",
        "Type": "AzureActivity"}]


def test_a_sign_in_without_a_top_level_time_takes_its_created_time(tmp_path):
    _write(tmp_path, "download.json", {
        "category": "ServicePrincipalSignInLogs", "tenantId": TENANT, "resultType": "0",
        "properties": {"createdDateTime": "2026-03-10T05:00:01.25Z", "servicePrincipalId": SP_OID,
                       "servicePrincipalName": "payroll-sync", "ipAddress": "20.61.5.10"}})
    source, report = _load(tmp_path)
    assert report.problems == []
    assert report.rows == Counter({"AADServicePrincipalSignInLogs": 1})
    assert source.query("AADServicePrincipalSignInLogs | project TimeGenerated, ServicePrincipalId, IPAddress, "
                        "AADTenantId", NOW, NOW) == [
        {"TimeGenerated": datetime(2026, 3, 10, 5, 0, 1, 250000, tzinfo=UTC), "ServicePrincipalId": SP_OID,
         "IPAddress": "20.61.5.10", "AADTenantId": TENANT}]
    assert "download" not in {name.lower() for name in source.database._columns}


def test_an_audit_record_without_a_top_level_time_takes_its_activity_time(tmp_path):
    _write(tmp_path, "audit.json", {
        "category": "AuditLogs", "tenantId": TENANT, "operationName": "Add service principal",
        "properties": {"id": "Directory_1", "activityDateTime": "2026-03-10T07:30:00Z",
                       "activityDisplayName": "Add service principal", "category": "ApplicationManagement"}})
    source, report = _load(tmp_path)
    assert report.problems == []
    assert source.query("AuditLogs | project TimeGenerated, Id, OperationName, Category", NOW, NOW) == [
        {"TimeGenerated": datetime(2026, 3, 10, 7, 30, tzinfo=UTC), "Id": "Directory_1",
         "OperationName": "Add service principal", "Category": "ApplicationManagement"}]


def test_a_raw_record_with_no_time_at_all_is_reported_not_given_a_table(tmp_path):
    path = _write(tmp_path, "download.json",
                  {"category": "ServicePrincipalSignInLogs", "properties": {"servicePrincipalId": SP_OID}},
                  {"time": "2026-03-10T05:00:00Z", "category": "ServicePrincipalSignInLogs",
                   "properties": {"servicePrincipalId": SP_OID}})
    source, report = _load(tmp_path)
    assert [str(problem) for problem in report.problems] == [
        f"{path}:1: no TimeGenerated (nor a time it could be taken from): no detection could see it"]
    assert report.rows == Counter({"AADServicePrincipalSignInLogs": 1})
    assert "download" not in {name.lower() for name in source.database._columns}


def test_unknown_categories_are_reported_and_make_no_table(tmp_path):
    path = _write(tmp_path, "insights-logs-networkaccesstrafficlogs/PT1H.json",
                  {"time": "2026-03-10T05:00:00Z", "category": "NetworkAccessTrafficLogs", "properties": {}})
    source, report = _load(tmp_path)
    assert [str(problem) for problem in report.problems] == [
        f"{path}:1: no Log Analytics table for category 'NetworkAccessTrafficLogs'"]
    assert report.rows == Counter()
    assert report.unmatched == [path]
    assert not any("network" in name.lower() for name in source.database._columns)


def test_graph_activity_records_carry_their_tenant(tmp_path):
    _write(tmp_path, "graph.json", {
        "time": "2026-03-10T05:00:02.44Z", "category": "MicrosoftGraphActivityLogs",
        "resourceId": f"/tenants/{TENANT}/providers/Microsoft.aadiam", "operationName": "Microsoft Graph Activity",
        "properties": {"tenantId": TENANT, "requestMethod": "GET", "servicePrincipalId": SP_OID,
                       "responseStatusCode": 200}})
    source, report = _load(tmp_path)
    assert report.problems == []
    assert source.query("MicrosoftGraphActivityLogs | project AadTenantId, TenantId, ServicePrincipalId, "
                        "ResponseStatusCode", NOW, NOW) == [
        {"AadTenantId": TENANT, "TenantId": TENANT, "ServicePrincipalId": SP_OID, "ResponseStatusCode": 200}]


def test_processing_time_reaches_its_column_in_each_sign_in_table(tmp_path):
    record = {"time": "2026-03-10T06:01:02.3Z", "tenantId": TENANT, "resultType": "0",
              "properties": {"userPrincipalName": "alice@contoso.example", "processingTimeInMilliseconds": 87}}
    _write(tmp_path, "noninteractive.json", {**record, "category": "NonInteractiveUserSignInLogs"})
    _write(tmp_path, "interactive.json", {**record, "category": "SignInLogs"})
    source, report = _load(tmp_path)
    assert report.problems == []
    assert source.query("AADNonInteractiveUserSignInLogs | project UserPrincipalName, ProcessingTimeInMs",
                        NOW, NOW) == [{"UserPrincipalName": "alice@contoso.example", "ProcessingTimeInMs": "87"}]
    assert source.query("SigninLogs | project UserPrincipalName, ProcessingTimeInMilliseconds", NOW, NOW) == [
        {"UserPrincipalName": "alice@contoso.example", "ProcessingTimeInMilliseconds": "87"}]
