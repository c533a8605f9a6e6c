"""Links a reader follows from a finding: the identity in the Entra admin center, and the finding in the API.

Portal deep links (the blade paths the Entra admin center and the Azure portal both serve):

    app registration   #view/Microsoft_AAD_RegisteredApps/ApplicationMenuBlade/~/Overview/appId/<appId>
    enterprise app     #view/Microsoft_AAD_IAM/ManagedAppMenuBlade/~/Overview/objectId/<sp id>/appId/<appId>
                       (managed identities open in the same blade)
    sign-in logs       #view/Microsoft_AAD_IAM/SignInEventsV3Blade/timeRangeType/last7days/showApplicationSignIns~/true
                       (the portal takes no identity filter in the URL: the link opens the service principal
                       sign-ins of the last 7 days, to filter by the application id shown beside it)

An app registration link is only given when the application is registered in this tenant (the directory
context names its object), not for another tenant's multi-tenant app. The API link needs an absolute base
(the PUBLIC_BASE_URL setting); without one it is left out rather than given as a relative path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

ENTRA = "https://entra.microsoft.com"
_APP_REGISTRATION = "#view/Microsoft_AAD_RegisteredApps/ApplicationMenuBlade/~/Overview/appId/{app_id}"
_ENTERPRISE_APP = "#view/Microsoft_AAD_IAM/ManagedAppMenuBlade/~/Overview/objectId/{sp_id}/appId/{app_id}"
_SIGN_INS = "#view/Microsoft_AAD_IAM/SignInEventsV3Blade/timeRangeType/last7days/showApplicationSignIns~/true"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True)
class Link:
    title: str
    url: str


SIGN_IN_LOGS = Link("Sign-in logs", f"{ENTRA}/{_SIGN_INS}")


def _part(value: str) -> str:
    return quote(value, safe="")


def identity_links(context: dict[str, Any] | None) -> list[Link]:
    """Entra admin center links for the principal a directory context describes; none when it is deleted."""
    if not context or context.get("deleted"):
        return []
    sp_id, app_id = context.get("service_principal_id") or "", context.get("app_id") or ""
    if not sp_id or not app_id:
        return []
    links = []
    if context.get("application_object_id"):
        links.append(Link("App registration", ENTRA + "/" + _APP_REGISTRATION.format(app_id=_part(app_id))))
    title = "Managed identity" if context.get("type") == "managed identity" else "Enterprise app"
    links.append(Link(title, ENTRA + "/" + _ENTERPRISE_APP.format(sp_id=_part(sp_id), app_id=_part(app_id))))
    links.append(SIGN_IN_LOGS)
    return links


def finding_url(base_url: str | None, finding_id: str) -> str | None:
    """The finding in the HTTP API (`<base>/api/findings/<id>`), or None without a base URL."""
    return f"{base_url.rstrip('/')}/api/findings/{_part(finding_id)}" if base_url else None


def api_url(base_url: str | None, path_and_query: str) -> str | None:
    """An absolute API URL for `/api/...`, or None without a base URL."""
    return f"{base_url.rstrip('/')}{path_and_query}" if base_url else None


def finding_links(finding: Any, base_url: str | None) -> list[Link]:
    """The finding in the API first (when there is a base URL), then its identity in the portal."""
    url = finding_url(base_url, finding.id)
    return ([Link("Finding", url)] if url else []) + identity_links(finding.context)


def parse_base_url(text: str) -> str:
    """PUBLIC_BASE_URL: an https URL without query or fragment (plain http only for a loopback host)."""
    value = text.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("must be an absolute URL such as https://wiaudit-func.azurewebsites.net")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise ValueError("must be https (plain http only for a loopback host)")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    return value
