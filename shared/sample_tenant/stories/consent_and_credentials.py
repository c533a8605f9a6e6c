"""Stories of credentials, consent and permissions: a first key on a service principal, a dormant
application woken with a new secret, federated credentials on an application and on a managed
identity, a new owner of a privileged application, a permission grant that ends in an admin role,
and a consent followed by a credential."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from shared.directory.model import Owner, PasswordCredential
from shared.sample_tenant import records
from shared.sample_tenant.identities import GRAPH_APP_ID, Workload
from shared.sample_tenant.stories import ATTACKER_IP, Scenario, Story, StoryContext

MALLORY = {"user": {"id": "5f1c2b9e-7a44-4c61-9d2e-0b8a3e6f1d27", "userPrincipalName": "mallory@contoso.com",
                    "ipAddress": ATTACKER_IP}}
ADMIN = {"user": {"id": "0c8e4d7a-2b19-4f5e-8a63-9d1b7c2e4f80", "userPrincipalName": "admin@contoso.com",
                  "ipAddress": "20.61.14.9"}}
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITHUB_RUNNER_IP = "4.175.114.51"
PRIVILEGED_ROLE_ADMINISTRATOR = "e8611ab8-c189-46e8-94e1-60213ab1f814"


def _audit(ctx: StoryContext, moment: datetime, operation: str, category: str, initiated_by: dict,
           targets: list[dict]) -> None:
    ctx.activity.book.add("audit", moment, records.audit_row(
        ctx.factory.tenant_id, moment, record_id=f"Directory_{ctx.factory.guid()}", operation=operation,
        category=category, initiated_by=initiated_by, targets=targets))


def _keys(credentials: list[PasswordCredential]) -> list[str]:
    return [records.key_description(c.keyId, "Password", "Verify", c.displayName or "") for c in credentials]


def _quoted(value: str) -> str:
    """A modifiedProperties value as Entra writes a scalar: JSON text of a string."""
    return json.dumps(value)


def _federated_sign_in(ctx: StoryContext, workload: Workload, moment: datetime, ip: str) -> None:
    """A sign-in with a federated identity credential (behaviour's sign-ins only use secrets and certificates)."""
    ctx.activity.book.add("sp", moment, records.sign_in(
        ctx.factory.tenant_id, moment, sp_id=workload.sp.id, sp_name=workload.name, app_id=workload.sp.appId, ip=ip,
        result="0", resource="Azure Resource Manager", resource_id=workload.resource_app_id,
        credential_type="federatedIdentityCredential", token_id=ctx.factory.guid()[:22],
        request_id=ctx.factory.guid(), asn=8075))


def _federated_credential_write(ctx: StoryContext, identity: Workload, moment: datetime, name: str, issuer: str,
                                subject: str) -> None:
    """The Azure activity records of a federated credential written on a user-assigned managed identity: the
    request body (issuer, subject) is on the Start record, the outcome on the Success record."""
    resource = (f"{identity.associated_resource.split('/providers/')[0]}/providers/Microsoft.ManagedIdentity"
                f"/userAssignedIdentities/{identity.name}/federatedIdentityCredentials/{name}")
    operation = "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write"
    body = {"properties": {"issuer": issuer, "subject": subject, "audiences": ["api://AzureADTokenExchange"]}}
    for at, record in records.user_arm_write(ctx.factory.tenant_id, moment, upn="mallory@contoso.com", ip=ATTACKER_IP,
                                             operation=operation, resource_id=resource, body=body,
                                             correlation_id=ctx.factory.guid()):
        ctx.activity.book.add("activity", at, record)


def first_credential(ctx: StoryContext) -> Scenario:
    archiver = ctx.workloads["report-archiver"]
    moment = ctx.at(3, 16, 20)
    secret = ctx.factory.secret("backup", 0, 730)
    secret.startDateTime, secret.endDateTime = moment, moment + timedelta(days=730)
    archiver.sp.passwordCredentials.append(secret)
    _audit(ctx, moment, "Add service principal credentials", "ApplicationManagement", MALLORY, [
        {"id": archiver.sp.id, "displayName": archiver.name, "type": "ServicePrincipal", "modifiedProperties": [
            {"displayName": "KeyDescription", "oldValue": "[]", "newValue": json.dumps(_keys([secret]))},
            {"displayName": "Included Updated Properties", "oldValue": None, "newValue": _quoted("KeyDescription")}]}])
    return Scenario("first-credential", "A first secret on report-archiver's service principal object",
                    "mallory@contoso.com added the secret 'backup' to the service principal of report-archiver, which "
                    "held no credential of its own (its certificate is on the application): a key the App "
                    "registrations blade does not show.",
                    ("first_credential_added", "credential_added_to_active_identity"), archiver.sp.id, archiver.name,
                    moment)


def dormant_identity_woken(ctx: StoryContext) -> Scenario:
    legacy = ctx.workloads["legacy-reports"]
    moment = ctx.at(3, 10)
    wake = moment.replace(hour=0, minute=0) + timedelta(days=1)
    everyday = ctx.activity.day

    def quiet_until_woken(workload: Workload, day_start: datetime) -> None:
        if workload is legacy and day_start < wake:
            return  # nobody has used legacy-reports for weeks
        everyday(workload, day_start)

    ctx.activity.day = quiet_until_woken  # type: ignore[method-assign]
    previous = _keys(legacy.app.passwordCredentials)
    secret = ctx.factory.secret("reports-2026", 0, 365)
    secret.startDateTime, secret.endDateTime = moment, moment + timedelta(days=365)
    legacy.app.passwordCredentials.append(secret)
    _audit(ctx, moment, "Update application – Certificates and secrets management ", "ApplicationManagement", MALLORY, [
        {"id": legacy.app.id, "displayName": legacy.name, "type": "Application", "modifiedProperties": [
            {"displayName": "KeyDescription", "oldValue": json.dumps(previous),
             "newValue": json.dumps([*previous, *_keys([secret])])}]}])
    for minutes in (40, 95):
        ctx.activity.application_session(legacy, moment + timedelta(minutes=minutes), ATTACKER_IP, secret)
    return Scenario("dormant-identity-woken", "A forgotten application gets a new secret and signs in again",
                    "legacy-reports had not signed in for weeks; mallory@contoso.com added the secret 'reports-2026' "
                    f"and it signed in with it from {ATTACKER_IP} 40 minutes later.",
                    ("credential_added_to_dormant_identity", "new_credential_added"), legacy.sp.id, legacy.name,
                    moment)


def federated_credential_on_application(ctx: StoryContext) -> Scenario:
    web = ctx.workloads["deploy-web"]
    moment = ctx.at(4, 13, 5)
    subject = "repo:mallory-tools/runner:ref:refs/heads/main"
    credential = {"Audiences": ["api://AzureADTokenExchange"], "Description": None, "Id": ctx.factory.guid(),
                  "Issuer": GITHUB_ISSUER, "Name": "ci-runner", "Subject": subject}
    _audit(ctx, moment, "Update application", "ApplicationManagement", MALLORY, [
        {"id": web.app.id, "displayName": web.name, "type": "Application", "modifiedProperties": [
            {"displayName": "FederatedIdentityCredentials", "oldValue": "[]", "newValue": json.dumps([credential])},
            {"displayName": "Included Updated Properties", "oldValue": None,
             "newValue": _quoted("FederatedIdentityCredentials")}]}])
    for minutes in (12, 47):
        _federated_sign_in(ctx, web, moment + timedelta(minutes=minutes), GITHUB_RUNNER_IP)
    return Scenario("federated-credential-on-application", "A GitHub repository outside the company can sign in as "
                    "deploy-web", f"mallory@contoso.com let {GITHUB_ISSUER} tokens for '{subject}' sign in as the "
                    "deploy-web application; a workflow in that repository signed in 12 minutes later with a "
                    "federated credential, something deploy-web had never used.",
                    ("federated_credential_added_to_application", "credential_change_then_new_signin_source"),
                    web.sp.id, web.name, moment)


def federated_credential_on_managed_identity(ctx: StoryContext) -> Scenario:
    runner = ctx.workloads["uami-ci-runner"]
    moment = ctx.at(2, 19, 30)
    issuer = "https://oidc.prod-aks.example.net/6c1e2a40-2f1d-4f0e-9d7b-3a5e8c1b2d90/"
    subject = "system:serviceaccount:default:crypto-miner"
    _federated_credential_write(ctx, runner, moment, "aks-workload", issuer, subject)
    return Scenario("federated-credential-on-managed-identity", "A Kubernetes cluster elsewhere can act as "
                    "uami-ci-runner", f"mallory@contoso.com added a federated credential to the user-assigned "
                    f"identity uami-ci-runner trusting {issuer} for '{subject}': pods in that cluster can now use "
                    "every role the identity holds.",
                    ("federated_credential_added_to_managed_identity",), runner.sp.id, runner.name, moment)


def owner_of_privileged_application(ctx: StoryContext) -> Scenario:
    automation = ctx.workloads["tenant-automation"]
    moment = ctx.at(5, 9, 45)
    guest = Owner(id=ctx.factory.guid(), type="user", displayName="Partner (Fabrikam)",
                  userPrincipalName="partner_fabrikam.com#EXT#@contoso.onmicrosoft.com", mail="partner@fabrikam.com")
    automation.app.owners.append(guest)
    _audit(ctx, moment, "Add owner to application", "ApplicationManagement", MALLORY, [
        {"id": guest.id, "displayName": None, "type": "User", "userPrincipalName": guest.userPrincipalName,
         "modifiedProperties": [
             {"displayName": "Application.ObjectID", "oldValue": None, "newValue": _quoted(automation.app.id)},
             {"displayName": "Application.DisplayName", "oldValue": None, "newValue": _quoted(automation.name)},
             {"displayName": "Application.AppId", "oldValue": None, "newValue": _quoted(automation.app.appId)}]},
        {"id": automation.app.id, "displayName": automation.name, "type": "Application", "modifiedProperties": []}])
    return Scenario("owner-of-privileged-application", "A guest made owner of tenant-automation",
                    "mallory@contoso.com made a Fabrikam guest an owner of tenant-automation, which holds "
                    "RoleManagement.ReadWrite.Directory and Global Administrator: the guest can now add a secret and "
                    "act as it (High once the directory shows the permissions).",
                    ("owner_added_to_workload_identity",), automation.sp.id, automation.name, moment)


def permission_grant_to_admin_role(ctx: StoryContext) -> Scenario:
    bot = ctx.workloads["ops-bot"]
    granted = ctx.at(2, 9)
    _audit(ctx, granted, "Add app role assignment to service principal", "ApplicationManagement", MALLORY, [
        {"id": ctx.factory.guid(), "displayName": "Microsoft Graph", "type": "ServicePrincipal", "modifiedProperties": [
            {"displayName": "AppRole.Id", "oldValue": None,
             "newValue": _quoted("9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8")},
            {"displayName": "AppRole.Value", "oldValue": None,
             "newValue": _quoted("RoleManagement.ReadWrite.Directory")},
            {"displayName": "AppRole.DisplayName", "oldValue": None,
             "newValue": _quoted("Read and write all directory RBAC settings")},
            {"displayName": "ServicePrincipal.ObjectID", "oldValue": None, "newValue": _quoted(bot.sp.id)},
            {"displayName": "ServicePrincipal.DisplayName", "oldValue": None, "newValue": _quoted(bot.name)},
            {"displayName": "ServicePrincipal.AppId", "oldValue": None, "newValue": _quoted(bot.sp.appId)},
            {"displayName": "TargetId.ServicePrincipalNames", "oldValue": None,
             "newValue": _quoted(f"{GRAPH_APP_ID};https://graph.microsoft.com")}]}])
    promoted = granted + timedelta(minutes=35)
    ctx.activity.app_sign_in(bot, promoted - timedelta(minutes=2), bot.home_ip, "0", bot.credential)
    ctx.activity.directory_change(bot, promoted, "Add member to role", [
        {"id": bot.sp.id, "displayName": bot.name, "type": "ServicePrincipal", "modifiedProperties": [
            {"displayName": "Role.ObjectID", "oldValue": None, "newValue": _quoted(ctx.factory.guid())},
            {"displayName": "Role.DisplayName", "oldValue": None, "newValue": _quoted("Privileged Role Administrator")},
            {"displayName": "Role.TemplateId", "oldValue": None, "newValue": _quoted(PRIVILEGED_ROLE_ADMINISTRATOR)},
            {"displayName": "Role.WellKnownObjectName", "oldValue": None,
             "newValue": _quoted("PrivilegedRoleAdministrator")}]}])
    return Scenario("permission-grant-to-admin-role", "ops-bot is granted RoleManagement.ReadWrite.Directory and "
                    "makes itself Privileged Role Administrator",
                    "mallory@contoso.com granted ops-bot the Graph application permission "
                    "RoleManagement.ReadWrite.Directory; 35 minutes later ops-bot added itself to Privileged Role "
                    "Administrator.",
                    ("privileged_permission_granted_to_service_principal", "service_principal_added_to_privileged_role",
                     "role_management_permission_then_role_assignment"), bot.sp.id, bot.name, promoted)


def consent_then_credential(ctx: StoryContext) -> Scenario:
    portal = ctx.workloads["reports-portal"]
    consented = ctx.at(5, 11)
    _audit(ctx, consented, "Consent to application", "ApplicationManagement", ADMIN, [
        {"id": portal.sp.id, "displayName": portal.name, "type": "ServicePrincipal", "modifiedProperties": [
            {"displayName": "ConsentContext.IsAdminConsent", "oldValue": None, "newValue": _quoted("True")},
            {"displayName": "ConsentContext.IsAppOnly", "oldValue": None, "newValue": _quoted("False")},
            {"displayName": "ConsentContext.OnBehalfOfAll", "oldValue": None, "newValue": _quoted("True")},
            {"displayName": "ConsentAction.Permissions", "oldValue": None, "newValue": _quoted(
                f"[] => [[Id: {ctx.factory.guid()}, ClientId: {portal.sp.id}, PrincipalId: , ResourceId: "
                f"{GRAPH_APP_ID}, ConsentType: AllPrincipals, Scope: Mail.Read Files.Read.All offline_access, "
                "CreatedDateTime: , LastModifiedDateTime ]]; ")},
            {"displayName": "TargetId.ServicePrincipalNames", "oldValue": None,
             "newValue": _quoted(portal.sp.appId)}]}])
    added = ctx.at(4, 15, 30)
    previous = _keys(portal.app.passwordCredentials)
    secret = ctx.factory.secret("export", 0, 730)
    secret.startDateTime, secret.endDateTime = added, added + timedelta(days=730)
    portal.app.passwordCredentials.append(secret)
    _audit(ctx, added, "Update application – Certificates and secrets management ", "ApplicationManagement", MALLORY, [
        {"id": portal.app.id, "displayName": portal.name, "type": "Application", "modifiedProperties": [
            {"displayName": "KeyDescription", "oldValue": json.dumps(previous),
             "newValue": json.dumps([*previous, *_keys([secret])])}]}])
    return Scenario("consent-then-credential", "Admin consent to reports-portal, then a secret added to it",
                    "admin@contoso.com consented to reports-portal for the whole tenant (Mail.Read, Files.Read.All); "
                    "a day later mallory@contoso.com added the secret 'export' to the application.",
                    ("admin_consent_then_credential_added", "new_credential_added",
                     "credential_added_to_active_identity"), portal.sp.id, portal.name, added)


STORIES: tuple[Story, ...] = (
    first_credential, dormant_identity_woken, federated_credential_on_application,
    federated_credential_on_managed_identity, owner_of_privileged_application, permission_grant_to_admin_role,
    consent_then_credential,
)

# Workloads the stories act on: (kind, name, certificate?)
STORY_WORKLOADS = (
    ("job", "report-archiver", True), ("job", "legacy-reports", False), ("pipeline", "deploy-web", False),
    ("user-assigned", "uami-ci-runner", False), ("job", "ops-bot", True), ("job", "reports-portal", False),
)
