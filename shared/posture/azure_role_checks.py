"""Azure privileges of workload identities: the role assignments Azure Resource Graph lists
(`DirectorySnapshot.azureRoleAssignments`, read when AZURE_RBAC_SCOPES is set), joined to the directory
by object id. Without assignments in the snapshot these checks find nothing.

A managed identity's host is the Azure resource it runs in: for a system-assigned identity, the resource
id among its alternativeNames. Whoever can write that resource can run code as the identity. User-assigned
identities can be attached to many resources, which Resource Graph lists elsewhere; they are not judged here.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import Any, Literal

from shared.directory.context import DirectoryIndex
from shared.directory.model import AzureRoleAssignment, ServicePrincipal
from shared.directory.tiers.lookup import azure_role_tier
from shared.posture.checks import Hit, check
from shared.posture.inventory import privileged_reasons
from shared.text import join_list, plural

ScopeLevel = Literal["root", "management group", "subscription", "resource group", "resource"]

def scope_level(scope: str) -> ScopeLevel:
    parts = [part.lower() for part in scope.strip("/").split("/") if part]
    if not parts:
        return "root"
    if parts[:3] == ["providers", "microsoft.management", "managementgroups"]:
        return "management group"
    if parts[0] == "subscriptions":
        return {2: "subscription", 4: "resource group"}.get(len(parts), "resource")  # type: ignore[return-value]
    return "resource"


def covers(scope: str, resource_id: str) -> bool:
    """Whether an assignment at `scope` applies to `resource_id` (the same resource or an ancestor scope).
    Management groups are treated as covering everything read, since the snapshot does not hold the hierarchy."""
    level = scope_level(scope)
    if level in ("root", "management group"):
        return True
    scope, resource_id = scope.rstrip("/").lower(), resource_id.rstrip("/").lower()
    return resource_id == scope or resource_id.startswith(scope + "/")


@check
def privileged_azure_role(inventory, index, usage, params, now) -> list[Hit]:
    """Tier 0 (the tier model's) at subscription scope or above (High); tier 1 at management group or root
    scope (Medium)."""
    hits = []
    for sp, assignments in _by_workload_identity(index, index.snapshot.azureRoleAssignments):
        broad = [(a, tier) for a in assignments if (tier := azure_role_tier(a.roleDefinitionId)) is not None and (
            (tier == 0 and scope_level(a.scope) != "resource group" and scope_level(a.scope) != "resource")
            or (tier == 1 and scope_level(a.scope) in ("root", "management group")))]
        if not broad:
            continue
        described = join_list(f"{a.roleName or a.roleDefinitionId} on {_scope_text(a.scope)}" for a, _ in broad)
        severity = "High" if any(tier == 0 for _, tier in broad) else "Medium"
        hits.append(Hit(sp.id, sp.displayName, f"{sp.displayName} holds {described}: it can take over everything "
                        "below, and whoever controls its credentials or its host can too", _evidence(sp, {
                            "AzureRoleAssignments": [_assignment(a) for a, _ in broad]}),
                        severity=severity))  # type: ignore[arg-type]
    return hits


@check
def managed_identity_host_writable_by_many(inventory, index, usage, params, now) -> list[Hit]:
    patterns = [pattern.lower() for pattern in params["write_roles"]]
    assignments = index.snapshot.azureRoleAssignments
    hits = []
    for sp in index.snapshot.servicePrincipals:
        host = system_assigned_host(sp)
        if host is None:
            continue
        writers = [a for a in assignments if a.principalId.lower() != sp.id.lower() and covers(a.scope, host)
                   and any(fnmatch.fnmatchcase(a.roleName.lower(), p) for p in patterns)]
        principals = sorted({a.principalId for a in writers})
        if len(principals) <= params["max_writers"]:
            continue
        reasons = privileged_reasons(index, sp)[1]
        reasons += [f"{a.roleName} on {_scope_text(a.scope)}" for a in assignments
                    if a.principalId.lower() == sp.id.lower() and azure_role_tier(a.roleDefinitionId) is not None]
        suffix = f", and the identity holds {'; '.join(reasons)}" if reasons else ""
        hits.append(Hit(sp.id, sp.displayName, f"{plural(len(principals), 'principal')} can change "
                        f"{_resource_name(host)}, where the managed identity {sp.displayName} runs: each can run "
                        f"code as the identity{suffix}", _evidence(sp, {
                            "Host": host, "Writers": len(principals), "MaxWriters": params["max_writers"],
                            "IdentityPrivileges": reasons,
                            "WriteAssignments": [_assignment(a) for a in writers]}),
                        severity="High" if reasons else None))
    return hits


def system_assigned_host(sp: ServicePrincipal) -> str | None:
    """The Azure resource a system-assigned managed identity belongs to, from its alternativeNames."""
    if sp.servicePrincipalType != "ManagedIdentity" or "isExplicit=True" in sp.alternativeNames:
        return None
    return next((name for name in sp.alternativeNames if name.lower().startswith("/subscriptions/")), None)


def _by_workload_identity(index: DirectoryIndex, assignments: Iterable[AzureRoleAssignment],
                          ) -> list[tuple[ServicePrincipal, list[AzureRoleAssignment]]]:
    """Assignments of the directory's service principals (by object id), grouped per principal."""
    grouped: dict[str, tuple[ServicePrincipal, list[AzureRoleAssignment]]] = {}
    for assignment in assignments:
        sp = index.principal(assignment.principalId) if assignment.principalType == "ServicePrincipal" else None
        if sp is not None and sp.id.lower() == assignment.principalId.lower():
            grouped.setdefault(sp.id, (sp, []))[1].append(assignment)
    return list(grouped.values())


def _evidence(sp: ServicePrincipal, extra: dict[str, Any]) -> dict[str, Any]:
    return {"ServicePrincipalId": sp.id, "ServicePrincipalName": sp.displayName, "AppId": sp.appId,
            "ServicePrincipalType": sp.servicePrincipalType, **extra}


def _assignment(assignment: AzureRoleAssignment) -> dict[str, Any]:
    return {"Role": assignment.roleName or assignment.roleDefinitionId, "RoleDefinitionId": assignment.roleDefinitionId,
            "Scope": assignment.scope, "ScopeLevel": scope_level(assignment.scope),
            "Tier": azure_role_tier(assignment.roleDefinitionId),
            "PrincipalId": assignment.principalId, "PrincipalType": assignment.principalType,
            "AssignmentId": assignment.id}


def _scope_text(scope: str) -> str:
    level = scope_level(scope)
    return "the root management group" if level == "root" else f"{level} {_resource_name(scope)}"


def _resource_name(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1] or resource_id
