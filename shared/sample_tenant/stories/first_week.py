"""The first week's stories: expired and guessed secrets, a backdoor credential, a pipeline that
escalates, automation that makes a Global Administrator, and a batch identity harvesting secrets."""

from __future__ import annotations

import json
from datetime import timedelta

from shared.sample_tenant import records
from shared.sample_tenant.stories import ATTACKER_IP, Scenario, Story, StoryContext


def expired_secret(ctx: StoryContext) -> Scenario:
    job = ctx.workloads["nightly-export"]
    secret = job.app.passwordCredentials[0]
    secret.endDateTime = ctx.at(3, 0)
    return Scenario("expired-secret", "A nightly job keeps using its expired secret",
                    "nightly-export's only client secret expired three days ago; every run since fails with "
                    "AADSTS7000222 and nobody has rotated it.",
                    ("sp_signin_failures",), job.sp.id, job.name, secret.endDateTime)


def secret_guessing(ctx: StoryContext) -> Scenario:
    payroll = ctx.workloads["payroll-sync"]
    start = ctx.at(2, 3)
    for attempt in range(12):
        ctx.activity.app_sign_in(payroll, start + timedelta(minutes=2 * attempt), ATTACKER_IP, "7000215",
                                 payroll.credential, key_id="")
    return Scenario("secret-guessing", "Wrong secrets tried against payroll-sync from a Tor exit node",
                    f"Twelve sign-ins with invalid client secrets from {ATTACKER_IP} in 24 minutes.",
                    ("sp_signin_failures", "sp_bad_credential_then_success"), payroll.sp.id, payroll.name, start)


def backdoor_credential(ctx: StoryContext) -> Scenario:
    payroll = ctx.workloads["payroll-sync"]
    moment = ctx.at(2, 14)
    backdoor = ctx.factory.secret("sync-2026", 0, 730)
    backdoor.startDateTime = moment
    backdoor.endDateTime = moment + timedelta(days=730)
    previous = [records.key_description(c.keyId, "Password", "Verify", c.displayName or "")
                for c in payroll.app.passwordCredentials]
    payroll.app.passwordCredentials.append(backdoor)
    target = {"id": payroll.app.id, "displayName": payroll.name, "type": "Application", "modifiedProperties": [
        {"displayName": "KeyDescription", "oldValue": json.dumps(previous), "newValue": json.dumps(
            [*previous, records.key_description(backdoor.keyId, "Password", "Verify", "sync-2026")])}]}
    ctx.activity.book.add("audit", moment, records.audit_row(
        ctx.factory.tenant_id, moment, record_id=f"Directory_{ctx.factory.guid()}",
        operation="Update application – Certificates and secrets management ", category="ApplicationManagement",
        initiated_by={"user": {"id": ctx.factory.guid(), "userPrincipalName": "mallory@contoso.com",
                               "ipAddress": ATTACKER_IP}},
        targets=[target]))
    for minutes in (25, 70, 140):
        ctx.activity.application_session(payroll, moment + timedelta(minutes=minutes), ATTACKER_IP, backdoor)
    return Scenario("backdoor-credential", "A secret added to payroll-sync while it was in daily use",
                    "mallory@contoso.com added the secret 'sync-2026' to the payroll-sync application and signed "
                    f"in with it from {ATTACKER_IP} within the hour.",
                    ("credential_added_to_active_identity", "new_credential_added",
                     "credential_change_then_new_signin_source", "workload_signin_new_network"), payroll.sp.id,
                    payroll.name, moment)


def pipeline_escalation(ctx: StoryContext) -> Scenario:
    pipeline = ctx.workloads["deploy-billing"]
    moment = ctx.at(1, 2, 10)
    token = ctx.activity.app_sign_in(pipeline, moment, ATTACKER_IP, "0", pipeline.credential)
    for minutes, operation in ((2, "Microsoft.Authorization/roleAssignments/write"),
                               (5, "Microsoft.Storage/storageAccounts/listKeys/action")):
        ctx.activity.deploy(pipeline, moment + timedelta(minutes=minutes), operation, token, ATTACKER_IP)
    return Scenario("pipeline-escalation", "The billing pipeline's principal grants itself access and lists keys",
                    f"deploy-billing signed in from {ATTACKER_IP} at 02:10, wrote a role assignment and listed "
                    "storage account keys: not what a deployment does.",
                    ("sp_sensitive_azure_operations", "workload_signin_new_network"), pipeline.sp.id, pipeline.name,
                    moment)


def automation_role_change(ctx: StoryContext) -> Scenario:
    automation = ctx.workloads["tenant-automation"]
    moment = ctx.at(1, 22)
    ctx.activity.app_sign_in(automation, moment - timedelta(minutes=3), automation.home_ip, "0",
                             automation.credential)
    ctx.activity.directory_change(automation, moment, "Add member to role", [
        {"id": ctx.factory.guid(), "displayName": "eve@contoso.com", "type": "User"},
        {"id": "62e90394-69f5-4237-9190-012177145e10", "displayName": "Global Administrator", "type": "Role"}])
    return Scenario("automation-role-change", "tenant-automation made a user Global Administrator",
                    "The automation principal, which holds RoleManagement.ReadWrite.Directory, added eve@contoso.com "
                    "to Global Administrator; the audit log alone does not say from where.",
                    ("sp_directory_changes",), automation.sp.id, automation.name, moment)


def secret_harvest(ctx: StoryContext) -> Scenario:
    batch = ctx.workloads["uami-batch"]
    moment = ctx.at(1, 4)
    jumpbox = batch.associated_resource.replace("vm-uami-batch", "vm-legacy-jumpbox")
    stolen = ["db-password", "api-key", "storage-conn", "smtp-password", "signing-key", "service-bus",
              "redis-key", "partner-token", "sql-admin", "backup-key"]
    vault = (f"/subscriptions/{ctx.factory.subscription_id}/resourceGroups/rg-finance"
             "/providers/Microsoft.KeyVault/vaults/kv-finance")
    ctx.activity.managed_identity_session(batch, moment, associated=jumpbox, secrets=stolen, vault_id=vault)
    return Scenario("secret-harvest", "A batch identity used from a jump box reads ten finance secrets",
                    "uami-batch normally only reads blobs; from vm-legacy-jumpbox it listed and read ten secrets "
                    "in kv-finance.", ("mi_keyvault_secret_reads", "mi_used_from_new_resource",
                                       "keyvault_secret_reads_anomaly"), batch.sp.id, batch.name, moment)


STORIES: tuple[Story, ...] = (
    expired_secret, secret_guessing, backdoor_credential, pipeline_escalation, automation_role_change,
    secret_harvest,
)

# Workloads the stories act on: (kind, name, certificate?)
STORY_WORKLOADS = (
    ("job", "nightly-export", False), ("job", "payroll-sync", False), ("pipeline", "deploy-billing", False),
    ("job", "tenant-automation", True), ("automation", "hr-sync", True), ("user-assigned", "uami-batch", False),
)
