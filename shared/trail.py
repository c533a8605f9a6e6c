"""The activity trail of one workload identity: its sign-ins and what it did with the tokens,
across the sign-in logs, Azure activity, the Entra audit log, Key Vault and Graph activity."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

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
    "graph": """let TokenSignIns = union AADServicePrincipalSignInLogs, AADManagedIdentitySignInLogs
| where TimeGenerated >= WindowStart - TokenLifetime and TimeGenerated < WindowEnd
| where ResultType == "0" and isnotempty(UniqueTokenIdentifier)
| project SignInActivityId = UniqueTokenIdentifier, SignInTime = TimeGenerated, SignInIPAddress = IPAddress;
MicrosoftGraphActivityLogs
| where ServicePrincipalId in~ (Principals) or AppId in~ (Principals)
| join kind=leftouter TokenSignIns on SignInActivityId
| project TimeGenerated, Action = strcat(RequestMethod, " ", tostring(ResponseStatusCode)), IPAddress,
    Detail = RequestUri, SignInTime, SignInIPAddress""",
}
# How long before an event the query reads (the sign-in that issued a Graph call's token is up to a day older).
TOKEN_LIFETIME = timedelta(days=1)


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
              f"let WindowEnd = {kql_datetime(until)}; let TokenLifetime = {TOKEN_LIFETIME.days}d;\n")
    events: list[TrailEvent] = []
    for name, body in TRAIL_QUERIES.items():
        query = f"{header}{body}\n| where TimeGenerated >= WindowStart and TimeGenerated < WindowEnd"
        for row in source.query(query, since - TOKEN_LIFETIME, until):
            detail = row["Detail"] or ""
            if name == "graph":
                detail = f"{detail}; {_issuing_sign_in(row)}"
            events.append(TrailEvent(row["TimeGenerated"], name, row["Action"] or "", row["IPAddress"] or "",
                                     detail))
    events.sort(key=lambda event: (event.time, event.source))
    return _fill_directory_ips(events)


def _issuing_sign_in(row: dict) -> str:
    """The sign-in whose token a Graph call used (SignInActivityId is the sign-in's UniqueTokenIdentifier), and
    whether the call came from another IP than that sign-in."""
    if row.get("SignInTime") is None:
        return "no sign-in in the logs issued its token"
    issued = f"token of the sign-in at {row['SignInTime']:%Y-%m-%d %H:%M:%S}"
    sign_in_ip = row.get("SignInIPAddress") or ""
    if not sign_in_ip:
        return issued
    if sign_in_ip != (row.get("IPAddress") or ""):
        return f"{issued} from {sign_in_ip}, ANOTHER IP"
    return f"{issued} from the same IP"


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
