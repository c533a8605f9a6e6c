"""Control paths to tier 0: who can take over a tier-0 workload identity, in at most three steps.

A step is one way a principal gets control of a service principal, that is, can add a credential to it (or make
itself an owner, who then can) and sign in as it:

- it owns the application or the service principal. A user owner adds a credential in the portal; a service
  principal owner acts on what it owns only with Application.ReadWrite.OwnedBy or Application.ReadWrite.All;
- it holds an Entra role that can add credentials or owners to applications (the tier model's `appControl`:
  Application Administrator, Cloud Application Administrator, Hybrid Identity Administrator, Global
  Administrator...), tenant-wide or scoped to that application or service principal. Administrative units hold
  users, groups and devices, not applications, so a role scoped to one is no step here;
- it is a service principal holding a Microsoft Graph permission that leads there (`TAKEOVER_PERMISSIONS`).

Paths grow backwards from each tier-0 service principal (managed identities aside: nobody can add a credential
to one) through the service principals on them. Users and groups end a path, as do managed identities: the
directory snapshot does not say who controls them. No principal appears twice in a path.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from shared.directory.context import DirectoryIndex
from shared.directory.model import Owner, ServicePrincipal
from shared.directory.privilege import principal_tier, tier0_reasons
from shared.directory.tiers.lookup import tier_model

MAX_STEPS = 3
TAKEOVER_PERMISSIONS = {
    "Application.ReadWrite.All": "can add a credential to any application",
    "AppRoleAssignment.ReadWrite.All": "can grant itself Application.ReadWrite.All",
    "RoleManagement.ReadWrite.Directory": "can make itself Application Administrator",
}
OWNER_PERMISSIONS = ("Application.ReadWrite.OwnedBy", "Application.ReadWrite.All")
_LABELS = {"user": "user", "servicePrincipal": "service principal", "group": "group"}


@dataclass(frozen=True)
class Principal:
    id: str
    type: str  # user, servicePrincipal, group, unknown
    name: str

    @property
    def text(self) -> str:
        return f"{_LABELS.get(self.type, 'principal')} {self.name}"


@dataclass(frozen=True)
class Step:
    """`controller` can take over the principal before it in the path, in the ways `how` lists."""

    controller: Principal
    how: tuple[str, ...]

    @property
    def text(self) -> str:
        return f"{self.controller.text} {' and '.join(self.how)}"


@dataclass(frozen=True)
class ControlPath:
    target: ServicePrincipal
    steps: tuple[Step, ...]  # steps[0] controls the target, steps[1] controls steps[0]'s principal, ...

    @property
    def origin(self) -> Principal:
        return self.steps[-1].controller


@dataclass(frozen=True)
class _Grant:
    principal: Principal
    role: str
    scope: str  # "/" tenant-wide, "/<object id>", "/administrativeUnits/<id>"


class ControlGraph:
    """Who controls whom in one directory snapshot."""

    def __init__(self, index: DirectoryIndex) -> None:
        self.index = index
        self._grants = _grants(index)
        self._takeovers = [(Principal(sp.id, "servicePrincipal", sp.displayName),
                            f"holds {a.permission} ({TAKEOVER_PERMISSIONS[a.permission]})")
                           for sp in index.snapshot.servicePrincipals for a in sp.appRoleAssignments
                           if a.permission in TAKEOVER_PERMISSIONS]
        self._controllers: dict[str, list[Step]] = {}
        self._tier0: dict[str, bool] = {}

    def tier0_targets(self) -> list[ServicePrincipal]:
        return [sp for sp in self.index.snapshot.servicePrincipals
                if sp.servicePrincipalType != "ManagedIdentity" and principal_tier(self.index.holdings(sp)) == 0]

    def target_text(self, sp: ServicePrincipal) -> str:
        return f"{sp.displayName} (tier 0: holds {', '.join(tier0_reasons(self.index.holdings(sp)))})"

    def paths(self, target: ServicePrincipal) -> Iterator[ControlPath]:
        """Every path of at most MAX_STEPS steps, shortest first for each first step."""
        yield from (ControlPath(target, steps) for steps in self._walk(target, (), {target.id}))

    def is_tier0(self, principal: Principal) -> bool:
        """A service principal by what it holds; a user or group by a tier-0 role it holds tenant-wide."""
        if principal.id not in self._tier0:
            self._tier0[principal.id] = self._judge_tier0(principal)
        return self._tier0[principal.id]

    def _judge_tier0(self, principal: Principal) -> bool:
        if principal.type == "servicePrincipal":
            sp = self.index.principal(principal.id)
            return sp is not None and principal_tier(self.index.holdings(sp)) == 0
        return any(grant.principal.id == principal.id and grant.scope == "/"
                   and tier_model().entra_role(grant.role) == 0 for grant in self._grants)

    def controllers(self, sp: ServicePrincipal) -> list[Step]:
        """The principals that can take over `sp`, one step each, in a stable order."""
        if sp.id not in self._controllers:
            self._controllers[sp.id] = self._find_controllers(sp)
        return self._controllers[sp.id]

    def _find_controllers(self, sp: ServicePrincipal) -> list[Step]:
        ways: dict[Principal, list[str]] = {}
        app = self.index.application_of(sp)
        for holder, owners in (("application", app.owners if app else []), ("service principal", sp.owners)):
            for owner in owners:
                principal = Principal(owner.id, owner.type, owner.userPrincipalName or owner.displayName or owner.id)
                how = f"owns {sp.displayName}'s {holder}"
                if owner.type == "servicePrincipal":
                    held = self._owner_permission(owner.id)
                    if held is None:
                        continue  # an application cannot use what it owns without one of OWNER_PERMISSIONS
                    how += f" and holds {held}"
                ways.setdefault(principal, []).append(how)
        control_roles = tier_model().app_control_roles()
        for grant in self._grants:
            role = control_roles.get(grant.role.casefold())
            scoped_here = grant.scope.strip("/") in {sp.id, app.id if app else sp.id}
            if role is None or not (grant.scope == "/" or scoped_here):
                continue
            where = "tenant-wide" if grant.scope == "/" else f"scoped to {sp.displayName}"
            ways.setdefault(grant.principal, []).append(f"holds {role.name} {where}")
        for principal, how in self._takeovers:
            if principal.id != sp.id:
                ways.setdefault(principal, []).append(how)
        return [Step(principal, tuple(dict.fromkeys(how))) for principal, how in ways.items()]

    def _walk(self, sp: ServicePrincipal, steps: tuple[Step, ...], seen: set[str]) -> Iterator[tuple[Step, ...]]:
        for step in self.controllers(sp):
            if step.controller.id in seen:
                continue
            path = (*steps, step)
            yield path
            controller = self.index.principal(step.controller.id)
            if len(path) < MAX_STEPS and step.controller.type == "servicePrincipal" and controller is not None \
                    and controller.servicePrincipalType != "ManagedIdentity":
                yield from self._walk(controller, path, seen | {step.controller.id})

    def _owner_permission(self, owner_id: str) -> str | None:
        owner = self.index.principal(owner_id)
        held = {a.permission for a in owner.appRoleAssignments} if owner is not None else set()
        return next((permission for permission in OWNER_PERMISSIONS if permission in held), None)


def path_text(graph: ControlGraph, path: ControlPath) -> str:
    """"tenant-automation (tier 0: holds ...) <- service principal deploy-bot owns tenant-automation's application
    and holds Application.ReadWrite.OwnedBy <- user bob@contoso.com owns deploy-bot's application"."""
    return " <- ".join([graph.target_text(path.target), *(step.text for step in path.steps)])


def _grants(index: DirectoryIndex) -> list[_Grant]:
    """Role assignments with their scope, and the tenant-wide role members the snapshot lists, once each."""
    snapshot = index.snapshot
    grants: dict[tuple[str, str, str], _Grant] = {}
    for assignment in snapshot.roleAssignments:
        principal = _principal(index, assignment.principalId, assignment.principal)
        key = (principal.id, assignment.roleDefinitionId.casefold(), assignment.directoryScopeId)
        grants.setdefault(key, _Grant(principal, assignment.roleDefinitionId, assignment.directoryScopeId))
    for role in snapshot.directoryRoles:
        for member in role.members:
            principal = _principal(index, member.id, None, member.type)
            grants.setdefault((member.id, role.roleTemplateId.casefold(), "/"),
                              _Grant(principal, role.roleTemplateId, "/"))
    return list(grants.values())


def _principal(index: DirectoryIndex, object_id: str, expanded: Owner | None, kind: str = "unknown") -> Principal:
    sp = index.principal(object_id)
    if sp is not None and sp.id == object_id:
        return Principal(sp.id, "servicePrincipal", sp.displayName)
    if expanded is not None:
        return Principal(object_id, expanded.type, expanded.userPrincipalName or expanded.displayName or object_id)
    return Principal(object_id, kind, object_id)
