"""Synthetic directory snapshots for tests and benchmarks: realistic shape, deterministic, fast.

`make_snapshot(n_service_principals, seed)` returns a tenant with exactly that many service
principals: Microsoft Graph's own (the resource of the application permissions), an in-tenant
API that exposes an app role, app registrations with their service principals (secrets,
certificates, federated credentials, owners), managed identities (system- and user-assigned)
and multi-tenant apps from other tenants; a share of them hold Graph application permissions
and a few sit in privileged directory roles, and users and service principals hold application
management roles tenant-wide or scoped to one application. 20,000 principals build in about a second.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from shared.directory.model import (
    Application,
    AppRoleAssignment,
    DirectoryRole,
    DirectorySnapshot,
    FederatedIdentityCredential,
    KeyCredential,
    Owner,
    PasswordCredential,
    RoleAssignment,
    RoleMember,
    ServicePrincipal,
)

MICROSOFT_GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
MICROSOFT_TENANT_ID = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
MANAGED_IDENTITY_OWNER_TENANT = MICROSOFT_TENANT_ID

# Microsoft Graph application permissions (app role ids are the same in every tenant).
GRAPH_APP_ROLES: dict[str, str] = {
    "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30": "Application.Read.All",
    "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9": "Application.ReadWrite.All",
    "9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8": "RoleManagement.ReadWrite.Directory",
    "06b708a9-e830-4db3-aa81-97fc8c7b3e59": "AppRoleAssignment.ReadWrite.All",
    "19dbc75e-c2e2-444c-a770-ec69d8559fc7": "Directory.ReadWrite.All",
    "b633e1c5-b582-4048-a93e-9f11b44c7e96": "Mail.Send",
    "e2a3a72e-5f79-4c64-b1b1-878b674786c9": "Mail.ReadWrite",
}

# Built-in directory role templates (ids are the same in every tenant).
ROLE_TEMPLATES: dict[str, str] = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": "Application Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
}
# Roles that can add credentials to applications: what the Graph adapter reads role assignments of.
APP_MANAGEMENT_ROLES = ("9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3", "158c047a-c907-4556-b7ef-446551a6b5f7")

EXPORTED_AT = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
_WORDS = ("billing", "orders", "payroll", "crm", "backup", "deploy", "etl", "reports", "sync", "monitor",
          "inventory", "gateway", "search", "identity", "ledger", "notify", "archive", "ingest")


class _Ids:
    """Deterministic GUIDs and Graph-style app role assignment ids from one seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def guid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def assignment_id(self) -> str:
        # Graph's appRoleAssignment ids are 43-character url-safe base64 strings, not GUIDs.
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        return "".join(alphabet[self.rng.getrandbits(6)] for _ in range(43))

    def thumbprint(self) -> str:
        return f"{self.rng.getrandbits(160):040X}"


def _when(rng: random.Random, days_before: int, days_after: int = 0) -> datetime:
    return EXPORTED_AT + timedelta(days=rng.randint(-days_before, days_after), hours=rng.randint(0, 23))


def _passwords(ids: _Ids, rng: random.Random, count: int) -> list[PasswordCredential]:
    out = []
    for i in range(count):
        start = _when(rng, 900)
        lifetime = rng.choice((90, 180, 365, 730, 3650))
        out.append(PasswordCredential(keyId=ids.guid(), displayName=f"secret-{i + 1}",
                                      hint=f"{rng.choice('abcxyz')}{rng.randint(0, 9)}~",
                                      startDateTime=start, endDateTime=start + timedelta(days=lifetime)))
    return out


def _certificates(ids: _Ids, rng: random.Random, count: int) -> list[KeyCredential]:
    out = []
    for i in range(count):
        start = _when(rng, 700)
        out.append(KeyCredential(keyId=ids.guid(), displayName=f"CN=cert-{i + 1}", type="AsymmetricX509Cert",
                                 usage="Verify", customKeyIdentifier=ids.thumbprint(),
                                 startDateTime=start, endDateTime=start + timedelta(days=365)))
    return out


def _owners(rng: random.Random, users: list[Owner], sp_owners: list[Owner], count: int) -> list[Owner]:
    if count <= 0:
        return []
    picked = rng.sample(users, min(count, len(users)))
    if sp_owners and rng.random() < 0.05:
        picked[-1] = rng.choice(sp_owners)
    return picked


def make_snapshot(n_service_principals: int, seed: int = 1) -> DirectorySnapshot:
    """A deterministic tenant with exactly `n_service_principals` service principals (at least 2)."""
    if n_service_principals < 2:
        raise ValueError("a tenant needs at least Microsoft Graph's service principal and one more")
    rng = random.Random(seed)
    ids = _Ids(rng)
    tenant_id = ids.guid()
    users = [Owner(id=ids.guid(), type="user", displayName=f"User {i}", userPrincipalName=f"user{i}@contoso.example")
             for i in range(max(10, n_service_principals // 20))]

    graph_sp = ServicePrincipal(id=ids.guid(), appId=MICROSOFT_GRAPH_APP_ID, displayName="Microsoft Graph",
                                appOwnerOrganizationId=MICROSOFT_TENANT_ID,
                                alternativeNames=[])
    api_app = Application(id=ids.guid(), appId=ids.guid(), displayName="Contoso Orders API",
                          createdDateTime=_when(rng, 1500), owners=users[:1])
    api_sp = ServicePrincipal(id=ids.guid(), appId=api_app.appId, displayName=api_app.displayName,
                              appOwnerOrganizationId=tenant_id, owners=users[:1])
    api_role_id, api_role_value = ids.guid(), "Orders.Read.All"

    applications: list[Application] = [api_app]
    principals: list[ServicePrincipal] = [graph_sp, api_sp]
    sp_owner_pool: list[Owner] = []
    graph_roles = list(GRAPH_APP_ROLES.items())

    for i in range(n_service_principals - len(principals)):
        word = _WORDS[i % len(_WORDS)]
        kind = rng.random()
        if kind < 0.2:  # managed identity, system- or user-assigned
            user_assigned = rng.random() < 0.5
            name = f"id-{word}-{i}" if user_assigned else f"func-{word}-{i}"
            resource = (f"/subscriptions/{ids.guid()}/resourcegroups/rg-{word}/providers/"
                        + (f"Microsoft.ManagedIdentity/userAssignedIdentities/{name}" if user_assigned
                           else f"Microsoft.Web/sites/{name}"))
            sp = ServicePrincipal(id=ids.guid(), appId=ids.guid(), displayName=name,
                                  servicePrincipalType="ManagedIdentity",
                                  appOwnerOrganizationId=MANAGED_IDENTITY_OWNER_TENANT,
                                  alternativeNames=[f"isExplicit={user_assigned}", resource],
                                  keyCredentials=_certificates(ids, rng, 1))
        elif kind < 0.3:  # multi-tenant app from another tenant (no app registration here)
            sp = ServicePrincipal(id=ids.guid(), appId=ids.guid(), displayName=f"Fabrikam {word.title()} {i}",
                                  appOwnerOrganizationId=ids.guid(), alternativeNames=[])
        else:  # app registration in this tenant and its service principal
            app_owners = _owners(rng, users, sp_owner_pool, rng.choice((0, 1, 1, 2, 3)))
            app = Application(
                id=ids.guid(), appId=ids.guid(), displayName=f"app-{word}-{i}", createdDateTime=_when(rng, 1500),
                signInAudience=rng.choice(("AzureADMyOrg", "AzureADMyOrg", "AzureADMultipleOrgs")),
                passwordCredentials=_passwords(ids, rng, rng.choice((0, 1, 1, 2))),
                keyCredentials=_certificates(ids, rng, rng.choice((0, 0, 1))),
                federatedIdentityCredentials=[
                    FederatedIdentityCredential(id=ids.guid(), name=f"github-{word}-{n}",
                                                issuer="https://token.actions.githubusercontent.com",
                                                subject=f"repo:contoso/{word}:environment:prod{n}")
                    for n in range(rng.choice((0, 0, 0, 1, 2)))
                ],
                owners=app_owners,
            )
            applications.append(app)
            sp = ServicePrincipal(id=ids.guid(), appId=app.appId, displayName=app.displayName,
                                  appOwnerOrganizationId=tenant_id, alternativeNames=[],
                                  passwordCredentials=_passwords(ids, rng, 1 if rng.random() < 0.03 else 0),
                                  owners=app_owners[:1] if rng.random() < 0.3 else [])
            if len(sp_owner_pool) < 50:
                sp_owner_pool.append(Owner(id=sp.id, type="servicePrincipal", displayName=sp.displayName))
        if rng.random() < 0.3:
            for role_id, value in rng.sample(graph_roles, rng.randint(1, 4)):
                sp.appRoleAssignments.append(AppRoleAssignment(
                    id=ids.assignment_id(), resourceId=graph_sp.id, resourceDisplayName=graph_sp.displayName,
                    appRoleId=role_id, permission=value, createdDateTime=_when(rng, 600)))
        if rng.random() < 0.05:
            sp.appRoleAssignments.append(AppRoleAssignment(
                id=ids.assignment_id(), resourceId=api_sp.id, resourceDisplayName=api_sp.displayName,
                appRoleId=api_role_id, permission=api_role_value, createdDateTime=_when(rng, 600)))
        principals.append(sp)

    workload = [sp for sp in principals[2:] if sp.servicePrincipalType in ("Application", "ManagedIdentity")]
    roles = []
    for template_id, name in ROLE_TEMPLATES.items():
        members = rng.sample(workload, min(len(workload), rng.randint(1, 3)))
        roles.append(DirectoryRole(id=ids.guid(), displayName=name, roleTemplateId=template_id,
                                   members=[RoleMember(id=sp.id, type="servicePrincipal") for sp in members]))
    return DirectorySnapshot(tenantId=tenant_id, exportedAt=EXPORTED_AT, applications=applications,
                             servicePrincipals=principals, directoryRoles=roles,
                             roleAssignments=_role_assignments(ids, rng, users, applications, workload))


def _role_assignments(ids: _Ids, rng: random.Random, users: list[Owner], applications: list[Application],
                      workload: list[ServicePrincipal]) -> list[RoleAssignment]:
    """Application management roles: to users tenant-wide or scoped to one application, and to a service principal."""
    assignments = []
    for _ in range(max(3, len(applications) // 50)):
        user = rng.choice(users)
        scope = "/" if rng.random() < 0.4 else f"/{rng.choice(applications).id}"
        assignments.append(RoleAssignment(id=ids.guid(), roleDefinitionId=rng.choice(APP_MANAGEMENT_ROLES),
                                          principalId=user.id, directoryScopeId=scope, principal=user))
    sp = rng.choice(workload)
    assignments.append(RoleAssignment(
        id=ids.guid(), roleDefinitionId=APP_MANAGEMENT_ROLES[0], principalId=sp.id,
        principal=Owner(id=sp.id, type="servicePrincipal", displayName=sp.displayName)))
    return assignments


def app_roles_of(snapshot: DirectorySnapshot) -> dict[str, list[tuple[str, str]]]:
    """Resource service principal id → [(appRoleId, value)]: Graph's well-known roles plus every role assigned."""
    roles: dict[str, dict[str, str]] = {}
    for sp in snapshot.servicePrincipals:
        if sp.appId == MICROSOFT_GRAPH_APP_ID:
            roles.setdefault(sp.id, {}).update(GRAPH_APP_ROLES)
        for assignment in sp.appRoleAssignments:
            roles.setdefault(assignment.resourceId, {})[assignment.appRoleId] = assignment.permission
    return {resource: sorted(values.items()) for resource, values in roles.items()}
