"""Map raw diagnostic-settings records (what Entra and Azure write to Storage or Event Hub)
to the Log Analytics tables and columns the detections query.

A record is `{"time", "category", "properties": {...}, ...}`. Fields a newer service
version adds are ignored; a missing optional field is simply empty.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from shared.tables import table_schemas

Row = dict[str, Any]

CATEGORY_TABLES = {
    "ServicePrincipalSignInLogs": "AADServicePrincipalSignInLogs",
    "ManagedIdentitySignInLogs": "AADManagedIdentitySignInLogs",
    "NonInteractiveUserSignInLogs": "AADNonInteractiveUserSignInLogs",
    "SignInLogs": "SigninLogs",
    "AuditLogs": "AuditLogs",
    "MicrosoftGraphActivityLogs": "MicrosoftGraphActivityLogs",
    "RiskyServicePrincipals": "AADRiskyServicePrincipals",
    "ServicePrincipalRiskEvents": "AADServicePrincipalRiskEvents",
    "AuditEvent": "AzureDiagnostics",
    "WorkflowRuntime": "AzureDiagnostics",  # Logic App (Consumption) runs, triggers and actions
}
ACTIVITY_CATEGORIES = {"Administrative", "Security", "ServiceHealth", "Alert", "Recommendation", "Policy",
                       "Autoscale", "ResourceHealth"}

_ENVELOPE = {
    "time": "TimeGenerated", "operationName": "OperationName", "operationVersion": "OperationVersion",
    "category": "Category", "tenantId": "TenantId", "resultType": "ResultType",
    "resultSignature": "ResultSignature", "resultDescription": "ResultDescription", "durationMs": "DurationMs",
    "callerIpAddress": "IPAddress", "correlationId": "CorrelationId", "identity": "Identity", "Level": "Level",
    "level": "Level", "location": "Location", "resourceId": "_ResourceId",
}
_RENAMES = {
    "ipAddress": "IPAddress", "resourceId": "ResourceIdentity", "location": "LocationDetails",
    "appliedConditionalAccessPolicies": "ConditionalAccessPolicies", "activityDisplayName": "OperationName",
    "operationType": "AADOperationType", "userAgent": "UserAgent", "status": "Status",
}
_AUDIT_EXTRA = {"activityDisplayName": "ActivityDisplayName"}


class UnknownCategory(ValueError):
    pass


def is_raw_record(record: Row) -> bool:
    return "category" in record and "time" in record and ("properties" in record or "resourceId" in record)


def map_raw_record(record: Row) -> tuple[str, Row]:
    """(table, row) for one raw record; UnknownCategory when no table takes its category."""
    category = str(record.get("category", ""))
    if category in ACTIVITY_CATEGORIES:
        return "AzureActivity", _activity_row(record)
    table = CATEGORY_TABLES.get(category)
    if table is None:
        raise UnknownCategory(f"no Log Analytics table for category {category!r}")
    mapper = _MAPPERS.get(table, _entra_row)
    return table, mapper(table, record)


def _pascal(name: str) -> str:
    return name[:1].upper() + name[1:]


def _entra_row(table: str, record: Row) -> Row:
    columns = table_schemas()[table].columns
    by_lower = {name.lower(): name for name in columns}
    row: Row = {}
    for key, value in record.items():
        column = _ENVELOPE.get(key)
        if column in columns:
            row[column] = value
    properties = record.get("properties") or {}
    for key, value in properties.items():
        # Case-insensitive: the signIn property `riskEventTypes_v2` is the column `RiskEventTypes_V2`.
        column = by_lower.get((_RENAMES.get(key) or _pascal(key)).lower())
        if column:
            row[column] = value
        extra = _AUDIT_EXTRA.get(key)
        if extra in columns:
            row[extra] = value
    if "AADTenantId" in columns:
        row.setdefault("AADTenantId", record.get("tenantId"))
    if properties.get("status", {}) and "ResultDescription" in columns and not row.get("ResultDescription"):
        row["ResultDescription"] = properties["status"].get("failureReason")
    row["Type"] = table
    return row


def _resource_parts(resource_id: str) -> dict[str, str]:
    parts = resource_id.strip("/").split("/")
    pairs = {parts[i].lower(): parts[i + 1] for i in range(0, len(parts) - 1, 2)}
    providers = [parts[i + 1] for i in range(0, len(parts) - 1, 2) if parts[i].lower() == "providers"]
    return {
        "SubscriptionId": pairs.get("subscriptions", ""),
        "ResourceGroup": pairs.get("resourcegroups", "").upper(),
        "ResourceProvider": providers[0].upper() if providers else "",
        "Resource": parts[-1].upper() if len(parts) % 2 == 0 and parts else "",
    }


_OBJECT_ID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"


def _activity_row(record: Row) -> Row:
    identity = record.get("identity") or {}
    claims = identity.get("claims") or {}
    authorization = identity.get("authorization") or {}
    properties = record.get("properties") or {}
    resource_id = str(record.get("resourceId", ""))
    parts = _resource_parts(resource_id)
    return {
        "TimeGenerated": record.get("time"),
        "Type": "AzureActivity",
        "OperationNameValue": record.get("operationName"),
        "OperationName": record.get("operationName"),
        "CategoryValue": record.get("category"),
        "Category": record.get("category"),
        "ActivityStatusValue": record.get("resultType"),
        "ActivityStatus": record.get("resultType"),
        "ActivitySubstatusValue": record.get("resultSignature"),
        "Caller": claims.get(_OBJECT_ID_CLAIM) or claims.get("name") or record.get("caller"),
        "CallerIpAddress": record.get("callerIpAddress") or claims.get("ipaddr"),
        "Claims": json.dumps(claims) if claims else None,
        "Claims_d": claims or None,
        "Authorization": json.dumps(authorization) if authorization else None,
        "Authorization_d": authorization or None,
        "Properties": json.dumps(properties) if properties else None,
        "Properties_d": properties or None,
        "CorrelationId": record.get("correlationId"),
        "Level": record.get("level") or record.get("Level"),
        "ResourceId": resource_id,
        "_ResourceId": resource_id.lower(),
        "SubscriptionId": parts["SubscriptionId"],
        "ResourceGroup": parts["ResourceGroup"],
        "ResourceProviderValue": parts["ResourceProvider"],
        "TenantId": record.get("tenantId"),
        "HTTPRequest": json.dumps(properties.get("httpRequest")) if properties.get("httpRequest") else None,
    }


_SUFFIXES = ((bool, "_b"), (int, "_d"), (float, "_d"))
_GUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")
_STRING_SUFFIXES = ((_GUID, "_g"), (_DATETIME, "_t"))


def _diagnostics_name(path: str, value: Any) -> str:
    """AzureDiagnostics flattens nested fields and types them by their value: `identity.claim.oid` (a GUID) ->
    `identity_claim_oid_g`, a Logic App's `startTime` (ISO 8601) -> `startTime_t`."""
    base = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")
    for kind, suffix in _SUFFIXES:
        if isinstance(value, kind):
            return base + suffix
    if isinstance(value, str):
        return base + next((suffix for pattern, suffix in _STRING_SUFFIXES if pattern.match(value)), "_s")
    return base + "_s"


def _flatten(prefix: str, value: Any, into: Row) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}_{key}" if prefix else key, inner, into)
    elif value is not None:
        into[_diagnostics_name(prefix, value)] = value if not isinstance(value, list) else json.dumps(value)


def _diagnostics_row(table: str, record: Row) -> Row:
    resource_id = str(record.get("resourceId", ""))
    parts = _resource_parts(resource_id)
    row: Row = {}
    _flatten("", record.get("properties") or {}, row)
    _flatten("identity", record.get("identity") or {}, row)
    if record.get("workflowId"):
        row["workflowId_s"] = record["workflowId"]
    row.update({
        "TimeGenerated": record.get("time"),
        "Type": "AzureDiagnostics",
        "Category": record.get("category"),
        "OperationName": record.get("operationName"),
        "OperationVersion": record.get("operationVersion"),
        "ResultType": record.get("resultType"),
        "ResultSignature": record.get("resultSignature"),
        "ResultDescription": record.get("resultDescription"),
        "DurationMs": record.get("durationMs"),
        "CallerIPAddress": record.get("callerIpAddress"),
        "CorrelationId": record.get("correlationId"),
        "ResourceId": resource_id.upper(),
        "_ResourceId": resource_id.lower(),
        "SubscriptionId": parts["SubscriptionId"],
        "ResourceGroup": parts["ResourceGroup"],
        "ResourceProvider": parts["ResourceProvider"],
        "Resource": parts["Resource"],
        "ResourceType": resource_id.strip("/").split("/")[-2].upper() if resource_id.count("/") > 2 else "",
    })
    return row


_MAPPERS: dict[str, Callable[[str, Row], Row]] = {"AzureDiagnostics": _diagnostics_row}
