"""The sample tenant's workload identities: who they are, what they hold and how they usually behave."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.directory.model import (
    Application,
    AppRoleAssignment,
    AzureRoleAssignment,
    KeyCredential,
    Owner,
    PasswordCredential,
    ServicePrincipal,
)

MICROSOFT_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
ARM_APP_ID = "797f4846-ba00-4fd7-ba43-dac1f8f63013"
KEYVAULT_APP_ID = "cfa8b339-82a2-471a-a3c9-0fc0be7a4093"
LOG_ANALYTICS_APP_ID = "ca7f3f0b-7d91-482c-8e09-c5d840d0eac5"
GRAPH_ROLES = {
    "Application.Read.All": "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
    "Application.ReadWrite.All": "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9",
    "Application.ReadWrite.OwnedBy": "18a4783c-866b-4cc7-a460-3d5e5662c884",
    "User.Read.All": "df021288-bdef-4463-88db-98f22de89214",
    "User.ReadWrite.All": "741f803b-c850-494e-b5df-cde7c675a1ca",
    "Group.ReadWrite.All": "62a82d76-70ea-41e2-9197-370581804d09",
    "Files.Read.All": "01d4889c-1287-42c6-ac1f-5d1e02578ef6",
    "Mail.Send": "b633e1c5-b582-4048-a93e-9f11b44c7e96",
    "Mail.Read": "810c84a8-4a9e-49e6-bf7d-12d183f40d01",
    "RoleManagement.ReadWrite.Directory": "9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8",
}
KINDS = ("pipeline", "job", "managed", "job", "pipeline", "managed", "user-assigned")
WORDS = ("billing", "payments", "inventory", "crm", "reports", "search", "orders", "catalog", "ledger", "hr",
         "analytics", "backup", "mail", "events", "gateway", "pricing", "identity", "assets", "audit", "support")


@dataclass
class Workload:
    """One workload identity and its habits: how often it signs in, from where, to what."""

    kind: str  # pipeline, job, automation, managed, user-assigned
    name: str
    sp: ServicePrincipal
    app: Application | None
    home_ip: str = ""
    sign_ins_per_day: int = 3
    resource: str = "Microsoft Graph"
    resource_app_id: str = GRAPH_APP_ID
    associated_resource: str = ""
    vault_id: str = ""
    secrets: list[str] = field(default_factory=list)
    workflow: str = ""  # resource id of the Logic App whose API connection signs in as this principal
    graph_reads: tuple[str, ...] = ()  # Graph paths it reads each run ({user} is a user's id); default: a few users
    azure_roles: list[AzureRoleAssignment] = field(default_factory=list)  # its story's Azure role assignments

    @property
    def credential(self) -> PasswordCredential | KeyCredential | None:
        """The credential it signs in with: the newest secret or certificate still valid."""
        if self.app is None:
            return None
        held = [*self.app.passwordCredentials, *self.app.keyCredentials]
        return max(held, key=lambda credential: credential.startDateTime or datetime.min) if held else None


class IdentityFactory:
    """Deterministic ids, names and credentials from one random generator."""

    def __init__(self, rng: random.Random, tenant_id: str, now: datetime, subscription_id: str) -> None:
        self.rng = rng
        self.tenant_id = tenant_id
        self.now = now
        self.subscription_id = subscription_id
        self.users = [Owner(id=self.guid(), type="user", displayName=name.title(),
                            userPrincipalName=f"{name}@contoso.com", mail=f"{name}@contoso.com")
                      for name in ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")]

    def guid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def azure_ip(self) -> str:
        return f"20.{self.rng.randint(40, 220)}.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}"

    def secret(self, name: str, age_days: int, lifetime_days: int) -> PasswordCredential:
        start = self.now - timedelta(days=age_days)
        return PasswordCredential(keyId=self.guid(), displayName=name, hint=self.rng.choice("abcdefgh") + "Q~",
                                  startDateTime=start, endDateTime=start + timedelta(days=lifetime_days))

    def certificate(self, name: str, age_days: int, lifetime_days: int) -> KeyCredential:
        start = self.now - timedelta(days=age_days)
        thumbprint = "".join(self.rng.choice("0123456789ABCDEF") for _ in range(40))
        return KeyCredential(keyId=self.guid(), displayName=name, customKeyIdentifier=thumbprint,
                             startDateTime=start, endDateTime=start + timedelta(days=lifetime_days))

    def graph_role(self, sp: ServicePrincipal, permission: str, graph_sp_id: str) -> None:
        sp.appRoleAssignments.append(AppRoleAssignment(
            id=self.guid(), resourceId=graph_sp_id, resourceDisplayName="Microsoft Graph",
            appRoleId=GRAPH_ROLES[permission], permission=permission,
            createdDateTime=self.now - timedelta(days=self.rng.randint(30, 400))))

    def application(self, kind: str, name: str, *, certificate: bool = False) -> Workload:
        app = Application(id=self.guid(), appId=self.guid(), displayName=name,
                          createdDateTime=self.now - timedelta(days=self.rng.randint(120, 900)),
                          owners=self.rng.sample(self.users, self.rng.randint(1, 2)))
        if certificate:
            app.keyCredentials.append(self.certificate(f"{name}-cert", self.rng.randint(20, 200), 365))
        else:
            app.passwordCredentials.append(self.secret(f"{name}-secret", self.rng.randint(20, 150), 180))
        sp = ServicePrincipal(id=self.guid(), appId=app.appId, displayName=name, appOwnerOrganizationId=self.tenant_id,
                              createdDateTime=app.createdDateTime)
        pipeline = kind == "pipeline"
        return Workload(kind=kind, name=name, sp=sp, app=app, home_ip=self.azure_ip(),
                        sign_ins_per_day=self.rng.randint(4, 8) if pipeline else self.rng.randint(2, 4),
                        resource="Azure Resource Manager" if pipeline else "Microsoft Graph",
                        resource_app_id=ARM_APP_ID if pipeline else GRAPH_APP_ID)

    def managed_identity(self, kind: str, name: str, vault_id: str) -> Workload:
        rg = f"/subscriptions/{self.subscription_id}/resourceGroups/rg-{name}"
        if kind == "user-assigned":
            alternative = f"{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
            associated = f"{rg}/providers/Microsoft.Compute/virtualMachines/vm-{name}"
        else:
            alternative = associated = f"{rg}/providers/Microsoft.Web/sites/{name}"
        sp = ServicePrincipal(id=self.guid(), appId=self.guid(), displayName=name,
                              servicePrincipalType="ManagedIdentity", alternativeNames=["isExplicit=" + str(
                                  kind == "user-assigned"), alternative],
                              createdDateTime=self.now - timedelta(days=self.rng.randint(60, 600)))
        sp.keyCredentials.append(self.certificate(f"{name}-msi", self.rng.randint(1, 40), 90))
        secrets = self.rng.sample(["db-password", "api-key", "storage-conn", "smtp-password", "signing-key",
                                   "service-bus", "redis-key", "partner-token"], 2)
        return Workload(kind=kind, name=name, sp=sp, app=None, sign_ins_per_day=self.rng.randint(2, 5),
                        resource="Azure Key Vault", resource_app_id=KEYVAULT_APP_ID,
                        associated_resource=associated, vault_id=vault_id, secrets=secrets)
