"""Workload identities by every name they go by, for the one name resolver (shared/names.py).

An identity is its service principal: object id, app id, the application's object id (where the audit log
records credentials added on the application) and display name. The names come from the directory (a snapshot
file offline, the inventory the audit stored) and, when no directory is at hand, from the logs themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from shared.names import Named, resolve

if TYPE_CHECKING:
    from shared.directory.model import DirectorySnapshot
    from shared.logsource.base import LogSource
    from shared.posture.model import CredentialRecord

KIND = "identity"
IDENTITY_QUERIES = {  # the identities the logs name, when no directory is at hand
    "signed in": """union AADServicePrincipalSignInLogs, AADManagedIdentitySignInLogs
| where TimeGenerated >= WindowStart and TimeGenerated < WindowEnd and isnotempty(ServicePrincipalId)
| summarize by ServicePrincipalId, ServicePrincipalName, AppId""",
    "applications": """AuditLogs
| where TimeGenerated >= WindowStart and TimeGenerated < WindowEnd
| extend Id = tostring(TargetResources[0].id), Name = tostring(TargetResources[0].displayName),
    Type = tostring(TargetResources[0].type)
| where Type == "Application" and isnotempty(Id)
| distinct Id, Name""",
}


def identity(sp_id: str, app_id: str, name: str, application_ids: Sequence[str] = (), kind: str = "") -> Named:
    ids = [f"object id {sp_id}", f"app id {app_id or 'unknown'}",
           *(f"application object id {application}" for application in application_ids)]
    label = f"{name or sp_id} ({', '.join([kind, *ids] if kind else ids)})"
    aliases = tuple(dict.fromkeys(alias for alias in (app_id, *application_ids) if alias and alias != sp_id))
    return Named(sp_id, (sp_id, *aliases, name), label, aliases)


def directory_identities(snapshot: DirectorySnapshot) -> list[Named]:
    """Every service principal, with its application's object id when the application is in this tenant."""
    applications = {app.appId: app.id for app in snapshot.applications}
    return [identity(sp.id, sp.appId, sp.displayName, [applications[sp.appId]] if sp.appId in applications else [],
                     "managed identity" if sp.servicePrincipalType == "ManagedIdentity" else "")
            for sp in snapshot.servicePrincipals]


def inventory_identities(records: Iterable[CredentialRecord]) -> list[Named]:
    """The identities of a stored credential inventory (those holding at least one credential)."""
    by_id = {record.principal_id: record for record in records}
    return [identity(r.principal_id, r.app_id, r.principal_name, [r.application_id] if r.application_id else [],
                     r.principal_type if r.principal_type == "managed identity" else "") for r in by_id.values()]


def log_identities(source: LogSource, since: datetime, until: datetime) -> list[Named]:
    """Identities that signed in during [since, until); an application in the audit log with the same display
    name is taken to be the service principal's own (the logs carry no other link between the two)."""
    from shared.catalog.render import kql_datetime  # imported here: it loads the KQL engine

    header = f"let WindowStart = {kql_datetime(since)}; let WindowEnd = {kql_datetime(until)};\n"
    applications: dict[str, list[str]] = {}
    for row in source.query(header + IDENTITY_QUERIES["applications"], since, until):
        applications.setdefault((row["Name"] or "").lower(), []).append(row["Id"])
    found: dict[str, Named] = {}
    for row in source.query(header + IDENTITY_QUERIES["signed in"], since, until):
        name = row["ServicePrincipalName"] or ""
        found.setdefault(row["ServicePrincipalId"], identity(row["ServicePrincipalId"], row["AppId"] or "", name,
                                                             applications.get(name.lower(), [])))
    return list(found.values())


def resolve_identity(name: str, candidates: Iterable[Named]) -> Named:
    """The identity `name` means: UnknownName ("unknown identity payroll-sync") or AmbiguousName otherwise."""
    return resolve(name, candidates, KIND)
