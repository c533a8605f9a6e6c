"""The activity trail of one workload identity: its sign-ins and what it did with the tokens,
across the sign-in logs, Azure activity, the Entra audit log, Key Vault and Graph activity."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.catalog.render import kql_datetime
from shared.logsource.base import LogSource

TRAIL_QUERIES = {
    "sign-in": """union AADServicePrincipalSignInLogs, AADManagedIdentitySignInLogs
| where ServicePrincipalId in~ (Principals) or AppId in~ (Principals)
| project TimeGenerated, Action = strcat("sign-in to ", ResourceDisplayName,
    iff(ResultType == "0", "", strcat(" FAILED AADSTS", ResultType))), IPAddress,
    Detail = strcat(ClientCredentialType, " ", ServicePrincipalCredentialKeyId)""",
    "azure": """AzureActivity
| where Caller in~ (Principals)
| project TimeGenerated, Action = strcat(OperationNameValue, " ", ActivityStatusValue), IPAddress = CallerIpAddress,
    Detail = _ResourceId""",
    "directory": """AuditLogs
| where tostring(InitiatedBy.app.servicePrincipalId) in~ (Principals)
    or tostring(TargetResources[0].id) in~ (Principals)
| extend Actor = iff(isnotempty(tostring(InitiatedBy.user.userPrincipalName)),
    tostring(InitiatedBy.user.userPrincipalName), tostring(InitiatedBy.app.displayName))
| project TimeGenerated, Action = OperationName, IPAddress = tostring(InitiatedBy.user.ipAddress),
    Detail = strcat("by ", Actor, " on ", tostring(TargetResources[0].displayName))""",
    "key vault": """AzureDiagnostics
| where ResourceProvider == "MICROSOFT.KEYVAULT" and tostring(identity_claim_oid_g) in~ (Principals)
| project TimeGenerated, Action = strcat(OperationName, " ", ResultType), IPAddress = CallerIPAddress, Detail = id_s""",
    "graph": """MicrosoftGraphActivityLogs
| where ServicePrincipalId in~ (Principals) or AppId in~ (Principals)
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


def trail(source: LogSource, principal: str | Sequence[str], since: datetime, until: datetime) -> list[TrailEvent]:
    """Every event of `principal` in [since, until), oldest first. `principal` is every id of the identity
    (service principal object id, app id, application object id), so a credential added on the application
    shows in the service principal's trail.

    Directory changes made by the principal carry no IP in the audit log; they get the IP of
    the principal's latest successful sign-in before them, marked as such.
    """
    ids = [principal] if isinstance(principal, str) else list(principal)
    header = (f"let Principals = dynamic({json.dumps(ids)}); let WindowStart = {kql_datetime(since)}; "
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
