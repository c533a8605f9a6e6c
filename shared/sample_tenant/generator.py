"""Generate the sample tenant: a directory snapshot, every log table, and a manifest of the
injected stories with the detection each must trigger. The same seed gives the same tenant."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.directory.model import DirectoryRole, DirectorySnapshot, RoleAssignment, RoleMember, ServicePrincipal
from shared.sample_tenant.behaviour import Activity
from shared.sample_tenant.identities import (
    ARM_APP_ID,
    GRAPH_APP_ID,
    KEYVAULT_APP_ID,
    KINDS,
    MICROSOFT_TENANT,
    WORDS,
    IdentityFactory,
    Workload,
)
from shared.sample_tenant.logbook import LogBook
from shared.sample_tenant.stories import Scenario, StoryContext, all_stories

SAMPLE_NOW = datetime(2026, 3, 15, 6, 0, tzinfo=UTC)
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
MIN_SERVICE_PRINCIPALS = len(all_stories()[1])


def generate(out: Path, *, seed: int = 7, service_principals: int = 40, days: int = 21, now: datetime = SAMPLE_NOW,
             sign_ins_per_day: int | None = None, progress: Callable[[int, int], None] | None = None) -> dict:
    """Write `out/directory.json`, `out/logs/` and `out/manifest.json`; returns the manifest.

    `sign_ins_per_day` sets how often each background workload (not a story's) signs in a day, give or take one;
    None keeps each one's habit (2 to 8). Raising it makes a big tenant for the benchmark without more principals.
    """
    if service_principals < MIN_SERVICE_PRINCIPALS:
        raise ValueError(f"the sample tenant needs at least {MIN_SERVICE_PRINCIPALS} service principals")
    if days < 8:
        raise ValueError("the sample tenant needs at least 8 days: a week of stories after a baseline")
    rng = random.Random(seed)
    tenant_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    subscription_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    factory = IdentityFactory(rng, tenant_id, now, subscription_id)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    book = LogBook(out / "logs", tenant_id, subscription_id)
    activity = Activity(factory, book, tenant_id, now)

    microsoft = _microsoft_principals(factory)
    workloads = _workloads(factory, service_principals, sign_ins_per_day)
    _grant_permissions(factory, workloads, microsoft[0])
    role_assignments: list[RoleAssignment] = []
    scenarios = [story(StoryContext(factory, activity, workloads, now, role_assignments))
                 for story in all_stories()[0]]

    start = (now - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    total_days = (now - start).days + 1
    for index in range(total_days):
        day_start = start + timedelta(days=index)
        for workload in workloads.values():
            activity.day(workload, day_start)
        book.flush_until(day_start + timedelta(days=1))
        if progress:
            progress(index + 1, total_days)
    book.flush()

    snapshot = _snapshot(tenant_id, now, workloads, microsoft, role_assignments)
    snapshot.save(out / "directory.json")
    manifest = _manifest(seed, now, days, service_principals, sign_ins_per_day, scenarios, book.counts)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, default=str), encoding="utf-8")
    return manifest


def _microsoft_principals(factory: IdentityFactory) -> list[ServicePrincipal]:
    names = ((GRAPH_APP_ID, "Microsoft Graph"), (ARM_APP_ID, "Windows Azure Service Management API"),
             (KEYVAULT_APP_ID, "Azure Key Vault"))
    return [ServicePrincipal(id=factory.guid(), appId=app_id, displayName=name, appOwnerOrganizationId=MICROSOFT_TENANT)
            for app_id, name in names]


def _workloads(factory: IdentityFactory, count: int, sign_ins_per_day: int | None) -> dict[str, Workload]:
    workloads: dict[str, Workload] = {}
    vaults = [f"/subscriptions/{factory.subscription_id}/resourceGroups/rg-{word}/providers/Microsoft.KeyVault/vaults"
              f"/kv-{word}" for word in WORDS[:5]]
    for kind, name, certificate in all_stories()[1]:
        workloads[name] = _workload(factory, kind, name, certificate, vault_id="")
    index = 0
    while len(workloads) < count:
        kind = KINDS[index % len(KINDS)]
        prefix = {"pipeline": "deploy", "job": "sync", "managed": "app", "user-assigned": "uami"}[kind]
        name = f"{prefix}-{WORDS[index % len(WORDS)]}" + (f"-{index // len(WORDS)}" if index >= len(WORDS) else "")
        if name not in workloads:
            workloads[name] = _workload(factory, kind, name, certificate=index % 3 == 0,
                                        vault_id=vaults[index % len(vaults)])
            if sign_ins_per_day is not None:
                workloads[name].sign_ins_per_day = sign_ins_per_day
        index += 1
    return workloads


def _workload(factory: IdentityFactory, kind: str, name: str, certificate: bool, vault_id: str) -> Workload:
    if kind in ("managed", "user-assigned"):
        workload = factory.managed_identity(kind, name, vault_id)
        if not vault_id:
            workload.resource, workload.resource_app_id = "Azure Storage", "e406a681-f3d4-42a8-90b6-c2b029497af1"
        return workload
    return factory.application(kind, name, certificate=certificate)


def _grant_permissions(factory: IdentityFactory, workloads: dict[str, Workload], graph: ServicePrincipal) -> None:
    grants = {"tenant-automation": ["RoleManagement.ReadWrite.Directory", "User.Read.All"],
              "hr-sync": ["User.ReadWrite.All"], "payroll-sync": ["User.Read.All", "Files.Read.All"],
              "nightly-export": ["Files.Read.All"], "mail-archiver": ["Mail.Read"]}
    for name, permissions in grants.items():
        for permission in permissions:
            factory.graph_role(workloads[name].sp, permission, graph.id)


def _snapshot(tenant_id: str, now: datetime, workloads: dict[str, Workload], microsoft: list[ServicePrincipal],
              role_assignments: list[RoleAssignment]) -> DirectorySnapshot:
    automation = workloads["tenant-automation"].sp
    role = DirectoryRole(id=str(uuid.uuid5(uuid.NAMESPACE_URL, tenant_id + "/roles/ga")),
                         displayName="Global Administrator", roleTemplateId=GLOBAL_ADMINISTRATOR,
                         members=[RoleMember(id=automation.id)])
    return DirectorySnapshot(
        tenantId=tenant_id, exportedAt=now,
        applications=[w.app for w in workloads.values() if w.app is not None],
        servicePrincipals=[*microsoft, *(w.sp for w in workloads.values())],
        directoryRoles=[role], azureRoleAssignments=[a for w in workloads.values() for a in w.azure_roles],
        roleAssignments=role_assignments)


def _manifest(seed: int, now: datetime, days: int, service_principals: int, sign_ins_per_day: int | None,
              scenarios: list[Scenario], counts: dict[str, int]) -> dict:
    return {"seed": seed, "now": now.isoformat(), "days": days, "servicePrincipals": service_principals,
            "signInsPerDay": sign_ins_per_day,
            "records": dict(counts), "scenarios": [asdict(scenario) for scenario in scenarios]}
