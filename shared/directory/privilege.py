"""What a service principal holds and how privileged that makes it, in the tier model's terms: its
application permissions and Entra directory roles, each with its tier, and the principal's own tier (the most
privileged of them). A principal is *privileged* when it holds something of tier 0."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.directory.model import DirectoryRole, ServicePrincipal
from shared.directory.tiers.lookup import Tier, tier_model


@dataclass(frozen=True)
class Holding:
    """One application permission or directory role a principal holds."""

    kind: str  # "permission" or "directory role"
    name: str  # Application.ReadWrite.All, Global Administrator
    tier: Tier
    on: str | None = None  # the API a permission is on

    @property
    def text(self) -> str:
        return f"{self.name} on {self.on}" if self.kind == "permission" else f"directory role {self.name}"


def holdings(sp: ServicePrincipal, roles: list[DirectoryRole], api_of: Callable[[str], str | None]) -> list[Holding]:
    """Its application permissions (sorted) then its directory roles (sorted), each with its tier. `api_of` gives
    the appId of a resource service principal (by object id) when the directory has it."""
    model = tier_model()
    permissions = {Holding("permission", a.permission,
                           model.permission(a.permission, a.appRoleId, api_of(a.resourceId)), a.resourceDisplayName)
                   for a in sp.appRoleAssignments}
    directory_roles = {Holding("directory role", role.displayName, model.entra_role(role.roleTemplateId))
                       for role in roles}
    return [*sorted(permissions, key=lambda h: h.text), *sorted(directory_roles, key=lambda h: h.text)]


def principal_tier(held: list[Holding]) -> Tier:
    """The most privileged tier among what it holds; None when nothing it holds is rated."""
    tiers = [holding.tier for holding in held if holding.tier is not None]
    return min(tiers) if tiers else None


def tier0_reasons(held: list[Holding]) -> list[str]:
    """What makes it tier 0, as people read it ("RoleManagement.ReadWrite.Directory on Microsoft Graph")."""
    return [holding.text for holding in held if holding.tier == 0]
