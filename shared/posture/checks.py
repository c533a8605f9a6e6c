"""The posture check functions. Each YAML file in shared/posture/checks/ names one of these by
`check:` and supplies its parameters; each is (inventory, directory index, sign-in usage,
parameters, now) -> hits, and shared/posture/run.py turns the hits into Findings.

Managed identities are left out of every check: Azure creates their certificates, rotates them
(the sample tenant's last 90 days) and never names them in the sign-in logs, and nobody can add
a secret to them or remove one. They stay in the inventory for the reports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.directory.context import DirectoryIndex
from shared.directory.model import ServicePrincipal
from shared.directory.privilege import principal_tier, tier0_reasons
from shared.directory.tiers.lookup import tier_text
from shared.posture.control_paths import ControlGraph, ControlPath, Principal, path_text
from shared.posture.inventory import owners_of, privileged_reasons, utc
from shared.posture.model import CredentialRecord, Owner
from shared.posture.usage import SignInUsage
from shared.severity import Severity
from shared.text import join_list, plural

# Microsoft's first-party applications are registered in these tenants (services, and the corporate tenant).
MICROSOFT_TENANTS = frozenset({"f8cdef31-a31e-4b4a-93e4-5f571e91255a", "72f988bf-86f1-41af-91ab-2d7cd011db47"})


@dataclass
class Hit:
    """One finding of a check: about an identity, or about one credential of it (key_id)."""

    principal_id: str
    principal_name: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    key_id: str | None = None
    severity: Severity | None = None  # None: the check's own severity
    entities: dict[str, str] = field(default_factory=dict)  # more entities that tell its findings apart


Check = Callable[[list[CredentialRecord], DirectoryIndex, SignInUsage, dict[str, Any], datetime], list[Hit]]
CHECKS: dict[str, Check] = {}


def check(function: Check) -> Check:
    CHECKS[function.__name__] = function
    return function


# --- 1. expired ------------------------------------------------------------------------------------------


@check
def expired_credentials(inventory, index, usage, params, now) -> list[Hit]:
    return [_credential_hit(rec, f"{_what(rec)} expired {_ago(-rec.days_to_expiry)} and is still there: remove it, "
                                 "so nobody mistakes it for the live one or revives it")
            for rec in _actionable(inventory) if rec.status == "expired"]


# --- 2. expiring -----------------------------------------------------------------------------------------


@check
def expiring_credentials(inventory, index, usage, params, now) -> list[Hit]:
    hits = []
    in_use_since = now - timedelta(days=params["in_use_days"])
    for rec in _actionable(inventory):
        if rec.status != "expiring":
            continue
        in_use = rec.last_used is not None and rec.last_used >= in_use_since
        when = "today" if rec.days_to_expiry == 0 else f"in {_days(rec.days_to_expiry)}"
        if in_use:
            severity = "High" if rec.days_to_expiry <= params["urgent_days"] else "Medium"
            summary = f"{_what(rec)} expires {when} and is still in use: rotate it or the sign-ins will start failing"
        else:
            severity = None
            summary = f"{_what(rec)} expires {when}; no sign-in used it lately: rotate it or let it go"
        hits.append(_credential_hit(rec, summary, severity, InUse=in_use))
    return hits


# --- 3. lifetime -----------------------------------------------------------------------------------------


@check
def credential_lifetime_over_policy(inventory, index, usage, params, now) -> list[Hit]:
    limits = {"secret": params["max_secret_days"], "certificate": params["max_certificate_days"]}
    return [_credential_hit(rec, f"{_what(rec)} is valid for {rec.lifetime_days} days, over the "
                                 f"{limits[rec.type]}-day policy: a leaked copy stays good that long",
                            PolicyDays=limits[rec.type])
            for rec in _actionable(inventory)
            if rec.type in limits and rec.status != "expired" and rec.lifetime_days is not None
            and rec.lifetime_days > limits[rec.type]]


# --- 4. unused -------------------------------------------------------------------------------------------


@check
def unused_credentials(inventory, index, usage, params, now) -> list[Hit]:
    """Only credentials older than the horizon and not used within it are safe to remove; when the
    logs do not reach back that far, or the identity signs in without naming its credential, the
    finding says usage is unknown (Informational) instead of guessing."""
    days = params["unused_days"]
    since = now - timedelta(days=days)
    hits = []
    for rec in _actionable(inventory):
        if rec.status == "expired" or rec.start is None or utc(rec.start) > since:
            continue  # expired: check 1; younger than the horizon: too new to call unused
        if rec.last_used is not None and rec.last_used >= since:
            continue
        unattributed = usage.last_unattributed(rec.principal_id)
        start = usage.start_for(managed_identity=False)
        if unattributed is not None and unattributed >= since:
            hits.append(_credential_hit(rec, f"{_what(rec)}: usage unknown, {rec.principal_name} signs in without "
                                        "the logs naming the credential", "Informational", UsageKnown=False,
                                        LastUnattributedSignIn=_iso(unattributed)))
        elif not rec.usage_known:
            hits.append(_credential_hit(rec, f"{_what(rec)}: usage unknown, logs start at {_day(start)}, short of "
                                        f"the {days}-day horizon (no sign-in used it since)",
                                        "Informational", LogsStart=_iso(start), HorizonDays=days))
        else:
            last = f"last used {_day(rec.last_used)}" if rec.last_used else f"never used since {_day(start)}"
            hits.append(_credential_hit(rec, f"{_what(rec)} was not used for {days} days ({last}): "
                                        "safe to remove", LogsStart=_iso(start), HorizonDays=days))
    return hits


# --- 5. dormant ------------------------------------------------------------------------------------------


@check
def dormant_identities(inventory, index, usage, params, now) -> list[Hit]:
    """No successful sign-in within the horizon while holding a credential that still works."""
    days = params["dormant_days"]
    since = now - timedelta(days=days)
    valid = _by_principal(rec for rec in _actionable(inventory) if rec.status != "expired")
    hits = []
    for principal_id, records in valid.items():
        sp = index.principal(principal_id)
        if sp is None or not sp.accountEnabled or (sp.createdDateTime and utc(sp.createdDateTime) > since):
            continue  # not a service principal here, cannot sign in, or too new to be dormant
        last = usage.last_sign_in(principal_id)
        if last is not None and last >= since:
            continue
        start = usage.start_for(managed_identity=False)
        evidence = _identity_evidence(records, LastSignIn=_iso(last), LogsStart=_iso(start), HorizonDays=days)
        names = join_list(_short(rec) for rec in records)
        if usage.covers(False, since):
            hits.append(Hit(principal_id, sp.displayName, f"{sp.displayName} has not signed in for {days} days but "
                            f"holds valid credentials ({names}): remove them or the identity", evidence))
        else:
            hits.append(Hit(principal_id, sp.displayName, f"{sp.displayName} has no successful sign-in in the logs, "
                            f"which start at {_day(start)}, short of the {days}-day horizon; it holds valid "
                            f"credentials ({names}): dormancy unknown", evidence, severity="Informational"))
    return hits


# --- 6. privileged identity with secrets -----------------------------------------------------------------


@check
def privileged_identity_with_secrets(inventory, index, usage, params, now) -> list[Hit]:
    hits = []
    in_use_since = now - timedelta(days=params["in_use_days"])
    for rec in _actionable(inventory):
        if not rec.privileged or rec.type != "secret" or rec.status == "expired":
            continue
        reasons = "; ".join(rec.privileged_reasons)
        if rec.last_used is not None and rec.last_used >= in_use_since:
            hits.append(_credential_hit(rec, f"{rec.principal_name} ({reasons}) authenticates with a client secret "
                                        f"({_short(rec)}): move it to a certificate or a federated credential",
                                        "High", InUse=True))
        else:
            hits.append(_credential_hit(rec, f"{rec.principal_name} ({reasons}) holds a client secret "
                                        f"({_short(rec)}) nobody needs to sign in with: remove it", InUse=False))
    return hits


# --- 7. privileged identity owned by users ---------------------------------------------------------------


@check
def privileged_identity_owned_by_users(inventory, index, usage, params, now) -> list[Hit]:
    """Owners can add credentials and sign in as the identity: an escalation path to its privileges."""
    hits = []
    for sp in _service_principals(index):
        privileged, reasons = privileged_reasons(index, sp)
        owners = owners_of(index.application_of(sp), sp)
        users = [owner for owner in owners if owner.type == "user"]
        if not privileged or not users:
            continue
        names = join_list(owner.name for owner in users)
        evidence = {**_principal_evidence(sp), "Owners": owner_evidence(owners),
                    "PrivilegedReasons": reasons}
        hits.append(Hit(sp.id, sp.displayName, f"{sp.displayName} ({'; '.join(reasons)}) is owned by {names}: each "
                        "can add a credential and act with its privileges", evidence))
    return hits


# --- 8. credentials on the service principal object ------------------------------------------------------


@check
def credentials_on_service_principal(inventory, index, usage, params, now) -> list[Hit]:
    """Credentials on the service principal of an application registered here do not show on the app
    registration's blade. SAML token-signing certificates (usage Sign) and their private-key password
    entries (same display name) belong there and are left out."""
    hits = []
    for rec in _actionable(inventory):
        if rec.held_on != "servicePrincipal" or rec.application_id is None or rec.status == "expired":
            continue
        sp = index.principal(rec.principal_id)
        if sp is not None and _saml_signing(sp, rec):
            continue
        hits.append(_credential_hit(rec, f"{_what(rec)} is hidden from the app registration's blade: a known way "
                                    "to keep access; confirm who added it",
                                    "High" if rec.privileged else None))
    return hits


def _saml_signing(sp: ServicePrincipal, rec: CredentialRecord) -> bool:
    """The signing certificate, its Verify twin and its private-key password entry share one display name."""
    signing = {key.displayName for key in sp.keyCredentials if key.usage == "Sign" and key.displayName}
    return any(key.keyId == rec.key_id and key.usage == "Sign" for key in sp.keyCredentials) or (
        rec.display_name is not None and rec.display_name in signing)


# --- 9. several active secrets ---------------------------------------------------------------------------


@check
def multiple_active_secrets(inventory, index, usage, params, now) -> list[Hit]:
    in_use_since = now - timedelta(days=params["in_use_days"])
    secrets = _by_principal(rec for rec in _actionable(inventory) if rec.type == "secret" and rec.status != "expired")
    hits = []
    for principal_id, records in secrets.items():
        if len(records) <= params["max_active_secrets"]:
            continue
        in_use = [rec for rec in records if rec.last_used is not None and rec.last_used >= in_use_since]
        used = join_list(_short(rec) for rec in in_use)
        evidence = _identity_evidence(records, InUse=[rec.key_id for rec in in_use])
        hits.append(Hit(principal_id, records[0].principal_name, f"{records[0].principal_name} holds {len(records)} "
                        f"active client secrets, in use: {used}; remove the rotation left-overs", evidence))
    return hits


# --- 10. foreign multi-tenant application with privileged permissions ------------------------------------


@check
def foreign_app_with_privileged_permissions(inventory, index, usage, params, now) -> list[Hit]:
    """Tier 0 here is the check's severity; tier 1 (app-only access to mail, files or sites: what the Midnight
    Blizzard intrusion used) is reported one step lower."""
    trusted = {tenant.lower() for tenant in [index.snapshot.tenantId, *MICROSOFT_TENANTS, *params["trusted_tenants"]]}
    hits = []
    for sp in index.snapshot.servicePrincipals:
        owner_tenant = (sp.appOwnerOrganizationId or "").lower()
        if not owner_tenant or owner_tenant in trusted or sp.servicePrincipalType == "ManagedIdentity":
            continue
        held = index.holdings(sp)
        tier = principal_tier(held)
        if tier not in (0, 1):
            continue
        reasons = [holding.text for holding in held if holding.tier == tier]
        evidence = {**_principal_evidence(sp), "AppOwnerTenantId": sp.appOwnerOrganizationId, "Tier": tier,
                    "PrivilegedReasons": reasons, "LastSignIn": _iso(usage.last_sign_in(sp.id)),
                    "Owners": owner_evidence(owners_of(None, sp))}
        hits.append(Hit(sp.id, sp.displayName, f"{sp.displayName}, an application of tenant "
                        f"{sp.appOwnerOrganizationId}, holds {tier_text(tier)} access here ({'; '.join(reasons)}): "
                        "whoever holds its credentials in that tenant can use it", evidence,
                        severity=None if tier == 0 else "Medium"))
    return hits


# --- 11. disabled by Microsoft ---------------------------------------------------------------------------


@check
def disabled_by_microsoft(inventory, index, usage, params, now) -> list[Hit]:
    """Microsoft disables an application that breaks its terms (disabledByMicrosoftStatus on the application or
    its service principal): its verdict that the app was abused or malicious. High while the identity still holds
    application permissions, directory roles or valid credentials here (any tier: a disabled app should hold
    nothing), which whoever controls it could use once it is re-enabled."""
    hits = []
    valid = _by_principal(rec for rec in _actionable(inventory) if rec.status != "expired")
    for sp in _service_principals(index):
        application = index.application_of(sp)
        status = _disabled_status(sp.disabledByMicrosoftStatus) or _disabled_status(
            application.disabledByMicrosoftStatus if application else None)
        if not status:
            continue
        granted = [holding.text for holding in index.holdings(sp)]
        credentials = valid.get(sp.id, [])
        holds = [*granted, *(f"valid {_short(rec)}" for rec in credentials)]
        evidence = {**_principal_evidence(sp), "DisabledByMicrosoftStatus": status, "Holdings": granted,
                    "ValidCredentials": [rec.key_id for rec in credentials], "AccountEnabled": sp.accountEnabled,
                    "LastSignIn": _iso(usage.last_sign_in(sp.id))}
        if holds:
            summary = (f"Microsoft disabled {sp.displayName} ({status}), and it still holds {join_list(holds)}: "
                       "remove them, or delete the service principal")
        else:
            summary = f"Microsoft disabled {sp.displayName} ({status}); it holds no permission, role or credential here"
        hits.append(Hit(sp.id, sp.displayName, summary, evidence, severity="High" if holds else None))
    return hits


def _disabled_status(status: str | None) -> str | None:
    return status if status and status != "NotDisabled" else None


# --- 12. control paths to tier 0 ------------------------------------------------------------------------


@check
def control_paths_to_tier0(inventory, index, usage, params, now) -> list[Hit]:
    """One finding per tier-0 target and first step, its summary the first path that starts below tier 0 (an
    escalation: the check's severity) or, when every path starts at a tier-0 principal already, the shortest (Low)."""
    graph = ControlGraph(index)
    hits = []
    for target in graph.tier0_targets():
        by_first: dict[Principal, list[ControlPath]] = {}
        for path in graph.paths(target):
            by_first.setdefault(path.steps[0].controller, []).append(path)
        for first, paths in by_first.items():
            paths.sort(key=lambda p: (graph.is_tier0(p.origin), len(p.steps)))  # escalations first, shortest first
            escalation = not graph.is_tier0(paths[0].origin)
            shown = [path_text(graph, path) for path in paths[:params["max_paths_shown"]]]
            evidence = {**_principal_evidence(target), "Tier0Reasons": tier0_reasons(index.holdings(target)),
                        "FirstStep": {"id": first.id, "type": first.type, "name": first.name,
                                      "how": list(paths[0].steps[0].how)},
                        "PathCount": len(paths), "Paths": shown, "Escalation": escalation}
            more = f" ({plural(len(paths), 'path')} in all, in the evidence)" if len(paths) > 1 else ""
            hits.append(Hit(target.id, target.displayName, f"{shown[0]}{more}", evidence,
                            severity=None if escalation else "Low", entities={"ControlPath.FirstStep": first.id}))
    return hits


# --- helpers ---------------------------------------------------------------------------------------------


def _actionable(inventory: Iterable[CredentialRecord]) -> list[CredentialRecord]:
    """Credentials someone here can rotate or remove: not managed identities' own."""
    return [rec for rec in inventory if rec.principal_type != "managed identity"]


def _service_principals(index: DirectoryIndex) -> list[ServicePrincipal]:
    return [sp for sp in index.snapshot.servicePrincipals if sp.servicePrincipalType != "ManagedIdentity"]


def _by_principal(records: Iterable[CredentialRecord]) -> dict[str, list[CredentialRecord]]:
    grouped: dict[str, list[CredentialRecord]] = {}
    for rec in records:
        grouped.setdefault(rec.principal_id, []).append(rec)
    return grouped


def _credential_hit(rec: CredentialRecord, summary: str, severity: Severity | None = None, **extra: Any) -> Hit:
    return Hit(rec.principal_id, rec.principal_name, summary, {**credential_evidence(rec), **extra}, rec.key_id,
               severity)


def owner_evidence(owners: Iterable[Owner]) -> list[dict[str, Any]]:
    """Owners as a finding names them: id, name and type. Mail addresses are for owner notices, not findings."""
    return [owner.model_dump(exclude={"mail"}) for owner in owners]


def credential_evidence(rec: CredentialRecord) -> dict[str, Any]:
    """Everything needed to act on one credential: whose, which, until when, used when, who rotates it."""
    return {
        "ServicePrincipalId": rec.principal_id, "ServicePrincipalName": rec.principal_name, "AppId": rec.app_id,
        "ApplicationObjectId": rec.application_id, "PrincipalType": rec.principal_type, "HeldOn": rec.held_on,
        "KeyId": rec.key_id, "CredentialName": rec.display_name, "CredentialType": rec.type,
        "Thumbprint": rec.thumbprint, "StartDateTime": _iso(rec.start), "EndDateTime": _iso(rec.end),
        "Status": rec.status, "DaysToExpiry": rec.days_to_expiry, "LifetimeDays": rec.lifetime_days,
        "LastUsed": _iso(rec.last_used), "UsageKnown": rec.usage_known,
        "Owners": owner_evidence(rec.owners), "Privileged": rec.privileged,
        "PrivilegedReasons": rec.privileged_reasons,
    }


def _identity_evidence(records: list[CredentialRecord], **extra: Any) -> dict[str, Any]:
    first = records[0]
    return {"ServicePrincipalId": first.principal_id, "ServicePrincipalName": first.principal_name,
            "AppId": first.app_id, "PrincipalType": first.principal_type,
            "Owners": owner_evidence(first.owners), "Privileged": first.privileged,
            "PrivilegedReasons": first.privileged_reasons,
            "Credentials": [{key: value for key, value in credential_evidence(rec).items()
                             if key in _CREDENTIAL_KEYS} for rec in records], **extra}


_CREDENTIAL_KEYS = ("HeldOn", "KeyId", "CredentialName", "CredentialType", "EndDateTime", "Status", "LastUsed")


def _principal_evidence(sp: ServicePrincipal) -> dict[str, Any]:
    return {"ServicePrincipalId": sp.id, "ServicePrincipalName": sp.displayName, "AppId": sp.appId,
            "ServicePrincipalType": sp.servicePrincipalType}


def _what(rec: CredentialRecord) -> str:
    where = "application" if rec.held_on == "application" else "service principal object"
    short = _short(rec)
    return f"{short[0].upper()}{short[1:]} on {rec.principal_name}'s {where}"


def _short(rec: CredentialRecord) -> str:
    kind = {"secret": "client secret", "certificate": "certificate", "federated": "federated credential"}[rec.type]
    return f'{kind} "{rec.display_name or rec.key_id}"'


def _days(count: int) -> str:
    return plural(count, "day")


def _ago(count: int) -> str:
    return "today" if count == 0 else f"{_days(count)} ago"


def _iso(moment: datetime | None) -> str | None:
    return utc(moment).isoformat() if moment else None


def _day(moment: datetime | None) -> str:
    return f"{utc(moment):%Y-%m-%d}" if moment else "(no sign-in logs)"
