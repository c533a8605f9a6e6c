"""Application hygiene: the shapes the application checks (shared/posture/checks/) must find.

A secret planted on a Microsoft first-party service principal, a multi-tenant app registered before app instance
property lock was the default, and a web app whose redirect URIs kept a staging http address, a wildcard and a
retired azurewebsites.net site. The directory shows them; the logs need not.
"""

from __future__ import annotations

from shared.directory.model import RedirectUris
from shared.sample_tenant.identities import MICROSOFT_TENANT
from shared.sample_tenant.stories import Scenario, Story, StoryContext

EXCHANGE_ONLINE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"


def secret_on_first_party_app(ctx: StoryContext) -> Scenario:
    exchange = ctx.workloads["Office 365 Exchange Online"]
    exchange.app = None  # Microsoft's application: only its service principal lives here
    exchange.sp.appId, exchange.sp.appOwnerOrganizationId = EXCHANGE_ONLINE_APP_ID, MICROSOFT_TENANT
    exchange.sp.createdDateTime = None
    secret = ctx.factory.secret("backup", 3, 180)
    exchange.sp.passwordCredentials.append(secret)
    ctx.never_signs_in(exchange)  # Microsoft's service signs in in Microsoft's tenant, not in these logs
    return Scenario("secret-on-first-party-app", "A client secret on Office 365 Exchange Online's service principal",
                    "Someone added the client secret 'backup' to the service principal of Office 365 Exchange Online, "
                    "a Microsoft application that carries no credential of ours: with it they can sign in as "
                    "Exchange Online with whatever it is allowed here.",
                    ("credentials_on_first_party_service_principal",), exchange.sp.id, exchange.name,
                    secret.startDateTime or ctx.at(3, 0))


def multi_tenant_app_unlocked(ctx: StoryContext) -> Scenario:
    portal = ctx.workloads["partner-portal"]
    portal.app.signInAudience = "AzureADMultipleOrgs"
    return Scenario("multi-tenant-app-unlocked", "partner-portal is multi-tenant without app instance property lock",
                    "partner-portal, offered to partner tenants, was registered before property lock was the "
                    "default: an admin in any partner tenant can add a credential to its service principal there.",
                    ("multi_tenant_app_without_property_lock",), portal.sp.id, portal.name, ctx.at(0, 0))


def stale_redirect_uris(ctx: StoryContext) -> Scenario:
    reports = ctx.workloads["reports-web"]
    reports.app.web = RedirectUris(redirectUris=[
        "https://reports.contoso.com/signin-oidc", "http://reports-staging.contoso.com/signin-oidc",
        "https://contoso-reports-old.azurewebsites.net/signin-oidc"])
    reports.app.spa = RedirectUris(redirectUris=["https://*.contoso.com/reports"])
    return Scenario("stale-redirect-uris", "reports-web's redirect URIs: staging over http, a wildcard, a retired site",
                    "reports-web still lists http://reports-staging.contoso.com, a wildcard for every contoso.com "
                    "host and contoso-reports-old.azurewebsites.net, whose site was deleted last year: whoever "
                    "claims that name receives its sign-in responses.",
                    ("insecure_redirect_uris",), reports.sp.id, reports.name, ctx.at(0, 0))


STORIES: tuple[Story, ...] = (secret_on_first_party_app, multi_tenant_app_unlocked, stale_redirect_uris)

# Workloads the stories act on: (kind, name, certificate?)
STORY_WORKLOADS = (("job", "Office 365 Exchange Online", False), ("job", "partner-portal", True),
                   ("job", "reports-web", True))
