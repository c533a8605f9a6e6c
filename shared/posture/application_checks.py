"""Application hygiene: credentials where Microsoft's apps should have none, multi-tenant apps whose service
principals other tenants can add credentials to, and redirect URIs that can send sign-in responses astray.

Redirect URIs are judged by their shape. Whether a host still exists (a deleted `*.azurewebsites.net` site
whose name anyone can claim) needs DNS, which a posture run does not do: the check names the hosts on
takeover-prone Azure domains and the operator resolves them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from shared.directory.model import Application, ServicePrincipalLockConfiguration
from shared.posture.checks import MICROSOFT_TENANTS, Hit, check, credential_evidence
from shared.text import join_list

MULTI_TENANT_AUDIENCES = frozenset({"AzureADMultipleOrgs", "AzureADandPersonalMicrosoftAccount"})
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@check
def credentials_on_first_party_service_principal(inventory, index, usage, params, now) -> list[Hit]:
    expected = {app_id.lower() for app_id in params["expected_app_ids"]}
    hits = []
    for rec in inventory:
        sp = index.principal(rec.principal_id)
        if (sp is None or (sp.appOwnerOrganizationId or "").lower() not in MICROSOFT_TENANTS
                or sp.appId.lower() in expected):
            continue
        kind = "client secret" if rec.type == "secret" else rec.type
        hits.append(Hit(rec.principal_id, rec.principal_name,
                        f'A {kind} "{rec.display_name or rec.key_id}" was added to {rec.principal_name}, a Microsoft '
                        "application: Microsoft's own apps carry none here, and a credential on one signs in with "
                        "its permissions under a trusted name",
                        {**credential_evidence(rec), "AppOwnerTenantId": sp.appOwnerOrganizationId}, rec.key_id))
    return hits


@check
def multi_tenant_app_without_property_lock(inventory, index, usage, params, now) -> list[Hit]:
    hits = []
    for app in index.snapshot.applications:
        lock = app.servicePrincipalLockConfiguration
        if app.signInAudience not in MULTI_TENANT_AUDIENCES or _locks_credentials(lock):
            continue
        state = "is off" if lock is None or not lock.isEnabled else "leaves credentials unlocked"
        hits.append(_application_hit(index, app, f"{app.displayName} is multi-tenant ({app.signInAudience}) and its "
                                     f"app instance property lock {state}: an admin in any tenant that uses it can "
                                     "add a credential to its service principal there",
                                     LockConfiguration=lock.model_dump() if lock else None))
    return hits


@check
def insecure_redirect_uris(inventory, index, usage, params, now) -> list[Hit]:
    domains = [domain.lower().lstrip(".") for domain in params["takeover_prone_domains"]]
    hits = []
    for app in index.snapshot.applications:
        problems = [problem for platform, uris in _redirect_uris(app) for uri in uris
                    if (problem := redirect_problem(platform, uri, domains)) is not None]
        if not problems:
            continue
        severity = None if any(p["Problem"] != "takeover-prone host" for p in problems) else "Low"
        described = join_list(f"{p['Uri']} ({p['Problem']})" for p in problems)
        hits.append(_application_hit(index, app, f"{app.displayName} may send sign-in responses to {described}: "
                                     "fix or remove them", severity, RedirectUris=problems))
    return hits


def redirect_problem(platform: str, uri: str, takeover_prone: list[str]) -> dict[str, str] | None:
    """What is wrong with one redirect URI, or None: plain http off the loopback, a wildcard, or a host on a
    shared Azure domain whose name can be claimed by anyone once the resource behind it is deleted."""
    parts = urlsplit(uri)
    host = (parts.hostname or "").lower()
    if "*" in uri:
        problem = "wildcard"
    elif parts.scheme.lower() == "http" and host not in LOOPBACK_HOSTS:
        problem = "plain http"
    elif parts.scheme.lower() == "https" and any(host == d or host.endswith("." + d) for d in takeover_prone):
        problem = "takeover-prone host"
    else:
        return None
    return {"Uri": uri, "Platform": platform, "Problem": problem}


def _redirect_uris(app: Application) -> list[tuple[str, list[str]]]:
    return [(platform, settings.redirectUris) for platform, settings in
            (("web", app.web), ("spa", app.spa), ("publicClient", app.publicClient)) if settings is not None]


def _locks_credentials(lock: ServicePrincipalLockConfiguration | None) -> bool:
    return lock is not None and lock.isEnabled and bool(lock.allProperties or lock.credentialsWithUsageVerify)


def _application_hit(index: Any, app: Application, summary: str, severity: str | None = None, **extra: Any) -> Hit:
    """About the application's service principal here, or the application itself when it has none."""
    sp = index.principal(app.appId)
    principal_id = sp.id if sp is not None else app.id
    evidence = {"ServicePrincipalId": sp.id if sp else None, "ServicePrincipalName": app.displayName,
                "AppId": app.appId, "ApplicationObjectId": app.id, "SignInAudience": app.signInAudience, **extra}
    return Hit(principal_id, app.displayName, summary, evidence, severity=severity)  # type: ignore[arg-type]
