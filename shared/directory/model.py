"""The directory snapshot: what one bulk read of Microsoft Graph returns, in Graph's own names.

The sample tenant ships one, `wiaudit directory export` writes one from a real tenant, and
the Graph adapter returns the same model, so every consumer sees one shape.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class GraphModel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class PasswordCredential(GraphModel):
    keyId: str
    displayName: str | None = None
    hint: str | None = None
    startDateTime: datetime | None = None
    endDateTime: datetime | None = None


class KeyCredential(GraphModel):
    keyId: str
    displayName: str | None = None
    type: str = "AsymmetricX509Cert"
    usage: str = "Verify"
    customKeyIdentifier: str | None = Field(default=None, description="Certificate thumbprint (hex)")
    startDateTime: datetime | None = None
    endDateTime: datetime | None = None


class FederatedIdentityExpression(GraphModel):
    """A flexible federated credential's subject match, e.g. `claims['sub'] matches 'repo:org/app:*'` (Graph beta)."""

    value: str
    languageVersion: int = 1


class FederatedIdentityCredential(GraphModel):
    id: str
    name: str
    issuer: str
    subject: str = Field("", description="Empty on a flexible credential, which matches claimsMatchingExpression")
    claimsMatchingExpression: FederatedIdentityExpression | None = None
    audiences: list[str] = Field(default_factory=lambda: ["api://AzureADTokenExchange"])


class Owner(GraphModel):
    id: str
    type: Literal["user", "servicePrincipal", "group", "unknown"] = "user"
    displayName: str | None = None
    userPrincipalName: str | None = None
    mail: str | None = Field(default=None, description="A user's mailbox address; None for one without a mailbox")


class AppRoleAssignment(GraphModel):
    """An application permission the principal holds on an API, resolved to its name."""

    id: str
    resourceId: str
    resourceDisplayName: str
    appRoleId: str
    permission: str = Field(description="The app role's value, e.g. Application.ReadWrite.All")
    createdDateTime: datetime | None = None


class RedirectUris(GraphModel):
    """The `web`, `spa` or `publicClient` settings of an application: where sign-in responses may be sent."""

    redirectUris: list[str] = Field(default_factory=list)


class ServicePrincipalLockConfiguration(GraphModel):
    """App instance property lock: which properties of the app's service principals other tenants cannot change."""

    isEnabled: bool = False
    allProperties: bool | None = None
    credentialsWithUsageVerify: bool | None = None
    credentialsWithUsageSign: bool | None = None
    identifierUris: bool | None = None
    tokenEncryptionKeyId: bool | None = None


class Application(GraphModel):
    id: str
    appId: str
    displayName: str
    signInAudience: str = "AzureADMyOrg"
    createdDateTime: datetime | None = None
    passwordCredentials: list[PasswordCredential] = Field(default_factory=list)
    keyCredentials: list[KeyCredential] = Field(default_factory=list)
    federatedIdentityCredentials: list[FederatedIdentityCredential] = Field(default_factory=list)
    owners: list[Owner] = Field(default_factory=list)
    web: RedirectUris | None = None
    spa: RedirectUris | None = None
    publicClient: RedirectUris | None = None
    servicePrincipalLockConfiguration: ServicePrincipalLockConfiguration | None = None
    disabledByMicrosoftStatus: str | None = Field(
        None, description="NotDisabled, DisabledDueToViolationOfServicesAgreement (Microsoft's verdict), or null")


class ServicePrincipal(GraphModel):
    id: str
    appId: str
    displayName: str
    servicePrincipalType: str = "Application"  # Application, ManagedIdentity, Legacy, SocialIdp
    appOwnerOrganizationId: str | None = None
    accountEnabled: bool = True
    alternativeNames: list[str] = Field(default_factory=list)
    createdDateTime: datetime | None = None
    passwordCredentials: list[PasswordCredential] = Field(default_factory=list)
    keyCredentials: list[KeyCredential] = Field(default_factory=list)
    owners: list[Owner] = Field(default_factory=list)
    appRoleAssignments: list[AppRoleAssignment] = Field(default_factory=list)
    federatedIdentityCredentials: list[FederatedIdentityCredential] = Field(
        default_factory=list, description="User-assigned managed identities' (an Azure resource's, not in Graph)")
    disabledByMicrosoftStatus: str | None = Field(
        None, description="NotDisabled, DisabledDueToViolationOfServicesAgreement (Microsoft's verdict), or null")


class RoleMember(GraphModel):
    id: str
    type: Literal["user", "servicePrincipal", "group", "unknown"] = "servicePrincipal"


class DirectoryRole(GraphModel):
    id: str
    displayName: str
    roleTemplateId: str
    members: list[RoleMember] = Field(default_factory=list)


class AzureRoleAssignment(GraphModel):
    """An Azure role assignment as Azure Resource Graph's `authorizationresources` lists it, with its role's name."""

    id: str = Field(description="The assignment's resource id")
    principalId: str = Field(description="Object id: a service principal's matches ServicePrincipal.id")
    principalType: str = "ServicePrincipal"  # ServicePrincipal, User, Group, ForeignGroup, Device
    roleDefinitionId: str = Field(description="The role definition's GUID")
    roleName: str = Field("", description="Empty when the definition is out of the scopes read")
    scope: str = Field(description="/, a management group, a subscription, a resource group or a resource")


class RoleAssignment(GraphModel):
    """An Entra role assignment (roleManagement/directory/roleAssignments) to a user, group or service principal:
    tenant-wide when directoryScopeId is "/", else scoped to one application or service principal
    ("/<object id>") or to an administrative unit ("/administrativeUnits/<id>")."""

    id: str
    roleDefinitionId: str = Field(description="For built-in roles, the role template id")
    principalId: str
    directoryScopeId: str = "/"
    principal: Owner | None = Field(default=None, description="The assignee, expanded: its type and names")


class DirectorySnapshot(GraphModel):
    tenantId: str
    exportedAt: datetime
    applications: list[Application] = Field(default_factory=list)
    servicePrincipals: list[ServicePrincipal] = Field(default_factory=list)
    directoryRoles: list[DirectoryRole] = Field(default_factory=list)
    azureRoleAssignments: list[AzureRoleAssignment] = Field(
        default_factory=list, description="From Azure Resource Graph, when AZURE_RBAC_SCOPES names scopes to read")
    roleAssignments: list[RoleAssignment] = Field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> DirectorySnapshot:
        return cls.model_validate_json(path.read_text(encoding="utf-8"))

    def save(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=1, exclude_none=True), encoding="utf-8")
