"""A public Log Analytics export (OTRF Security-Datasets, Golden SAML AD FS Mail Access: AuditLogs) loads with the
values the workspace had, and the credential detection reads it correctly. The project's own copy is in
tests/fixtures/otrf (see its README for the source and license)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.catalog.loader import load_catalog
from shared.detect import run_detection
from shared.logsource.database import LogDatabase
from shared.logsource.embedded import EmbeddedLogSource
from shared.tables import table_schemas

OTRF = Path(__file__).parent / "fixtures" / "otrf"
EXPORT = OTRF / "AuditLogs" / "AADAuditEvents.json"
CREDENTIAL_OPERATION = "Update application \u2013 Certificates and secrets management "  # EN DASH, trailing space
CHANGE_TIME = datetime(2021, 8, 2, 13, 29, 25, 983000, tzinfo=UTC)
WINDOW = (datetime(2021, 8, 2, tzinfo=UTC), datetime(2021, 8, 3, tzinfo=UTC))


def _load() -> tuple[EmbeddedLogSource, object]:
    database = LogDatabase()
    report = database.load_folder(OTRF)
    return EmbeddedLogSource(database, WINDOW[1]), report


@pytest.fixture(scope="module")
def source() -> EmbeddedLogSource:
    return _load()[0]


def test_the_copy_is_the_published_file_with_its_license():
    lines = EXPORT.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4
    assert json.loads(lines[0])["Id"] == "Directory_10065ffb-8199-48bc-8ff5-912cb5b8295a_AUMVX_13992832"
    assert (OTRF / "LICENSE.OTRF-Security-Datasets").read_text().startswith("MIT License")
    assert "OTRF/Security-Datasets" in (OTRF / "README.md").read_text()


def test_four_audit_rows_load_without_problems():
    _, report = _load()
    assert report.problems == []
    assert report.files == 1  # README.md and the license are not log files
    assert report.rows == Counter({"AuditLogs": 4})


def test_the_credential_event_values(source):
    rows = source.query(f"""
        AuditLogs
        | where OperationName == "{CREDENTIAL_OPERATION}"
        | project TimeGenerated, ActivityDateTime, Id, OperationName, Category, Result, AADOperationType, Type,
                  Upn = tostring(InitiatedBy.user.userPrincipalName), ActorId = tostring(InitiatedBy.user.id),
                  TargetId = tostring(TargetResources[0].id), TargetName = tostring(TargetResources[0].displayName),
                  TargetType = tostring(TargetResources[0].type),
                  Property = tostring(TargetResources[0].modifiedProperties[0].displayName),
                  NewValue = tostring(TargetResources[0].modifiedProperties[0].newValue),
                  UserAgent = tostring(AdditionalDetails[0].value)
    """, *WINDOW)
    expected = {
        "TimeGenerated": CHANGE_TIME,
        "ActivityDateTime": CHANGE_TIME,
        "Id": "Directory_10065ffb-8199-48bc-8ff5-912cb5b8295a_AUMVX_13992832",
        "OperationName": CREDENTIAL_OPERATION,
        "Category": "ApplicationManagement",
        "Result": "success",
        "AADOperationType": "Update",
        "Type": "AuditLogs",
        "Upn": "pgustavo@simulandlabs.com",
        "ActorId": "aead923d-498b-4f64-a66c-2af91447a8b6",
        "TargetId": "11b49e19-2326-4be6-93cb-7f37439bbd81",
        "TargetName": "SimuLandApp",
        "TargetType": "Application",
        "Property": "KeyDescription",
        "NewValue": '["[KeyIdentifier=59eaeebc-8a6b-44a6-9f24-7d55e64420c9,KeyType=Password,KeyUsage=Verify,'
                    'DisplayName=SimuLandCreds]"]',
        "UserAgent": "Mozilla/5.0 (Windows NT; Windows NT 10.0; en-US) WindowsPowerShell/5.1.17763.1971",
    }
    # the export has the event twice (its author expanded modifiedProperties into `keyEvents`)
    assert rows == [expected, expected]
    assert "KeyIdentifier=59eaeebc-8a6b-44a6-9f24-7d55e64420c9" in rows[0]["NewValue"]


def test_has_matches_the_operation_despite_the_en_dash(source):
    rows = source.query('AuditLogs | where OperationName has "Certificates and secrets management" '
                        "| summarize n = count(), ids = make_set(Id)", *WINDOW)
    assert rows == [{"n": 2, "ids": ["Directory_10065ffb-8199-48bc-8ff5-912cb5b8295a_AUMVX_13992832"]}]
    # a plain hyphen is a different string
    rows = source.query('AuditLogs | where OperationName == "Update application - Certificates and secrets '
                        'management " | count', *WINDOW)
    assert rows == [{"Count": 0}]


def test_the_other_events_and_the_type_column(source):
    rows = source.query("AuditLogs | where OperationName != '" + CREDENTIAL_OPERATION + "' "
                        "| project TimeGenerated, OperationName, Type, "
                        "Scope = tostring(TargetResources[0].modifiedProperties[0].newValue) "
                        "| order by TimeGenerated asc", *WINDOW)
    assert rows == [
        {"TimeGenerated": datetime(2021, 8, 2, 13, 25, 12, 246000, tzinfo=UTC), "OperationName": "Update application",
         "Type": "AuditLogs",  # the export says "Application": its author overwrote Type; the table's name wins
         "Scope": '[{"ResourceAppId":"00000003-0000-0000-c000-000000000000","RequiredAppPermissions":[{"EntitlementId"'
                  ':"e1fe6dd8-ba31-4d61-89e7-88639da4683d","DirectAccessGrant":false,"ImpersonationAccessGrants":[20]},'
                  '{"EntitlementId":"024d486e-b451-40bb-833d-3e66d98c5c73","DirectAccessGrant":false,'
                  '"ImpersonationAccessGrants":[20]}],"EncodingVersion":1}]'},
        {"TimeGenerated": datetime(2021, 8, 2, 13, 27, 20, 17000, tzinfo=UTC),
         "OperationName": "Add delegated permission grant", "Type": "AuditLogs",
         "Scope": '"User.Read Mail.ReadWrite"'},
    ]


def test_the_exports_own_extra_columns_do_not_enter_the_auditlogs_schema(source):
    """`target`, `targetId`, `keyEvents`, ... are the export author's `extend`s, not AuditLogs columns; kept, the
    case-folded `targetId` would collide with the detection's `extend TargetId = ...`."""
    assert set(source.database.columns("AuditLogs")) == set(table_schemas()["AuditLogs"].columns)


def test_credential_detection_stays_silent_without_sign_ins(source):
    detection = load_catalog().get("credential_added_to_active_identity")
    assert run_detection(detection, source, *WINDOW) == []


def test_credential_detection_fires_once_the_application_had_signed_in():
    """The control for the silent test above: the same export plus one earlier sign-in of SimuLandApp."""
    source, _ = _load()
    problems = source.database.insert("AADServicePrincipalSignInLogs", [(None, {
        "TimeGenerated": "2021-08-01T09:00:00Z", "ResultType": "0", "ServicePrincipalName": "SimuLandApp",
        "ServicePrincipalId": "0d2f5969-011b-460d-ac74-3291d227d49f", "AppId": "5f1f6a3e-0000-4000-8000-00000000a001",
        "IPAddress": "20.1.2.3"})])
    assert problems == []
    detection = load_catalog().get("credential_added_to_active_identity")
    findings = run_detection(detection, source, *WINDOW)
    assert len(findings) == 1
    evidence = findings[0].evidence
    assert evidence["TimeGenerated"] == CHANGE_TIME
    assert evidence["TargetName"] == "SimuLandApp"
    assert evidence["TargetId"] == "11b49e19-2326-4be6-93cb-7f37439bbd81"
    assert evidence["Actor"] == "pgustavo@simulandlabs.com"
    assert evidence["ServicePrincipalId"] == "0d2f5969-011b-460d-ac74-3291d227d49f"
    assert evidence["LastSignIn"] == datetime(2021, 8, 1, 9, 0, tzinfo=UTC)
    assert evidence["LastSignInIPAddress"] == "20.1.2.3"
