"""The credential inventory: every password, certificate and federated credential that a workload
identity holds, on its application and on its service principal object, with its status and use.

Dates are judged in whole UTC calendar days: a credential ending later today has 0 days to
expiry and is `expiring`; one whose end has passed is `expired`; "in exactly 30 days" is the
same time of day 30 calendar days on. A credential without an end date is `no end date`
(federated credentials have none).

Managed identities' own certificates are listed too (principal_type `managed identity`), but
Azure creates and rotates them itself and the logs never name them, so the posture checks
leave them alone (see shared/posture/checks.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.directory.context import DirectoryIndex, principal_type
from shared.directory.model import (
    Application,
    DirectorySnapshot,
    FederatedIdentityCredential,
    KeyCredential,
    PasswordCredential,
    ServicePrincipal,
)
from shared.directory.model import Owner as GraphOwner
from shared.directory.privilege import tier0_reasons
from shared.posture.model import CredentialRecord, CredentialStatus, Owner
from shared.posture.usage import SignInUsage

Credential = PasswordCredential | KeyCredential | FederatedIdentityCredential


@dataclass(frozen=True)
class InventorySettings:
    expiring_days: int = 30  # `expiring` when it ends within this many calendar days
    unused_days: int = 30  # usage is `known` when the logs reach back this far


def build_inventory(snapshot: DirectorySnapshot, usage: SignInUsage, now: datetime,
                    settings: InventorySettings = InventorySettings()) -> list[CredentialRecord]:
    """One row per credential, applications' and service principals' alike, in snapshot order."""
    index = DirectoryIndex(snapshot)
    records: list[CredentialRecord] = []
    with_principal: set[str] = set()
    for sp in snapshot.servicePrincipals:
        app = index.application_of(sp)
        if app is not None:
            with_principal.add(app.id)
        identity = _Identity(sp.id, sp.displayName, principal_type(sp), sp.appId, app.id if app else None,
                             owners_of(app, sp), *privileged_reasons(index, sp))
        if app is not None:
            records += [_record(identity, "application", c, usage, now, settings) for c in _held(app)]
        records += [_record(identity, "servicePrincipal", c, usage, now, settings) for c in _held(sp)]
    for app in snapshot.applications:  # registered here without a service principal: no sign-ins possible
        if app.id not in with_principal:
            identity = _Identity(app.id, app.displayName, "application", app.appId, app.id, owners_of(app, None), False,
                                 [])
            records += [_record(identity, "application", c, usage, now, settings) for c in _held(app)]
    return records


@dataclass(frozen=True)
class _Identity:
    principal_id: str
    name: str
    type: str
    app_id: str
    application_id: str | None
    owners: list[Owner]
    privileged: bool
    reasons: list[str]


def _held(holder: Application | ServicePrincipal) -> list[Credential]:
    return [*holder.passwordCredentials, *holder.keyCredentials, *holder.federatedIdentityCredentials]


def owners_of(app: Application | None, sp: ServicePrincipal | None) -> list[Owner]:
    """Application owners, then service principal owners, once each, as the snapshot lists them
    (a deleted owner is no longer listed by Graph, so it is not here either)."""
    seen: dict[str, Owner] = {}
    for owner in [*(app.owners if app else []), *(sp.owners if sp else [])]:
        seen.setdefault(owner.id, _owner(owner))
    return list(seen.values())


def _owner(owner: GraphOwner) -> Owner:
    return Owner(id=owner.id, name=owner.userPrincipalName or owner.displayName or owner.id, type=owner.type,
                 mail=owner.mail)


def privileged_reasons(index: DirectoryIndex, sp: ServicePrincipal) -> tuple[bool, list[str]]:
    """Whether it is tier 0, and the tier-0 application permissions and directory roles that make it so."""
    reasons = tier0_reasons(index.holdings(sp))
    return bool(reasons), reasons


def _record(identity: _Identity, held_on: str, credential: Credential, usage: SignInUsage, now: datetime,
            settings: InventorySettings) -> CredentialRecord:
    managed = identity.type == "managed identity"
    if isinstance(credential, FederatedIdentityCredential):
        kind, key_id, thumbprint, start, end = "federated", credential.id, None, None, None
        last_used = usage.last_used(identity.principal_id, federated_id=credential.id)
    else:
        secret = isinstance(credential, PasswordCredential)
        kind = "secret" if secret else "certificate"
        key_id, start, end = credential.keyId, credential.startDateTime, credential.endDateTime
        thumbprint = None if secret else credential.customKeyIdentifier
        last_used = usage.last_used(identity.principal_id, key_id=key_id, thumbprint=thumbprint)
    status, days = status_of(end, now, settings.expiring_days)
    since = now - timedelta(days=settings.unused_days)
    return CredentialRecord(
        principal_id=identity.principal_id, principal_name=identity.name, principal_type=identity.type,
        app_id=identity.app_id, application_id=identity.application_id, held_on=held_on, key_id=key_id,
        display_name=credential.name if isinstance(credential, FederatedIdentityCredential) else credential.displayName,
        type=kind, thumbprint=thumbprint,
        issuer=credential.issuer if isinstance(credential, FederatedIdentityCredential) else None,
        subject=credential.subject if isinstance(credential, FederatedIdentityCredential) else None,
        subject_expression=_expression(credential),
        start=start, end=end, status=status, days_to_expiry=days,
        lifetime_days=(end - start).days if start and end else None,
        last_used=last_used, usage_known=usage.covers(managed, since),
        owners=identity.owners, privileged=identity.privileged, privileged_reasons=identity.reasons)


def _expression(credential: Credential) -> str | None:
    if isinstance(credential, FederatedIdentityCredential) and credential.claimsMatchingExpression is not None:
        return credential.claimsMatchingExpression.value
    return None


def status_of(end: datetime | None, now: datetime, expiring_days: int) -> tuple[CredentialStatus, int | None]:
    """(status, calendar days from today to the end date, negative once past)."""
    if end is None:
        return "no end date", None
    end, now = utc(end), utc(now)
    days = (end.date() - now.date()).days
    if end <= now:
        return "expired", days
    return ("expiring" if days <= expiring_days else "active"), days


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
