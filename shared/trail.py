"""The activity trail of one workload identity: its sign-ins and what it did with the tokens,
across the sign-in logs, Azure activity, the Entra audit log, Key Vault and Graph activity."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from shared.catalog.render import kql_datetime
from shared.logsource.base import LogSource

TRAIL_QUERIES = {
    "sign-in": """union AADServicePrincipalSignInLogs, AADManagedIdentitySignInLogs
| where ServicePrincipalId == Principal or AppId == Principal
| project TimeGenerated, Action = strcat("sign-in to ", ResourceDisplayName,
    iff(ResultType == "0", "", strcat(" FAILED AADSTS", ResultType))), IPAddress,
    Detail = strcat(ClientCredentialType, " ", ServicePrincipalCredentialKeyId)""",
    "azure": """AzureActivity
| where Caller == Principal
| project TimeGenerated, Action = strcat(OperationNameValue, " ", ActivityStatusValue), IPAddress = CallerIpAddress,
    Detail = _ResourceId""",
    "directory": """AuditLogs
| where tostring(InitiatedBy.app.servicePrincipalId) == Principal or tostring(TargetResources[0].id) == Principal
| extend Actor = iff(isnotempty(tostring(InitiatedBy.user.userPrincipalName)),
    tostring(InitiatedBy.user.userPrincipalName), tostring(InitiatedBy.app.displayName))
| project TimeGenerated, Action = OperationName, IPAddress = tostring(InitiatedBy.user.ipAddress),
    Detail = strcat("by ", Actor, " on ", tostring(TargetResources[0].displayName))""",
    "key vault": """AzureDiagnostics
| where ResourceProvider == "MICROSOFT.KEYVAULT" and tostring(identity_claim_oid_g) == Principal
| project TimeGenerated, Action = strcat(OperationName, " ", ResultType), IPAddress = CallerIPAddress, Detail = id_s""",
    "graph": """MicrosoftGraphActivityLogs
| where ServicePrincipalId == Principal or AppId == Principal
| project TimeGenerated, Action = strcat(RequestMethod, " ", tostring(ResponseStatusCode)), IPAddress,
    Detail = RequestUri""",
}


@dataclass(frozen=True)
class TrailEvent:
    time: datetime
    source: str
    action: str
    ip: str
    detail: str
    ip_from_sign_in: bool = False


def trail(source: LogSource, principal: str, since: datetime, until: datetime) -> list[TrailEvent]:
    """Every event of `principal` (object id or app id) in [since, until), oldest first.

    Directory changes made by the principal carry no IP in the audit log; they get the IP of
    the principal's latest successful sign-in before them, marked as such.
    """
    header = (f"let Principal = {json.dumps(principal)}; let WindowStart = {kql_datetime(since)}; "
              f"let WindowEnd = {kql_datetime(until)};\n")
    events: list[TrailEvent] = []
    for name, body in TRAIL_QUERIES.items():
        query = f"{header}{body}\n| where TimeGenerated >= WindowStart and TimeGenerated < WindowEnd"
        for row in source.query(query, since, until):
            events.append(TrailEvent(row["TimeGenerated"], name, row["Action"] or "", row["IPAddress"] or "",
                                     row["Detail"] or ""))
    events.sort(key=lambda event: (event.time, event.source))
    return _fill_directory_ips(events)


def _fill_directory_ips(events: list[TrailEvent]) -> list[TrailEvent]:
    last_ip = ""
    filled = []
    for event in events:
        if event.source == "sign-in" and "FAILED" not in event.action and event.ip:
            last_ip = event.ip
        if event.source == "directory" and not event.ip and last_ip:
            event = TrailEvent(event.time, event.source, event.action, last_ip, event.detail, ip_from_sign_in=True)
        filled.append(event)
    return filled
