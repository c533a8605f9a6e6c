"""Raw diagnostic-settings records (Storage PT1H.json blobs, Event Hub batches) land in the Log Analytics
tables and columns the detections query, with the values Log Analytics would show.

The fixtures in tests/fixtures/raw/tenant are hand-written in the shape Entra and Azure write them; they are
not produced by shared.sample_tenant, so these tests do not check the code against itself.
"""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.logsource.database import LogDatabase
from shared.logsource.embedded import EmbeddedLogSource
from shared.tables import table_schemas

RAW = Path(__file__).parent / "fixtures" / "raw"
TENANT = RAW / "tenant"
TENANT_ID = "8a1f5c3e-2d4b-4c6a-9e7f-0b1c2d3e4f50"
SP_BLOB = (TENANT / "insights-logs-serviceprincipalsigninlogs" / f"tenantId={TENANT_ID}" / "y=2026" / "m=03"
           / "d=10" / "h=05" / "m=00" / "PT1H.json")
NOW = datetime(2026, 3, 11, tzinfo=UTC)
START = datetime(2026, 3, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def loaded():
    database = LogDatabase()
    report = database.load_folder(TENANT)
    return EmbeddedLogSource(database, NOW), report


@pytest.fixture(scope="module")
def source(loaded) -> EmbeddedLogSource:
    return loaded[0]


def query(source: EmbeddedLogSource, kql: str) -> list[dict]:
    return source.query(kql, START, NOW)


def one(source: EmbeddedLogSource, kql: str) -> dict:
    rows = query(source, kql)
    assert len(rows) == 1, rows
    return rows[0]


# --- routing ---------------------------------------------------------------------------------------------------

def test_every_record_lands_in_its_table_and_nothing_is_reported(loaded):
    _, report = loaded
    assert report.problems == []
    assert report.files == 7
    assert report.rows == Counter({
        "AADServicePrincipalSignInLogs": 4,  # Storage container folder
        "AADManagedIdentitySignInLogs": 1,
        "AuditLogs": 2,
        "MicrosoftGraphActivityLogs": 1,
        "AADNonInteractiveUserSignInLogs": 1,  # a raw file with an arbitrary name
        "AzureActivity": 1,  # insights-activity-logs: no table hint, routed by category
        "AzureDiagnostics": 2,  # an Event Hub {"records": [...]} batch with an arbitrary name
    })


def test_type_column_is_the_table_name(source):
    for table, count in [("AADServicePrincipalSignInLogs", 4), ("AADManagedIdentitySignInLogs", 1),
                         ("AADNonInteractiveUserSignInLogs", 1), ("AuditLogs", 2), ("AzureActivity", 1),
                         ("AzureDiagnostics", 2), ("MicrosoftGraphActivityLogs", 1)]:
        rows = query(source, f"{table} | summarize n = count() by Type")
        assert rows == [{"Type": table, "n": count}]


def test_a_raw_blob_under_any_name_routes_by_category(tmp_path):
    shutil.copy(SP_BLOB, tmp_path / "whatever-i-downloaded.json")
    (tmp_path / "AuditLogs").mkdir()
    shutil.copy(SP_BLOB, tmp_path / "AuditLogs" / "misfiled.json")  # the folder hint loses to the category
    report = LogDatabase().load_folder(tmp_path)
    assert report.problems == []
    assert report.rows == Counter({"AADServicePrincipalSignInLogs": 8})


def test_a_storage_container_folder_names_the_table_for_rows_without_a_category(tmp_path):
    """Rows already in Log Analytics shape below `insights-logs-<category>` take the container's table."""
    folder = tmp_path / "insights-logs-managedidentitysigninlogs" / f"tenantId={TENANT_ID}" / "y=2026"
    folder.mkdir(parents=True)
    (folder / "PT1H.json").write_text(
        '{"TimeGenerated": "2026-03-10T05:00:00Z", "ServicePrincipalName": "mi-web", "ResultType": "0"}\n')
    database = LogDatabase()
    report = database.load_folder(tmp_path)
    assert report.problems == []
    assert report.rows == Counter({"AADManagedIdentitySignInLogs": 1})
    row = one(EmbeddedLogSource(database, NOW), "AADManagedIdentitySignInLogs | project ServicePrincipalName, Type")
    assert row == {"ServicePrincipalName": "mi-web", "Type": "AADManagedIdentitySignInLogs"}


def test_an_unknown_category_is_reported_with_file_and_line_and_the_rest_loads():
    folder = RAW / "unknown-category"
    database = LogDatabase()
    report = database.load_folder(folder)
    assert [str(problem) for problem in report.problems] == [
        f"{folder / 'PT1H.json'}:2: no Log Analytics table for category 'NetworkAccessTrafficLogs'"]
    assert report.rows == Counter({"AADServicePrincipalSignInLogs": 1, "AuditLogs": 1})
    source = EmbeddedLogSource(database, NOW)
    assert one(source, "AuditLogs | project OperationName")["OperationName"] == "Add service principal"


def test_an_unknown_category_inside_an_event_hub_batch_is_reported_at_its_line(tmp_path):
    good = SP_BLOB.read_text(encoding="utf-8").splitlines()[0]
    bad = '{"time": "2026-03-10T05:00:00Z", "category": "SomethingNew", "properties": {}}'
    (tmp_path / "hub.json").write_text(f'{{"records": [{good}]}}\n{{"records": [{good}, {bad}]}}\n')
    report = LogDatabase().load_folder(tmp_path)
    assert [str(problem) for problem in report.problems] == [
        f"{tmp_path / 'hub.json'}:2: no Log Analytics table for category 'SomethingNew'"]
    assert report.rows == Counter({"AADServicePrincipalSignInLogs": 2})


# --- service principal sign-ins ----------------------------------------------------------------------------------

def test_service_principal_sign_in_values(source):
    row = one(source, """
        AADServicePrincipalSignInLogs
        | where Id == "5c2a1f0e-1111-4a7b-9c3d-000000000001"
        | extend Country = tostring(parse_json(LocationDetails).countryOrRegion),
                 City = tostring(parse_json(LocationDetails).city),
                 PolicyName = tostring(parse_json(ConditionalAccessPolicies)[0].displayName),
                 PolicyResult = tostring(parse_json(ConditionalAccessPolicies)[0].result)
        | project TimeGenerated, CreatedDateTime, ServicePrincipalId, ServicePrincipalName, AppId,
                  ServicePrincipalCredentialKeyId, ServicePrincipalCredentialThumbprint, ClientCredentialType,
                  ResultType, NoDescription = isempty(ResultDescription), IPAddress, UniqueTokenIdentifier,
                  Country, City, PolicyName,
                  PolicyResult, ConditionalAccessStatus, ResourceDisplayName, ResourceIdentity,
                  ResourceServicePrincipalId, AutonomousSystemNumber, DurationMs, Location, Level, Identity,
                  Category, OperationName, AADTenantId, CorrelationId, _ResourceId
    """)
    assert row == {
        # seven fractional digits in the record; DuckDB keeps microseconds
        "TimeGenerated": datetime(2026, 3, 10, 5, 0, 0, 123456, tzinfo=UTC),
        "CreatedDateTime": datetime(2026, 3, 10, 4, 59, 58, 987654, tzinfo=UTC),
        "ServicePrincipalId": "11111111-2222-4333-8444-555555555555",
        "ServicePrincipalName": "payroll-sync",
        "AppId": "aaaaaaaa-1111-4222-8333-444444444444",
        "ServicePrincipalCredentialKeyId": "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
        "ServicePrincipalCredentialThumbprint": "",
        "ClientCredentialType": "clientSecret",
        "ResultType": "0",
        "NoDescription": True,
        "IPAddress": "20.61.5.10",
        "UniqueTokenIdentifier": "qT3xV9kLm0aB-cD4eF5gAA",
        "Country": "NL",
        "City": "Amsterdam",
        "PolicyName": "Workload identities only from NL",
        "PolicyResult": "success",
        "ConditionalAccessStatus": "success",
        "ResourceDisplayName": "Microsoft Graph",
        "ResourceIdentity": "00000003-0000-0000-c000-000000000000",  # properties.resourceId
        "ResourceServicePrincipalId": "0d2f5969-011b-460d-ac74-3291d227d49f",
        "AutonomousSystemNumber": "8075",
        "DurationMs": 137,  # "137" in the record: durationMs is sometimes a string
        "Location": "NL",
        "Level": "4",
        "Identity": "payroll-sync",
        "Category": "ServicePrincipalSignInLogs",
        "OperationName": "Sign-in activity",
        "AADTenantId": TENANT_ID,
        "CorrelationId": "c0a1b2c3-d4e5-4f60-8a7b-9c0d1e2f3a4b",
        "_ResourceId": f"/tenants/{TENANT_ID}/providers/Microsoft.aadiam",
    }


def test_location_and_policies_are_string_columns_holding_json(source):
    row = one(source, "AADServicePrincipalSignInLogs | where Id endswith '0001' "
                      "| project LocationDetails, ConditionalAccessPolicies, AuthenticationProcessingDetails")
    assert row["LocationDetails"] == ('{"city":"Amsterdam","state":"Noord-Holland","countryOrRegion":"NL",'
                                      '"geoCoordinates":{"latitude":52.374,"longitude":4.8897}}')
    assert row["ConditionalAccessPolicies"] == (
        '[{"id":"7e1c0b9a-3f2d-4e5c-8b6a-1d0e9f8a7b6c","displayName":"Workload identities only from NL",'
        '"enforcedGrantControls":["Block"],"enforcedSessionControls":[],"result":"success"}]')
    assert row["AuthenticationProcessingDetails"] == (
        '[{"key":"Azure AD App Authentication Library",'
        '"value":"Family: MSAL Library: MSAL.Python 1.28.0 Platform: Python"}]')


def test_result_type_is_a_string_and_failures_carry_the_aadsts_code(source):
    rows = query(source, 'AADServicePrincipalSignInLogs | where ResultType == "0" | summarize n = count()')
    assert rows == [{"n": 3}]
    row = one(source, 'AADServicePrincipalSignInLogs | where ResultType != "0" '
                      "| project ResultType, ResultDescription, IPAddress, TimeGenerated, DurationMs, "
                      "ServicePrincipalCredentialKeyId, Location")
    assert row == {
        "ResultType": "7000215",
        # no resultDescription in the record: taken from properties.status.failureReason
        "ResultDescription": "Invalid client secret provided. Ensure the secret being sent in the request is the "
                             "client secret value, not the client secret ID, for a secret added to app "
                             "'{identifier}'.",
        "IPAddress": "198.51.100.7",
        "TimeGenerated": datetime(2026, 3, 10, 5, 7, 41, 550000, tzinfo=UTC),
        "DurationMs": 0,
        "ServicePrincipalCredentialKeyId": "",
        "Location": "RO",
    }


def test_a_record_from_a_newer_entra_version_loads_and_adds_no_columns(loaded):
    source, _ = loaded
    row = one(source, 'AADServicePrincipalSignInLogs | where ServicePrincipalName == "build-agent" '
                      "| project TimeGenerated, ClientCredentialType, ServicePrincipalCredentialKeyId, "
                      "ServicePrincipalCredentialThumbprint, UniqueTokenIdentifier, Agent, "
                      "Country = tostring(parse_json(LocationDetails).countryOrRegion)")
    assert row == {
        "TimeGenerated": datetime(2026, 3, 10, 5, 15, 0, tzinfo=UTC),  # .0000001 truncated to microseconds
        "ClientCredentialType": "certificate",
        "ServicePrincipalCredentialKeyId": "4b3a2910-8f7e-4d6c-a5b4-c3d2e1f0a9b8",
        "ServicePrincipalCredentialThumbprint": "A1B2C3D4E5F60718293A4B5C6D7E8F9012345678",
        "UniqueTokenIdentifier": "sV5zX1mNo2cD-eF6gH7iCC",
        "Agent": '{"agentType":"notAgentic"}',
        "Country": "NL",
    }
    # schemaVersion, ingestionPipeline, workloadIdentityRiskSignals, tokenProtectionStatusDetails: ignored
    columns = source.database.columns("AADServicePrincipalSignInLogs")
    assert set(columns) == set(table_schemas()["AADServicePrincipalSignInLogs"].columns)


def test_a_record_without_optional_fields_loads_with_them_empty(source):
    row = one(source, 'AADServicePrincipalSignInLogs | where ServicePrincipalName == "github-deployer" '
                      "| extend NoKey = isempty(ServicePrincipalCredentialKeyId), NoPlace = isempty(LocationDetails) "
                      "| project ClientCredentialType, FederatedCredentialId, ServicePrincipalCredentialKeyId, "
                      "Location, LocationDetails, ConditionalAccessPolicies, NoKey, NoPlace, IPAddress, "
                      "TimeGenerated")
    assert row == {
        "ClientCredentialType": "federatedIdentityCredential",
        "FederatedCredentialId": "2a3b4c5d-6e7f-4081-92a3-b4c5d6e7f809",
        "ServicePrincipalCredentialKeyId": None,
        "Location": None,
        "LocationDetails": None,
        "ConditionalAccessPolicies": None,
        "NoKey": True,
        "NoPlace": True,
        "IPAddress": "4.175.20.3",
        "TimeGenerated": datetime(2026, 3, 10, 5, 20, 30, 250000, tzinfo=UTC),
    }


# --- managed identity and non-interactive user sign-ins ----------------------------------------------------------

def test_managed_identity_sign_in_values(source):
    row = one(source, """
        AADManagedIdentitySignInLogs
        | extend Msi = parse_json(ManagedServiceIdentity)
        | project TimeGenerated, ServicePrincipalId, ServicePrincipalName, AppId, ResultType, ClientCredentialType,
                  IPAddress, NoIp = isempty(IPAddress), Location, ResourceDisplayName, UniqueTokenIdentifier,
                  MsiType = tostring(Msi.msiType), AssociatedResource = tostring(Msi.associatedResourceId), Type
    """)
    assert row == {
        "TimeGenerated": datetime(2026, 3, 10, 5, 42, 10, 700000, tzinfo=UTC),
        "ServicePrincipalId": "55555555-6666-4777-8888-999999999999",
        "ServicePrincipalName": "payroll-func",
        "AppId": "cccccccc-1111-4222-8333-444444444444",
        "ResultType": "0",
        "ClientCredentialType": "managedIdentity",
        "IPAddress": "",
        "NoIp": True,
        "Location": "",
        "ResourceDisplayName": "Azure Key Vault",
        "UniqueTokenIdentifier": "uX7bZ3oPq4eF-gH8iJ9kEE",
        "MsiType": "SystemAssigned",
        "AssociatedResource": "/subscriptions/3c9d2b7a-6e51-4f08-a1b2-c3d4e5f60718/resourceGroups/rg-payroll"
                              "/providers/Microsoft.Web/sites/payroll-func",
        "Type": "AADManagedIdentitySignInLogs",
    }


def test_non_interactive_user_sign_in_values(source):
    row = one(source, """
        AADNonInteractiveUserSignInLogs
        | project TimeGenerated, UserPrincipalName, UserId, UserDisplayName, AppId, AppDisplayName, ResultType,
                  ResultDescription, IPAddress, IsInteractive, IncomingTokenType, UserType, UserAgent,
                  ErrorCode = toint(parse_json(Status).errorCode),
                  Os = tostring(parse_json(DeviceDetail).operatingSystem),
                  Country = tostring(parse_json(LocationDetails).countryOrRegion),
                  RiskEventTypes_V2, UniqueTokenIdentifier, SessionId, AutonomousSystemNumber
    """)
    assert row == {
        "TimeGenerated": datetime(2026, 3, 10, 6, 1, 2, 300000, tzinfo=UTC),
        "UserPrincipalName": "alice@contoso.example",
        "UserId": "77777777-0000-4000-8000-000000000001",
        "UserDisplayName": "Alice Example",
        "AppId": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        "AppDisplayName": "Microsoft Azure CLI",
        "ResultType": "50173",
        "ResultDescription": "The provided grant has expired due to it being revoked, a fresh auth token is needed.",
        "IPAddress": "203.0.113.45",
        "IsInteractive": False,
        "IncomingTokenType": "refreshToken",
        "UserType": "Member",
        "UserAgent": "python/3.11.9 (Linux) AZURECLI/2.64.0",
        "ErrorCode": 50173,
        "Os": "Linux",
        "Country": "DE",
        # properties.riskEventTypes_v2: the column's case differs (RiskEventTypes_V2)
        "RiskEventTypes_V2": '["unfamiliarFeatures"]',
        "UniqueTokenIdentifier": "vY8cA4pQr5fG-hI9jK0lFF",
        "SessionId": "0a9b8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d",
        "AutonomousSystemNumber": "3320",
    }


# --- AuditLogs -----------------------------------------------------------------------------------------------------

def test_credential_change_audit_values(source):
    row = one(source, """
        AuditLogs
        | where OperationName has "Certificates and secrets management"
        | project TimeGenerated, ActivityDateTime, Id, OperationName, ActivityDisplayName, Category, Result,
                  AADOperationType, LoggedByService, Identity,
                  Upn = tostring(InitiatedBy.user.userPrincipalName), ActorIp = tostring(InitiatedBy.user.ipAddress),
                  TargetId = tostring(TargetResources[0].id), TargetType = tostring(TargetResources[0].type),
                  Property = tostring(TargetResources[0].modifiedProperties[0].displayName),
                  NewValue = tostring(TargetResources[0].modifiedProperties[0].newValue),
                  Agent = tostring(AdditionalDetails[0].value)
    """)
    assert row == {
        "TimeGenerated": datetime(2026, 3, 10, 5, 30, 12, 441000, tzinfo=UTC),
        "ActivityDateTime": datetime(2026, 3, 10, 5, 30, 12, 441000, tzinfo=UTC),
        "Id": "Directory_b5f6a7b8-c9d0-4eb4-8fc0-3b4c5d6e7f80_XK2PQ_41529876",
        "OperationName": "Update application \u2013 Certificates and secrets management ",  # EN DASH, trailing space
        "ActivityDisplayName": "Update application \u2013 Certificates and secrets management ",
        "Category": "ApplicationManagement",  # properties.category, not the envelope's "AuditLogs"
        "Result": "success",
        "AADOperationType": "Update",
        "LoggedByService": "Core Directory",
        "Identity": "Mallory Example",
        "Upn": "mallory@contoso.example",
        "ActorIp": "198.51.100.7",
        "TargetId": "bbbbbbbb-1111-4222-8333-444444444444",
        "TargetType": "Application",
        "Property": "KeyDescription",
        "NewValue": '["[KeyIdentifier=9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a,KeyType=Password,KeyUsage=Verify,'
                    'DisplayName=prod]","[KeyIdentifier=0e1d2c3b-4a59-4687-9a5b-6c7d8e9f0a1b,KeyType=Password,'
                    'KeyUsage=Verify,DisplayName=backup]"]',
        "Agent": "python-requests/2.32.3",
    }


def test_audit_dynamic_columns_come_back_parsed(source):
    row = one(source, 'AuditLogs | where OperationName == "Add service principal credentials" '
                      "| project InitiatedBy, TargetResources, AdditionalDetails, Category")
    assert row["InitiatedBy"] == {"app": {"appId": None, "displayName": "Managed Service Identity",
                                          "servicePrincipalId": "66666666-7777-4888-9999-000000000000",
                                          "servicePrincipalName": None}}
    assert row["TargetResources"][0]["modifiedProperties"][0]["newValue"] == (
        '["[KeyIdentifier=1f2e3d4c-5b6a-4798-8a9b-0c1d2e3f4a5b,KeyType=AsymmetricX509Cert,KeyUsage=Verify,'
        'DisplayName=CN=cccccccc-1111-4222-8333-444444444444]"]')
    assert row["AdditionalDetails"] == []
    assert row["Category"] == "ApplicationManagement"


def test_audit_initiated_by_app_is_queryable(source):
    rows = query(source, 'AuditLogs | where tostring(InitiatedBy.app.displayName) == "Managed Service Identity" '
                         "| project Actor = tostring(InitiatedBy.app.servicePrincipalId), "
                         "Target = tostring(TargetResources[0].displayName)")
    assert rows == [{"Actor": "66666666-7777-4888-9999-000000000000", "Target": "payroll-func"}]


# --- Azure activity and Key Vault ---------------------------------------------------------------------------------

def test_azure_activity_values(source):
    row = one(source, """
        AzureActivity
        | project TimeGenerated, Caller, CallerIpAddress, OperationNameValue, CategoryValue, ActivityStatusValue,
                  ActivitySubstatusValue, SubscriptionId, ResourceGroup, ResourceProviderValue, Level, CorrelationId,
                  Uti = tostring(Claims_d.uti), AppId = tostring(Claims_d.appid),
                  Action = tostring(Authorization_d.action), Role = tostring(Authorization_d.evidence.role),
                  StatusCode = tostring(Properties_d.statusCode), Type
    """)
    assert row == {
        "TimeGenerated": datetime(2026, 3, 10, 6, 12, 33, 552311, tzinfo=UTC),
        "Caller": "11111111-2222-4333-8444-555555555555",  # the objectidentifier claim, for a service principal
        "CallerIpAddress": "20.61.5.10",
        "OperationNameValue": "MICROSOFT.KEYVAULT/VAULTS/ACCESSPOLICIES/WRITE",
        "CategoryValue": "Administrative",
        "ActivityStatusValue": "Success",
        "ActivitySubstatusValue": "Succeeded.OK",
        "SubscriptionId": "3c9d2b7a-6e51-4f08-a1b2-c3d4e5f60718",
        "ResourceGroup": "RG-PAYROLL",
        "ResourceProviderValue": "MICROSOFT.KEYVAULT",
        "Level": "Information",
        "CorrelationId": "e8c9d0e1-f2a3-41e7-92f3-6e7f8091a2b3",
        "Uti": "qT3xV9kLm0aB-cD4eF5gAA",
        "AppId": "aaaaaaaa-1111-4222-8333-444444444444",
        "Action": "Microsoft.KeyVault/vaults/accessPolicies/write",
        "Role": "Key Vault Contributor",
        "StatusCode": "OK",
        "Type": "AzureActivity",
    }


def test_activity_joins_its_sign_in_by_token_identifier(source):
    rows = query(source, """
        AzureActivity
        | extend UniqueTokenIdentifier = tostring(Claims_d.uti)
        | join kind=inner (AADServicePrincipalSignInLogs) on UniqueTokenIdentifier
        | project OperationNameValue, ServicePrincipalName, ClientCredentialType, ServicePrincipalCredentialKeyId
    """)
    assert rows == [{"OperationNameValue": "MICROSOFT.KEYVAULT/VAULTS/ACCESSPOLICIES/WRITE",
                     "ServicePrincipalName": "payroll-sync", "ClientCredentialType": "clientSecret",
                     "ServicePrincipalCredentialKeyId": "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"}]


def test_key_vault_audit_event_is_flattened_into_azure_diagnostics(source):
    rows = query(source, """
        AzureDiagnostics
        | where ResourceProvider == "MICROSOFT.KEYVAULT" and OperationName == "SecretGet"
        | project TimeGenerated, identity_claim_oid_g, identity_claim_appid_g, id_s, requestUri_s, httpStatusCode_d,
                  Resource, ResourceGroup, ResourceType, SubscriptionId, CallerIPAddress, ResultType, ResultSignature,
                  DurationMs, Category, Type
        | order by TimeGenerated asc
    """)
    assert rows == [
        {
            "TimeGenerated": datetime(2026, 3, 10, 6, 15, 1, 775133, tzinfo=UTC),
            "identity_claim_oid_g": "11111111-2222-4333-8444-555555555555",
            "identity_claim_appid_g": "aaaaaaaa-1111-4222-8333-444444444444",
            "id_s": "https://kv-payroll.vault.azure.net/secrets/db-password/6a5b4c3d2e1f40a9b8c7d6e5f4a3b2c1",
            "requestUri_s": "https://kv-payroll.vault.azure.net/secrets/db-password/?api-version=7.4",
            "httpStatusCode_d": 200.0,
            "Resource": "KV-PAYROLL",
            "ResourceGroup": "RG-PAYROLL",
            "ResourceType": "VAULTS",
            "SubscriptionId": "3C9D2B7A-6E51-4F08-A1B2-C3D4E5F60718",
            "CallerIPAddress": "20.61.5.10",
            "ResultType": "Success",
            "ResultSignature": "OK",
            "DurationMs": 12,
            "Category": "AuditEvent",
            "Type": "AzureDiagnostics",
        },
        {
            "TimeGenerated": datetime(2026, 3, 10, 6, 16, 44, 100000, tzinfo=UTC),
            "identity_claim_oid_g": "44444444-2222-4333-8444-555555555555",
            "identity_claim_appid_g": "eeeeeeee-1111-4222-8333-444444444444",
            "id_s": "https://kv-payroll.vault.azure.net/secrets/db-password",
            "requestUri_s": "https://kv-payroll.vault.azure.net/secrets/db-password/?api-version=7.4",
            "httpStatusCode_d": 403.0,
            "Resource": "KV-PAYROLL",
            "ResourceGroup": "RG-PAYROLL",
            "ResourceType": "VAULTS",
            "SubscriptionId": "3C9D2B7A-6E51-4F08-A1B2-C3D4E5F60718",
            "CallerIPAddress": "198.51.100.7",
            "ResultType": "Success",
            "ResultSignature": "Forbidden",
            "DurationMs": 3,
            "Category": "AuditEvent",
            "Type": "AzureDiagnostics",
        },
    ]


def test_key_vault_fields_outside_the_schema_become_string_columns(source):
    row = one(source, "AzureDiagnostics | where httpStatusCode_d == 200 "
                      "| project isAccessPolicyMatch_b, tlsVersion_s, properties_attributes_enabled_b, "
                      "identity_claim_http_schemas_microsoft_com_identity_claims_objectidentifier_g")
    assert row == {
        "isAccessPolicyMatch_b": True,
        "tlsVersion_s": "TLS1_2",
        "properties_attributes_enabled_b": "true",
        "identity_claim_http_schemas_microsoft_com_identity_claims_objectidentifier_g":
            "11111111-2222-4333-8444-555555555555",
    }


def test_diagnostics_fields_are_named_by_each_value_whatever_the_records_share(tmp_path):
    """Records of one layout are flattened from the fields found on one of them, yet each value still picks its
    own suffix (a GUID in one record, a URL in the next); a record holding an array is walked on its own."""
    envelope = ('"time": "2026-03-10T06:00:0{n}Z", "category": "AuditEvent", "operationName": "SecretGet", '
                '"resourceId": "/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/KV"')
    records = [
        '{%s, "properties": {"id": "11111111-2222-4333-8444-555555555555", "code": 200, "ok": true}}',
        '{%s, "properties": {"id": "https://kv.vault.azure.net/secrets/a", "code": 403, "ok": false}}',
        '{%s, "properties": {"id": "https://kv.vault.azure.net/secrets/b", "code": 200, "ok": true, '
        '"tags": ["x", "y"]}}',
    ]
    (tmp_path / "PT1H.json").write_text("".join(record % envelope.format(n=n) + "\n"
                                                for n, record in enumerate(records)))
    database = LogDatabase()
    assert database.load_folder(tmp_path).problems == []
    rows = query(EmbeddedLogSource(database, NOW), "AzureDiagnostics | order by TimeGenerated asc "
                                                    "| project id_g, id_s, code_d, ok_b, tags_s")
    assert rows == [
        {"id_g": "11111111-2222-4333-8444-555555555555", "id_s": None, "code_d": "200", "ok_b": "true",
         "tags_s": None},
        {"id_g": None, "id_s": "https://kv.vault.azure.net/secrets/a", "code_d": "403", "ok_b": "false",
         "tags_s": None},
        {"id_g": None, "id_s": "https://kv.vault.azure.net/secrets/b", "code_d": "200", "ok_b": "true",
         "tags_s": '["x","y"]'},
    ]


def test_graph_activity_values(source):
    row = one(source, """
        MicrosoftGraphActivityLogs
        | project TimeGenerated, SignInActivityId, ServicePrincipalId, AppId, RequestMethod, RequestUri,
                  ResponseStatusCode, DurationMs, IPAddress, Roles, TokenIssuedAt, Location
    """)
    assert row == {
        "TimeGenerated": datetime(2026, 3, 10, 5, 0, 2, 440000, tzinfo=UTC),
        "SignInActivityId": "qT3xV9kLm0aB-cD4eF5gAA",
        "ServicePrincipalId": "11111111-2222-4333-8444-555555555555",
        "AppId": "aaaaaaaa-1111-4222-8333-444444444444",
        "RequestMethod": "GET",
        "RequestUri": "https://graph.microsoft.com/v1.0/applications?$select=id,passwordCredentials",
        "ResponseStatusCode": 200,
        "DurationMs": 48213,
        "IPAddress": "20.61.5.10",
        "Roles": "User.Read.All Application.ReadWrite.All",
        "TokenIssuedAt": datetime(2026, 3, 10, 4, 59, 58, tzinfo=UTC),
        "Location": "West Europe",
    }
