"""What applications did with their Graph tokens (MicrosoftGraphActivityLogs): a mail archiver's token replayed to
read executives' mail and try for more, and the backdoored payroll-sync mapping the directory.

The Graph requests of these stories and of the baseline draw from the activity's own Graph stream, so the other
tables stay as they were.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from shared.sample_tenant.stories import ATTACKER_IP, Scenario, StoryContext

STOLEN_TOKEN_IP = "203.0.113.77"  # a rented VPS (AS64501, RO)
MAILBOX_PAGES = 30
PROBED = ("/applications", "/servicePrincipals", "/roleManagement/directory/roleAssignments", "/directoryRoles",
          "/groups", "/sites/root", "/users", "/identity/conditionalAccess/policies", "/domains",
          "/organization", "/oauth2PermissionGrants", "/policies/authorizationPolicy")


def mailbox_token_replay(ctx: StoryContext) -> Scenario:
    archiver = ctx.workloads["mail-archiver"]
    # Its habit: each run reads the newest page of a few mailboxes' inboxes.
    archiver.graph_reads = ("/users/{user}/mailFolders/inbox/messages?$top=50",)
    archiver.sign_ins_per_day = 4
    moment = ctx.at(1, 10, 0)
    token = ctx.activity.app_sign_in(archiver, moment, archiver.home_ip, "0", archiver.credential)
    inboxes = [f"/users/{user.id}/mailFolders/inbox/messages?$top=50" for user in ctx.factory.users[:3]]
    ctx.activity.graph_requests(archiver, moment + timedelta(seconds=2), archiver.home_ip, token, moment, inboxes)
    # The token leaked from the archiver's diagnostics upload; 38 minutes later it is used from a rented server.
    replay = moment + timedelta(minutes=38)
    pages = [f"/users/{user.id}/messages?$top=100&$skip={page * 100}" for user in ctx.factory.users
             for page in range(MAILBOX_PAGES)]
    ctx.activity.graph_requests(archiver, replay, STOLEN_TOKEN_IP, token, moment, pages,
                                step=timedelta(milliseconds=900))
    ctx.activity.graph_requests(archiver, replay + timedelta(minutes=5), STOLEN_TOKEN_IP, token, moment,
                                list(PROBED), status=403, step=timedelta(seconds=2))
    return Scenario("mailbox-token-replay", "mail-archiver's Graph token reads every mailbox from a rented server",
                    "mail-archiver (Mail.Read) signed in from its host at 10:00 and read three inboxes as on every "
                    f"run; from 10:38 the same token (SignInActivityId = the sign-in's UniqueTokenIdentifier) read "
                    f"{len(pages)} pages of {len(ctx.factory.users)} mailboxes from {STOLEN_TOKEN_IP}, then was "
                    f"refused {len(PROBED)} requests for applications, roles, groups and sites it has no permission "
                    "for.", ("graph_token_used_from_other_ip", "graph_calls_from_unseen_ip", "graph_bulk_data_reads",
                             "graph_permission_probing"), archiver.sp.id, archiver.name, replay)


def directory_recon(ctx: StoryContext) -> Scenario:
    payroll = ctx.workloads["payroll-sync"]
    moment = ctx.at(2, 15, 10)
    # Signs in with its newest credential: the backdoor secret the first week's story added at 14:00.
    token = ctx.activity.app_sign_in(payroll, moment, ATTACKER_IP, "0", payroll.credential)
    groups = [uuid.uuid5(uuid.NAMESPACE_URL, f"{ctx.factory.tenant_id}/groups/{index}") for index in range(80)]
    principals = [workload.sp for workload in ctx.workloads.values()]
    paths = ["/users?$top=999", "/groups?$top=999", "/servicePrincipals?$top=999", "/directoryRoles",
             *(f"/users/{user.id}/{relation}" for user in ctx.factory.users
               for relation in ("memberOf", "ownedObjects", "appRoleAssignments", "manager")),
             *(f"/groups/{group}/members" for group in groups),
             *(f"/servicePrincipals/{sp.id}/{relation}" for sp in principals for relation in ("owners",
                                                                                            "appRoleAssignments"))]
    ctx.activity.graph_requests(payroll, moment + timedelta(seconds=5), ATTACKER_IP, token, moment, paths,
                                step=timedelta(milliseconds=1500), user_agent="AzureHound/v2.1.0")
    return Scenario("directory-recon", "The backdoored payroll-sync maps the directory through Graph",
                    f"An hour after the backdoor secret was added, payroll-sync signed in with it from {ATTACKER_IP} "
                    f"and read {len(paths)} distinct directory paths in minutes (every user's groups and roles, "
                    f"{len(groups)} groups' members, every service principal's owners and permissions) with "
                    "AzureHound's user agent; on other days it reads a page of users and a few of them.",
                    ("graph_directory_enumeration",), payroll.sp.id, payroll.name, moment)


STORIES = (mailbox_token_replay, directory_recon)

# Workloads the stories act on: (kind, name, certificate?).
STORY_WORKLOADS: tuple[tuple[str, str, bool], ...] = (("job", "mail-archiver", True),)
