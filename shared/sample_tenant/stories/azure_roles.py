"""Azure privileges: the role assignments the Azure-role posture checks (shared/posture/checks/) must find.

The sample tenant's snapshot carries the assignments as Azure Resource Graph would list them for its one
subscription: a deployment pipeline that is Owner of the subscription, and a Function App whose managed
identity's host seven principals can change.
"""

from __future__ import annotations

from shared.directory.model import AzureRoleAssignment
from shared.sample_tenant.stories import Scenario, Story, StoryContext

OWNER = ("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner")
CONTRIBUTOR = ("b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor")
WEBSITE_CONTRIBUTOR = ("de139f84-1756-47ae-9be6-808fbbe84772", "Website Contributor")


def _assignment(ctx: StoryContext, principal: str, principal_type: str, role: tuple[str, str],
                scope: str) -> AzureRoleAssignment:
    name = ctx.factory.guid()
    return AzureRoleAssignment(id=f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}",
                               principalId=principal, principalType=principal_type, roleDefinitionId=role[0],
                               roleName=role[1], scope=scope)


def pipeline_owns_the_subscription(ctx: StoryContext) -> Scenario:
    platform = ctx.workloads["deploy-platform"]
    subscription = f"/subscriptions/{ctx.factory.subscription_id}"
    platform.azure_roles.append(_assignment(ctx, platform.sp.id, "ServicePrincipal", OWNER, subscription))
    return Scenario("pipeline-owns-the-subscription", "deploy-platform is Owner of the subscription",
                    "The platform pipeline was made Owner of the whole subscription to get going and kept it: its "
                    "client secret can grant anyone any access there.",
                    ("privileged_azure_role",), platform.sp.id, platform.name, ctx.at(0, 0))


def function_host_writable_by_many(ctx: StoryContext) -> Scenario:
    payroll = ctx.workloads["app-payroll-export"]
    host = payroll.associated_resource
    group = host.split("/providers/")[0]
    payroll.azure_roles += [_assignment(ctx, user.id, "User", CONTRIBUTOR, group) for user in ctx.factory.users[:4]]
    payroll.azure_roles += [_assignment(ctx, ctx.factory.guid(), "Group", WEBSITE_CONTRIBUTOR, host)
                            for _ in range(2)]
    payroll.azure_roles.append(_assignment(ctx, ctx.workloads["deploy-platform"].sp.id, "ServicePrincipal",
                                           CONTRIBUTOR, group))
    return Scenario("function-host-writable-by-many", "Seven principals can change app-payroll-export's Function App",
                    "Four developers and the platform pipeline are Contributors on rg-app-payroll-export and two "
                    "groups are Website Contributors on the site: each can deploy code that runs as the Function "
                    "App's managed identity.", ("managed_identity_host_writable_by_many",), payroll.sp.id,
                    payroll.name, ctx.at(0, 0))


STORIES: tuple[Story, ...] = (pipeline_owns_the_subscription, function_host_writable_by_many)

# Workloads the stories act on: (kind, name, certificate?)
STORY_WORKLOADS = (("pipeline", "deploy-platform", False), ("managed", "app-payroll-export", False))
