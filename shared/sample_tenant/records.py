"""Build log records in the raw diagnostic-settings shape Entra and Azure write to Storage,
and AuditLogs rows in the Log Analytics export shape."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

Record = dict[str, Any]
OBJECT_ID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"


# Where the sample tenant's IP addresses are: (autonomous system number, country). Azure egress is AS8075 in
# the US; the others stand for a Tor exit node and two hosting providers an attacker rents.
NETWORKS = (("20.", 8075, "US"), ("185.220.101.", 208323, "DE"), ("203.0.113.", 64501, "RO"),
            ("198.51.100.", 64502, "NL"))


def network(ip: str) -> tuple[int | None, str]:
    """(ASN, country) of an IP address as Entra would geolocate it; (None, "") for no address."""
    if not ip:
        return None, ""
    return next(((asn, country) for prefix, asn, country in NETWORKS if ip.startswith(prefix)), (64500, "US"))


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _envelope(tenant_id: str, moment: datetime, category: str, operation: str, result_type: str) -> Record:
    return {
        "time": iso(moment), "resourceId": f"/tenants/{tenant_id}/providers/Microsoft.aadiam",
        "operationName": operation, "operationVersion": "1.0", "category": category, "tenantId": tenant_id,
        "resultType": result_type, "resultSignature": "None", "durationMs": 0, "Level": 4,
    }


def sign_in(tenant_id: str, moment: datetime, *, sp_id: str, sp_name: str, app_id: str, ip: str, result: str,
            resource: str, resource_id: str, credential_type: str, key_id: str = "", thumbprint: str = "",
            token_id: str, request_id: str, asn: int = 8075, country: str = "US",
            managed_identity: Record | None = None) -> Record:
    """A ServicePrincipalSignInLogs record, or ManagedIdentitySignInLogs when `managed_identity` is given."""
    category = "ManagedIdentitySignInLogs" if managed_identity else "ServicePrincipalSignInLogs"
    record = _envelope(tenant_id, moment, category, "Sign-in activity", result)
    record["callerIpAddress"] = ip
    record["location"] = country if ip else ""
    properties: Record = {
        "id": request_id, "createdDateTime": iso(moment), "appId": app_id, "ipAddress": ip,
        "status": {"errorCode": int(result), "failureReason": "" if result == "0" else f"AADSTS{result}"},
        "location": {"city": "", "countryOrRegion": country} if ip else {},
        "resourceDisplayName": resource, "resourceId": resource_id, "servicePrincipalId": sp_id,
        "servicePrincipalName": sp_name, "servicePrincipalCredentialKeyId": key_id,
        "servicePrincipalCredentialThumbprint": thumbprint, "clientCredentialType": credential_type,
        "uniqueTokenIdentifier": token_id, "conditionalAccessStatus": "notApplied",
        "autonomousSystemNumber": asn if ip else None,
    }
    if managed_identity:
        properties["managedServiceIdentity"] = managed_identity
    record["properties"] = properties
    return record


def graph_request(tenant_id: str, moment: datetime, *, sp_id: str, app_id: str, ip: str, method: str, uri: str,
                  status: int, token_id: str, token_issued: datetime, request_id: str, roles: str = "",
                  size: int = 0, user_agent: str = "python-requests/2.32.3") -> Record:
    """A MicrosoftGraphActivityLogs record of an app-only request; `token_id` is the issuing sign-in's
    uniqueTokenIdentifier (the record's signInActivityId)."""
    return {
        "time": iso(moment), "resourceId": f"/tenants/{tenant_id}/providers/Microsoft.aadiam",
        "operationName": "Microsoft Graph Activity", "operationVersion": "v1.0",
        "category": "MicrosoftGraphActivityLogs",
        "resultSignature": str(status), "durationMs": 80, "callerIpAddress": ip, "correlationId": request_id,
        "level": "Informational", "location": "West Europe",
        "properties": {
            "timeGenerated": iso(moment), "location": "West Europe", "requestId": request_id, "operationId": request_id,
            "clientRequestId": request_id, "apiVersion": "v1.0", "requestMethod": method, "responseStatusCode": status,
            "tenantId": tenant_id, "durationMs": 80, "responseSizeBytes": size, "signInActivityId": token_id,
            "roles": roles, "tokenIssuedAt": iso(token_issued), "appId": app_id, "userId": "",
            "servicePrincipalId": sp_id, "scopes": "", "identityProvider": f"https://sts.windows.net/{tenant_id}/",
            "clientAuthMethod": 1, "wids": "", "ipAddress": ip, "requestUri": f"https://graph.microsoft.com/v1.0{uri}",
            "userAgent": user_agent, "deviceId": None, "sessionId": ""},
    }


def audit_row(tenant_id: str, moment: datetime, *, record_id: str, operation: str, category: str,
              initiated_by: Record, targets: list[Record], additional: list[Record] | None = None) -> Record:
    """An AuditLogs row as a Log Analytics export writes it: dynamic columns as JSON text."""
    return {
        "TenantId": tenant_id, "AADTenantId": tenant_id, "SourceSystem": "Azure AD", "TimeGenerated": iso(moment),
        "ActivityDateTime": iso(moment), "OperationName": operation, "ActivityDisplayName": operation,
        "OperationVersion": "1.0", "Category": category, "Result": "success", "Id": record_id,
        "CorrelationId": record_id[-36:], "LoggedByService": "Core Directory", "Level": "4",
        "InitiatedBy": json.dumps(initiated_by), "TargetResources": json.dumps(targets),
        "AdditionalDetails": json.dumps(additional or []), "Type": "AuditLogs",
    }


def key_description(key_id: str, key_type: str, usage: str, name: str) -> str:
    return f"[KeyIdentifier={key_id},KeyType={key_type},KeyUsage={usage},DisplayName={name}]"


def activity(tenant_id: str, moment: datetime, *, caller_id: str, app_id: str, ip: str, operation: str,
             resource_id: str, token_id: str, correlation_id: str, status: str = "Success") -> Record:
    """An Azure activity log record (category Administrative) as diagnostic settings write it."""
    claims = {"appid": app_id, "uti": token_id, OBJECT_ID_CLAIM: caller_id, "ipaddr": ip, "idtyp": "app"}
    return {
        "time": iso(moment), "resourceId": resource_id, "operationName": operation, "category": "Administrative",
        "resultType": status, "resultSignature": "Succeeded.OK" if status == "Success" else "Failed",
        "callerIpAddress": ip, "correlationId": correlation_id, "level": "Information", "tenantId": tenant_id,
        "identity": {"authorization": {"action": operation, "scope": resource_id}, "claims": claims},
        "properties": {"statusCode": "OK" if status == "Success" else "Forbidden", "eventCategory": "Administrative"},
    }


def user_arm_write(tenant_id: str, moment: datetime, *, upn: str, ip: str, operation: str, resource_id: str,
                   body: Record, correlation_id: str) -> list[tuple[datetime, Record]]:
    """The Azure activity records of a write by a user, with their times: the request body is on the Start record,
    the outcome on the Success record two seconds later."""
    claims = {"name": upn, "ipaddr": ip, "idtyp": "user",
              "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": upn}
    started = {"requestbody": json.dumps(body), "eventCategory": "Administrative"}
    written = []
    for offset, status, properties in ((0, "Start", started),
                                       (2, "Success", {"statusCode": "OK", "eventCategory": "Administrative"})):
        at = moment + timedelta(seconds=offset)
        written.append((at, {
            "time": iso(at), "resourceId": resource_id, "operationName": operation, "category": "Administrative",
            "resultType": status, "resultSignature": "Started." if status == "Start" else "Succeeded.OK",
            "callerIpAddress": ip, "correlationId": correlation_id, "level": "Information", "tenantId": tenant_id,
            "identity": {"authorization": {"action": operation, "scope": resource_id}, "claims": claims},
            "properties": properties}))
    return written


def keyvault_read(moment: datetime, *, vault_id: str, secret: str, caller_id: str, app_id: str, ip: str,
                  request_id: str, result: str = "Success", operation: str = "SecretGet") -> Record:
    """A Key Vault AuditEvent record (SecretGet, or SecretList with secret ""); Log Analytics flattens it into
    AzureDiagnostics."""
    vault = vault_id.rstrip("/").split("/")[-1]
    path = f"secrets/{secret}/0f1e2d3c" if secret else "secrets"
    return {
        "time": iso(moment), "resourceId": vault_id.upper(), "operationName": operation, "operationVersion": "7.4",
        "category": "AuditEvent", "resultType": result, "resultSignature": "OK" if result == "Success" else "Forbidden",
        "durationMs": "12", "callerIpAddress": ip, "correlationId": request_id,
        "identity": {"claim": {"oid": caller_id, "appid": app_id, OBJECT_ID_CLAIM: caller_id}},
        "properties": {"id": f"https://{vault.lower()}.vault.azure.net/{path}",
                       "requestUri": f"https://{vault.lower()}.vault.azure.net/{path.removesuffix('/0f1e2d3c')}"
                                     "?api-version=7.4",
                       "httpStatusCode": 200 if result == "Success" else 403, "isAccessPolicyMatch": True},
    }


def workflow_event(moment: datetime, *, workflow_id: str, operation: str, run_id: str, start: datetime, status: str,
                   end: datetime | None = None, action: str = "", trigger: str = "", tracking_id: str = "",
                   category: str = "security", location: str = "westeurope") -> Record:
    """A Logic App (Consumption) WorkflowRuntime record as its diagnostic setting archives it; Log Analytics
    flattens it into AzureDiagnostics (resource_workflowName_s, startTime_t, tags_LogicAppsCategory_s...)."""
    parts = workflow_id.strip("/").split("/")
    resource = {"subscriptionId": parts[1], "resourceGroupName": parts[3],
                "workflowId": uuid.uuid5(uuid.NAMESPACE_URL, workflow_id.lower()).hex, "workflowName": parts[-1],
                "runId": run_id, "location": location}
    if action:
        resource["actionName"] = action
    if trigger:
        resource["triggerName"] = trigger
    properties: Record = {"$schema": "2016-04-01-preview", "startTime": iso(start)}
    if end is not None:
        properties["endTime"] = iso(end)
    properties["status"] = status
    if status in ("Succeeded", "Failed"):
        properties["code"] = "OK" if status == "Succeeded" else "BadRequest"
    properties["resource"] = resource
    properties["correlation"] = {"clientTrackingId": run_id}
    if tracking_id:
        properties["correlation"]["actionTrackingId"] = tracking_id
    properties["tags"] = {"LogicAppsCategory": category}
    return {"time": iso(moment), "workflowId": workflow_id.upper(), "resourceId": workflow_id.upper(),
            "category": "WorkflowRuntime", "level": "Information",
            "operationName": f"Microsoft.Logic/workflows/{operation}", "properties": properties, "location": location}


def service_principal_risk_event(tenant_id: str, moment: datetime, *, detection_id: str, detected: datetime,
                                 sp_id: str, sp_name: str, app_id: str, event_type: str, level: str,
                                 key_ids: list[str]) -> Record:
    """An Entra ID Protection ServicePrincipalRiskEvents record (AADServicePrincipalRiskEvents)."""
    record = _envelope(tenant_id, moment, "ServicePrincipalRiskEvents", "Service principal risk detection", "0")
    record["properties"] = {
        "id": detection_id, "requestId": "", "correlationId": "", "riskEventType": event_type, "riskState": "atRisk",
        "riskLevel": level, "riskDetail": "none", "source": "IdentityProtection", "detectionTimingType": "offline",
        "activity": "servicePrincipal", "tokenIssuerType": "AzureAD", "ipAddress": "",
        "activityDateTime": iso(detected), "detectedDateTime": iso(detected), "lastUpdatedDateTime": iso(moment),
        "servicePrincipalId": sp_id, "servicePrincipalDisplayName": sp_name, "appId": app_id, "keyIds": key_ids,
        "additionalInfo": [{"Key": "alertUrl", "Value": "https://github.com/"}],
    }
    return record


def risky_service_principal(tenant_id: str, moment: datetime, *, sp_id: str, sp_name: str, app_id: str,
                            level: str, state: str = "atRisk") -> Record:
    """An Entra ID Protection RiskyServicePrincipals record (AADRiskyServicePrincipals): the identity's verdict."""
    record = _envelope(tenant_id, moment, "RiskyServicePrincipals", "Risky service principal", "0")
    record["properties"] = {
        "id": sp_id, "appId": app_id, "displayName": sp_name, "accountEnabled": True, "isProcessing": False,
        "riskLastUpdatedDateTime": iso(moment), "riskLevel": level, "riskState": state, "riskDetail": "none",
        "servicePrincipalType": "Application",
    }
    return record
