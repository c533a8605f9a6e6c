"""Credential hygiene: the shapes the posture checks (shared/posture/checks/) must find.

Three stories plant their own shapes: a pipeline secret about to expire while in daily use, a
forgotten integration that no longer signs in but keeps a valid certificate, and a SaaS vendor's
multi-tenant application holding Mail.Send here. The other stories also leave credentials
behind (a two-year backdoor secret, a key on a service principal object, a secret a privileged
identity should not hold); `LEFT_BEHIND` labels what the posture checks find on those identities.

The sample tenant's logs cover three weeks, less than the 30- and 90-day horizons of the unused and
dormant checks, so those findings honestly say "usage unknown: logs start at ..." (Informational).
"""

from __future__ import annotations

from datetime import timedelta

from shared.sample_tenant.identities import Workload
from shared.sample_tenant.stories import Scenario, Story, StoryContext

PARTNER_TENANT = "2b8f4c1e-6a3d-4e9f-b7c2-5d1a8e3f9c04"  # a SaaS vendor's tenant


def secret_expiring_in_use(ctx: StoryContext) -> Scenario:
    payments = ctx.workloads["deploy-payments"]
    secret = payments.app.passwordCredentials[0]
    secret.endDateTime = ctx.at(-12, 18)  # twelve days from today, a 180-day secret
    secret.startDateTime = secret.endDateTime - timedelta(days=180)
    return Scenario("secret-expiring-in-use", "deploy-payments' only secret expires in 12 days",
                    "The payments pipeline signs in several times a day with its only client secret, which ends in 12 "
                    "days; nobody has added its successor, so deployments will start failing then.",
                    ("expiring_credentials",), payments.sp.id, payments.name, secret.endDateTime)


def forgotten_integration(ctx: StoryContext) -> Scenario:
    connector = ctx.workloads["legacy-crm-connector"]
    certificate = connector.app.keyCredentials[0]
    certificate.startDateTime = ctx.at(200, 10)
    certificate.endDateTime = certificate.startDateTime + timedelta(days=365)
    ctx.never_signs_in(connector)  # the CRM it synced was switched off
    return Scenario("forgotten-integration", "A retired CRM connector keeps a valid certificate",
                    "legacy-crm-connector has not signed in since its CRM was switched off, yet its certificate is "
                    "valid for another 165 days. The logs reach back three weeks only, so the checks call it "
                    "dormant and unused with 'usage unknown' rather than guess.",
                    ("dormant_identities", "unused_credentials"), connector.sp.id, connector.name,
                    certificate.startDateTime)


def vendor_app_with_mail_send(ctx: StoryContext) -> Scenario:
    vendor = ctx.workloads["mailer-saas"]
    vendor.app = None  # registered in the vendor's tenant: only its service principal lives here
    vendor.sp.appOwnerOrganizationId = PARTNER_TENANT
    graph = next(a.resourceId for w in ctx.workloads.values() for a in w.sp.appRoleAssignments
                 if a.resourceDisplayName == "Microsoft Graph")
    for permission in ("Mail.Send", "User.Read.All"):
        ctx.factory.graph_role(vendor.sp, permission, graph)
    everyday = ctx.activity.day

    def vendor_day(workload: Workload, day_start) -> None:
        if workload is not vendor:
            everyday(workload, day_start)
            return
        for hour in (7, 13, 19):  # the vendor's service sends the day's mail three times a day
            moment = day_start + timedelta(hours=hour, minutes=ctx.factory.rng.randint(0, 59))
            if moment < ctx.now:
                ctx.activity.app_sign_in(vendor, moment, vendor.home_ip, "0", None)

    ctx.activity.day = vendor_day  # type: ignore[method-assign]
    return Scenario("vendor-app-with-mail-send", "A SaaS vendor's application can send mail as anyone",
                    f"mailer-saas, registered in the vendor's tenant {PARTNER_TENANT}, was consented Mail.Send as an "
                    "application permission: whoever holds its credentials over there can mail as any user here.",
                    ("foreign_app_with_privileged_permissions",), vendor.sp.id, vendor.name, ctx.at(0, 0))


# What the other stories leave behind, by identity: (title, posture check file names).
LEFT_BEHIND: dict[str, tuple[str, tuple[str, ...]]] = {
    "nightly-export": ("The expired secret is still on nightly-export", ("expired_credentials",)),
    "payroll-sync": ("The two-year backdoor secret sits beside payroll-sync's own",
                     ("credential_lifetime_over_policy", "multiple_active_secrets")),
    "hr-sync": ("hr-sync, with User.ReadWrite.All, still holds a two-year secret and is owned by users",
                ("credential_lifetime_over_policy", "privileged_identity_with_secrets",
                 "privileged_identity_owned_by_users")),
    "report-archiver": ("A two-year secret hidden on report-archiver's service principal object",
                        ("credential_lifetime_over_policy", "credentials_on_service_principal")),
    "legacy-reports": ("legacy-reports now holds its old secret and a one-year one",
                       ("credential_lifetime_over_policy", "multiple_active_secrets")),
    "reports-portal": ("reports-portal holds its old secret and a two-year one",
                       ("credential_lifetime_over_policy", "multiple_active_secrets")),
    "tenant-automation": ("Users, a guest among them, own the Global Administrator automation",
                          ("privileged_identity_owned_by_users",)),
}


def _left_behind(name: str) -> Story:
    title, checks = LEFT_BEHIND[name]

    def story(ctx: StoryContext) -> Scenario:
        workload = ctx.workloads[name]
        return Scenario(f"left-behind-{name}", title, f"The credential posture of {name} after the other stories: "
                        f"{title[0].lower()}{title[1:]}.", checks, workload.sp.id, workload.name, ctx.at(0, 0))

    story.__name__ = f"left_behind_{name.replace('-', '_')}"
    return story


STORIES: tuple[Story, ...] = (
    secret_expiring_in_use, forgotten_integration, vendor_app_with_mail_send,
    *(_left_behind(name) for name in LEFT_BEHIND),
)

# Workloads the stories act on: (kind, name, certificate?)
STORY_WORKLOADS = (
    ("pipeline", "deploy-payments", False), ("job", "legacy-crm-connector", True), ("job", "mailer-saas", False),
)
