"""Directory context of a workload identity, looked up in one inventory: who it is, who owns it,
what credentials it holds, which one a finding shows in use, and what it is allowed to do."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shared.directory.model import (
    Application,
    DirectoryRole,
    DirectorySnapshot,
    KeyCredential,
    Owner,
    PasswordCredential,
    ServicePrincipal,
)
from shared.directory.privilege import Holding, holdings, principal_tier
from shared.findings import Finding
from shared.severity import severity_rank


class DirectoryIndex:
    """Finds a principal by service principal object id, app id, application object id or name."""

    def __init__(self, snapshot: DirectorySnapshot) -> None:
        self.snapshot = snapshot
        self.applications = {app.appId: app for app in snapshot.applications}
        self._principals: dict[str, ServicePrincipal] = {}
        for sp in snapshot.servicePrincipals:
            for key in (sp.id, sp.appId, sp.displayName.lower()):
                self._principals.setdefault(key, sp)
        for app in snapshot.applications:
            sp = self._principals.get(app.appId)
            if sp is not None:
                self._principals.setdefault(app.id, sp)
        self._roles: dict[str, list[DirectoryRole]] = {}
        for role in snapshot.directoryRoles:
            for member in role.members:
                self._roles.setdefault(member.id, []).append(role)

    def principal(self, key: str) -> ServicePrincipal | None:
        return self._principals.get(key) or self._principals.get(key.lower())

    def application_of(self, sp: ServicePrincipal) -> Application | None:
        return self.applications.get(sp.appId)

    def directory_roles(self, sp: ServicePrincipal) -> list[str]:
        return [role.displayName for role in self._roles.get(sp.id, [])]

    def holdings(self, sp: ServicePrincipal) -> list[Holding]:
        """Its application permissions and directory roles with their tiers."""
        return holdings(sp, self._roles.get(sp.id, []), self._app_id)

    def _app_id(self, object_id: str) -> str | None:
        sp = self._principals.get(object_id)
        return sp.appId if sp is not None and sp.id == object_id else None

    def context(self, key: str, evidence: dict[str, Any] | None = None) -> dict[str, Any]:
        """The context of the principal `key`; `{"deleted": True}` when the directory no longer has it."""
        sp = self.principal(key) if key else None
        if sp is None:
            return {"deleted": True, "looked_up": key}
        app = self.application_of(sp)
        credentials = [*_credentials(app, "application"), *_credentials(sp, "servicePrincipal")]
        used = _credential_used(credentials, evidence or {})
        permissions = sorted({a.permission for a in sp.appRoleAssignments})
        held = self.holdings(sp)
        return {
            "deleted": False,
            "service_principal_id": sp.id,
            "app_id": sp.appId,
            "application_object_id": app.id if app else None,
            "display_name": sp.displayName,
            "type": principal_type(sp),
            "app_owner_tenant": sp.appOwnerOrganizationId,
            "owners": [_owner(o) for o in _unique_owners([*(app.owners if app else []), *sp.owners])],
            "credentials": credentials,
            "credential_used": used,
            "permissions": permissions,
            "privileged_permissions": sorted({h.name for h in held if h.kind == "permission" and h.tier == 0}),
            "directory_roles": self.directory_roles(sp),
            "tier": principal_tier(held),
        }


def principal_type(sp: ServicePrincipal) -> str:
    if sp.servicePrincipalType == "ManagedIdentity":
        return "managed identity"
    if sp.servicePrincipalType == "Application":
        return "application"
    return "other"


def enrich(findings: Iterable[Finding], index: DirectoryIndex) -> list[Finding]:
    """Each finding with its principal's context; no calls, only the one inventory."""
    return [finding.model_copy(update={"context": index.context(finding.principal_id, finding.evidence)})
            for finding in findings]


def apply_privileged_severity(detection: Any, findings: Iterable[Finding]) -> list[Finding]:
    """Raise to the detection's `severityWhenPrivileged` the enriched findings whose principal is tier 0 (holds a
    tier-0 permission or directory role): the query cannot see the directory, the enrichment can.
    Never lowers a severity; findings without context (directory unread, principal deleted) stay as they are."""
    raised_to = getattr(detection, "severityWhenPrivileged", None)
    if not raised_to:
        return list(findings)
    result = []
    for finding in findings:
        context = finding.context or {}
        if context.get("tier") == 0 and severity_rank(raised_to) > severity_rank(finding.severity):
            finding = finding.model_copy(update={"severity": raised_to})
        result.append(finding)
    return result


def _credentials(owner: Application | ServicePrincipal | None, on: str) -> list[dict[str, Any]]:
    if owner is None:
        return []
    return [_credential(c, on) for c in [*owner.passwordCredentials, *owner.keyCredentials]]


def _credential(credential: PasswordCredential | KeyCredential, on: str) -> dict[str, Any]:
    secret = isinstance(credential, PasswordCredential)
    return {
        "on": on,
        "type": "secret" if secret else "certificate",
        "key_id": credential.keyId,
        "display_name": credential.displayName,
        "thumbprint": None if secret else credential.customKeyIdentifier,
        "start": credential.startDateTime.isoformat() if credential.startDateTime else None,
        "end": credential.endDateTime.isoformat() if credential.endDateTime else None,
    }


def _credential_used(credentials: list[dict[str, Any]], evidence: dict[str, Any]) -> dict[str, Any] | None:
    """The credential whose key id or thumbprint appears in the evidence (e.g. ServicePrincipalCredentialKeyId)."""
    seen = {str(value).lower() for value in _flat_values(evidence)}
    return next((c for c in credentials if c["key_id"].lower() in seen
                 or (c["thumbprint"] and c["thumbprint"].lower() in seen)), None)


def _flat_values(value: Any) -> Iterable[Any]:
    if isinstance(value, dict):
        for inner in value.values():
            yield from _flat_values(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _flat_values(inner)
    elif value is not None:
        yield value


def _unique_owners(owners: list[Owner]) -> list[Owner]:
    return list({owner.id: owner for owner in owners}.values())


def _owner(owner: Owner) -> dict[str, Any]:
    return {"id": owner.id, "type": owner.type, "name": owner.userPrincipalName or owner.displayName or owner.id}
