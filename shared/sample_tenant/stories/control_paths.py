"""Control paths to tier 0: ways to take over the tenant's most privileged workload identities without holding
their permissions, which the control-path posture check (shared/posture/control_paths.py) spells out.

A release pipeline's application holds Application.ReadWrite.OwnedBy and was made an owner of tenant-automation's
application, so whoever controls release-bot (its user owners among them) can add a credential to
tenant-automation; and a user holds Cloud Application Administrator scoped to hr-sync's application only.
"""

from __future__ import annotations

from shared.directory.model import Owner, RoleAssignment
from shared.sample_tenant.stories import Scenario, StoryContext

CLOUD_APPLICATION_ADMINISTRATOR = "158c047a-c907-4556-b7ef-446551a6b5f7"


def release_bot_owns_automation(ctx: StoryContext) -> Scenario:
    automation, release = ctx.workloads["tenant-automation"], ctx.workloads["release-bot"]
    graph = next(a.resourceId for a in automation.sp.appRoleAssignments if a.resourceDisplayName == "Microsoft Graph")
    ctx.factory.graph_role(release.sp, "Application.ReadWrite.OwnedBy", graph)
    automation.app.owners.append(Owner(id=release.sp.id, type="servicePrincipal", displayName=release.name))
    owners = " and ".join(owner.userPrincipalName or owner.id for owner in release.app.owners)
    return Scenario("release-bot-owns-automation", "A release pipeline's application owns tenant-automation",
                    "release-bot holds Application.ReadWrite.OwnedBy and is an owner of tenant-automation's "
                    f"application: it can add a credential to tenant-automation, and so can {owners}, who own "
                    "release-bot's application.",
                    ("control_paths_to_tier0",), automation.sp.id, automation.name, ctx.at(0, 0))


def release_bot_is_tier0(ctx: StoryContext) -> Scenario:
    release = ctx.workloads["release-bot"]
    return Scenario("release-bot-is-tier0", "release-bot is tier 0 itself and owned by users",
                    "Application.ReadWrite.OwnedBy is a tier-0 permission: release-bot's user owners and "
                    "tenant-automation (RoleManagement.ReadWrite.Directory) can each take it over.",
                    ("control_paths_to_tier0", "privileged_identity_owned_by_users"), release.sp.id, release.name,
                    ctx.at(0, 0))


def scoped_admin_of_hr_sync(ctx: StoryContext) -> Scenario:
    hr = ctx.workloads["hr-sync"]
    erin = next(user for user in ctx.factory.users if user.userPrincipalName == "erin@contoso.com")
    ctx.role_assignments.append(RoleAssignment(
        id=ctx.factory.guid(), roleDefinitionId=CLOUD_APPLICATION_ADMINISTRATOR, principalId=erin.id,
        directoryScopeId=f"/{hr.app.id}", principal=erin))
    return Scenario("scoped-admin-of-hr-sync", "A Cloud Application Administrator of hr-sync alone",
                    "erin@contoso.com holds Cloud Application Administrator scoped to hr-sync's application: enough "
                    "to add a secret to hr-sync, which holds User.ReadWrite.All (tier 0). hr-sync's owners and "
                    "tenant-automation can take it over too.",
                    ("control_paths_to_tier0",), hr.sp.id, hr.name, ctx.at(0, 0))


STORIES = (release_bot_owns_automation, release_bot_is_tier0, scoped_admin_of_hr_sync)
STORY_WORKLOADS = (("pipeline", "release-bot", True),)
