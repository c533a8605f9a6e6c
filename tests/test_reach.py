"""The reach collection (Microsoft Sentinel's own queries, benchmarks/sentinel_queries): the ones that run offline
give exactly the rows their KQL means on hand-made audit records, and every one that does not run is refused
naming the feature it needs, never answered wrongly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from benchmarks.reach import measure, sentinel_queries
from shared.hunt.outcome import FAILED, RAN, REFUSED
from shared.logsource.database import LogDatabase

NOW = datetime(2026, 3, 14, 6, 0, tzinfo=UTC)
CRED = "Add service principal credentials"


def _user(upn: str, ip: str = "") -> dict:
    return {"user": {"userPrincipalName": upn, "ipAddress": ip}}


def _audit(hours_ago: float, operation: str, initiated_by: dict, targets: list, correlation: str) -> tuple:
    return (None, {"TimeGenerated": NOW - timedelta(hours=hours_ago), "OperationName": operation, "Result": "success",
                   "InitiatedBy": initiated_by, "TargetResources": targets, "CorrelationId": correlation,
                   "Id": correlation})


FEDERATED = [{"displayName": "FederatedIdentityCredentials", "oldValue": "[]", "newValue": '[{"Name":"gh"}]'}]
RECORDS = [
    _audit(30 * 24, CRED, _user("admin@contoso.com"), [{"id": "sp-1", "displayName": "old-app"}], "c-known"),
    _audit(10, "Add member to role.", _user("ga@contoso.com"),
           [{"id": "u-9", "userPrincipalName": "newbie@contoso.com", "type": "User"},
            {"displayName": "Application Administrator", "type": "Role"}], "c-role"),
    _audit(3, CRED, _user("newbie@contoso.com", "203.0.113.7"),
           [{"id": "sp-9", "displayName": "payroll", "type": "ServicePrincipal"}], "c-cred-new"),
    _audit(2, CRED, _user("admin@contoso.com", "198.51.100.2"),
           [{"id": "sp-9", "displayName": "payroll", "type": "ServicePrincipal"}], "c-cred-admin"),
    _audit(2, "Update service principal", _user("eve@contoso.com", "203.0.113.5"),
           [{"id": "sp-5", "displayName": "deploy-bot", "modifiedProperties": FEDERATED}], "c-fed"),
    _audit(26, "Update service principal", _user("eve@contoso.com", "203.0.113.5"),
           [{"id": "sp-5", "displayName": "deploy-bot", "modifiedProperties": FEDERATED}], "c-fed-old"),
    _audit(2, "Update service principal", _user("eve@contoso.com"),
           [{"id": "sp-5", "displayName": "deploy-bot", "modifiedProperties": [{"displayName": "AccountEnabled"}]}],
           "c-other-change"),
    _audit(5, "Add service principal", _user("mallory@contoso.com"),
           [{"id": "sp-2", "displayName": "evil-app"}], "c-sp"),
    _audit(4.5, "Consent to application", _user("mallory@contoso.com", "198.51.100.1"),
           [{"id": "sp-2", "displayName": "evil-app"}], "c-consent"),
    _audit(1, "Add app role assignment to service principal", _user("mallory@contoso.com"),
           [{"id": "sp-2", "displayName": "evil-app"}], "c-late-grant"),
]

KEY_ADDED = ('["[KeyIdentifier=0e1d2c3b-4a59-4687-9a5b-6c7d8e9f0a1b,KeyType=Password,KeyUsage=Verify,'
             'DisplayName=backdoor]"]')
DASH_OP = "Update application \u2013 Certificates and secrets management "  # as Entra writes it


def _directory_change(hours_ago: float, operation: str, initiated_by: dict, target: dict, correlation: str,
                      **columns) -> tuple:
    location, row = _audit(hours_ago, operation, initiated_by, [target], correlation)
    return location, {**row, "ActivityDisplayName": operation, "Category": "ApplicationManagement",
                      "LoggedByService": "Core Directory", **columns}


RECORDS += [
    _directory_change(1.5, DASH_OP, _user("mallory@contoso.com", "185.220.101.47"),
                      {"id": "app-1", "displayName": "payroll-app", "type": "Application", "modifiedProperties": [
                          {"displayName": "KeyDescription", "oldValue": "[]", "newValue": KEY_ADDED}]},
                      "c-first", AdditionalDetails=[{"key": "User-Agent", "value": "curl/8.5"}]),
    _directory_change(1.2, "Add delegated permission grant", _user("mallory@contoso.com", "185.220.101.47"),
                      {"id": "sp-7", "displayName": "mail-reader", "type": "ServicePrincipal", "modifiedProperties": [
                          {"displayName": "DelegatedPermissionGrant.Scope", "newValue": '"Mail.Read User.Read"'}]},
                      "c-mail", AdditionalDetails=[{"key": "User-Agent", "value": "Mozilla/5.0"}]),
    _directory_change(1.1, "Add app role assignment to service principal",
                      {"app": {"displayName": "deployer", "servicePrincipalId": "sp-77"}},
                      {"id": "sp-graph", "displayName": "Microsoft Graph", "type": "ServicePrincipal",
                       "modifiedProperties": [
                           {"displayName": "AppRole.Value", "newValue": '"RoleManagement.ReadWrite.Directory"'},
                           {"displayName": "ServicePrincipal.DisplayName", "newValue": '"automation-admin"'},
                           {"displayName": "ServicePrincipal.ObjectID", "newValue": '"sp-44"'}]},
                      "c-role-grant"),
]

EXPECTED = {
    "ServicePrincipalFederatedIdentityCredentialAdded.yaml": [
        {"TimeGenerated": NOW - timedelta(hours=2), "TargetSpName": "deploy-bot", "TargetSpId": "sp-5",
         "OldCreds": "[]", "NewCreds": '[{"Name":"gh"}]', "Actor": "eve@contoso.com", "AccountName": "eve",
         "AccountUPNSuffix": "contoso.com", "ActorIp": "203.0.113.5", "CorrelationId": "c-fed"}],
    "ServicePrincipalCredentialAdditionByRareActor.yaml": [
        {"TimeGenerated": NOW - timedelta(hours=3), "OperationName": CRED, "Actor": "newbie@contoso.com",
         "AccountName": "newbie", "AccountUPNSuffix": "contoso.com", "ActorApp": "", "ActorIp": "203.0.113.7",
         "TargetDisplayName": "payroll", "TargetId": "sp-9", "TargetType": "ServicePrincipal",
         "CorrelationId": "c-cred-new", "Result": "success"}],
    "FreshRoleGrantedActorSpCredentialAdded.yaml": [
        {"TimeGenerated": NOW - timedelta(hours=3), "ActorUpn": "newbie@contoso.com", "AccountName": "newbie",
         "AccountUPNSuffix": "contoso.com", "RoleName": "Application Administrator",
         "RoleGrantedTime": NOW - timedelta(hours=10), "TargetSpName": "payroll", "TargetSpId": "sp-9",
         "ActorIp": "203.0.113.7", "CorrelationId": "c-cred-new"}],
    "NewServicePrincipalGrantedAdminConsent.yaml": [
        {"TimeGenerated": NOW - timedelta(hours=4.5), "SpName": "evil-app", "SpId": "sp-2",
         "OperationName": "Consent to application", "CreatingActor": "mallory@contoso.com",
         "ConsentActor": "mallory@contoso.com", "AccountName": "mallory", "AccountUPNSuffix": "contoso.com",
         "ConsentActorIp": "198.51.100.1", "SpCreatedTime": NOW - timedelta(hours=5), "CorrelationId": "c-consent"}],
    # Sentinel's analytic rules return every column of AuditLogs too: the columns they compute are checked
    "FirstAppOrServicePrincipalCredential.yaml": [
        {"TimeGenerated": NOW - timedelta(hours=1.5), "OperationName": DASH_OP,
         "InitiatingUserOrApp": "mallory@contoso.com", "InitiatingIpAddress": "185.220.101.47", "UserAgent": "curl/8.5",
         "targetDisplayName": "payroll-app", "targetId": "app-1", "targetType": "Application",
         "keyDisplayName": "backdoor", "keyType": "Password", "keyUsage": "Verify",
         "keyIdentifier": "0e1d2c3b-4a59-4687-9a5b-6c7d8e9f0a1b", "CorrelationId": "c-first", "Name": "mallory",
         "UPNSuffix": "contoso.com"}],
    "MailPermissionsAddedToApplication.yaml": [
        {"TimeGenerated": NOW - timedelta(hours=1.2), "OperationName": "Add delegated permission grant",
         "InitiatingUser": "mallory@contoso.com", "UserIPAddress": "185.220.101.47", "UserAgent": "Mozilla/5.0",
         "PermissionsAddedTo": "mail-reader", "Permissions": "Mail.Read User.Read", "Type": "ServicePrincipal",
         "CorrelationId": "c-mail", "Name": "mallory", "UPNSuffix": "contoso.com"}],
    "AzureADRoleManagementPermissionGrant.yaml": [
        {"TimeGenerated": NOW - timedelta(hours=1.1), "OperationName": "Add app role assignment to service principal",
         "Result": "success", "PermissionGrant": "RoleManagement.ReadWrite.Directory",
         "AppDisplayName": "automation-admin", "AppServicePrincipalId": "sp-44", "Initiator": "deployer",
         "InitiatorId": "sp-77", "CorrelationId": "c-role-grant", "Name": "deployer", "UPNSuffix": ""}],
}
FIRST_COLUMNS = {"FirstAppOrServicePrincipalCredential.yaml": [
    "TimeGenerated", "OperationName", "InitiatingUserOrApp", "InitiatingIpAddress", "UserAgent", "targetDisplayName",
    "targetId", "targetType", "keyDisplayName", "keyType", "keyUsage", "keyIdentifier", "CorrelationId", "TenantId"]}


@pytest.fixture(scope="module")
def reach():
    database = LogDatabase()
    database.insert("AuditLogs", RECORDS)
    return measure(database, NOW, rewriting=True)


def test_the_collection_keeps_its_licence_and_sources():
    folder = Path(__file__).parent.parent / "benchmarks" / "sentinel_queries"
    assert "MIT License" in (folder / "LICENSE").read_text()
    sources = (folder / "SOURCES.md").read_text()
    queries = sentinel_queries()
    assert len(queries) >= 10 and all(query.text for query in queries)
    for query in queries:
        assert query.path is not None and query.path.relative_to(folder).as_posix() in sources, query.name


def test_what_runs_gives_exactly_the_rows_its_kql_means(reach):
    ran = {o.query.path.name: o.rows for o in reach.outcomes if o.status == RAN}
    assert set(EXPECTED) <= set(ran), f"expected to run: {sorted(set(EXPECTED) - set(ran))}"
    for name, rows in EXPECTED.items():
        assert [{column: row.get(column) for column in rows[0]} for row in ran[name]] == rows, name
    for name, columns in FIRST_COLUMNS.items():
        assert list(ran[name][0])[:len(columns)] == columns, name  # its project-reorder
    assert set(ran) == set(EXPECTED), "a query runs offline now: give it expected rows here"


def test_every_refusal_names_the_feature_and_where(reach):
    refused = [o for o in reach.outcomes if o.status == REFUSED]
    assert refused
    for outcome in refused:
        assert outcome.feature, outcome.query.name
        assert outcome.feature == "column names that differ only in case" or " at line " in outcome.reason, (
            outcome.reason)
    assert not [o.reason for o in reach.outcomes if o.status == FAILED]
