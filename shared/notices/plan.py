"""Who is told what: the owner notices one credential inventory calls for.

A credential is a concern when the credential hygiene (shared/posture/hygiene.py, the same definitions as
the digest and `wiaudit credentials`) finds it expired, or unused, or when it ends within one of the notice
thresholds (30, 14, 7 and 1 days by default): `expiring-14` is the smallest threshold its end is within, so
a credential 10 days from its end is an `expiring-14` concern and becomes `expiring-7` three days later.
Managed identities' own certificates are never a concern: Azure rotates them.

Each concern goes to every owner of the application who is a user with a mailbox in an allowed domain.
An application with none (no owner, owned by service principals or groups only, owners without a mailbox
or outside the allowed domains) is listed for the security digest instead: "no owner to notify".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.posture.hygiene import HygieneThresholds, is_expired, is_unused, owner_managed
from shared.posture.model import CredentialRecord, Owner
from shared.settings import read_setting
from shared.store.keys import utc

EXPIRED = "expired"
UNUSED = "unused"


@dataclass(frozen=True)
class NoticeSettings:
    enabled: bool = False
    days: tuple[int, ...] = (30, 14, 7, 1)  # largest first
    domains: tuple[str, ...] | None = None  # None: any mail domain
    unused_for: timedelta = HygieneThresholds().unused_for

    @classmethod
    def from_settings(cls, environ: Mapping[str, str] | None = None) -> NoticeSettings:
        """OWNER_NOTICES, OWNER_NOTICE_DAYS and OWNER_NOTICE_DOMAINS."""
        return cls(enabled=read_setting("OWNER_NOTICES", environ), days=read_setting("OWNER_NOTICE_DAYS", environ),
                   domains=read_setting("OWNER_NOTICE_DOMAINS", environ))

    def allows(self, address: str) -> bool:
        return self.domains is None or address.rpartition("@")[2].lower() in self.domains


def credential_key(record: CredentialRecord) -> str:
    """The credential's identity across inventories: the object it is held on and its key id."""
    return f"{record.principal_id}_{record.held_on}_{record.key_id}"


@dataclass(frozen=True)
class NoticeItem:
    record: CredentialRecord
    concern: str  # expired, unused, expiring-<days>

    @property
    def key(self) -> str:
        return credential_key(self.record)


@dataclass
class OwnerNotice:
    """One email to one owner: every concern about the applications they own, most urgent first."""

    recipient: str
    owner: str
    items: list[NoticeItem] = field(default_factory=list)


@dataclass(frozen=True)
class Unnotified:
    """An application whose credentials need action but that has nobody to tell."""

    principal_id: str
    principal_name: str
    credentials: int
    reason: str


@dataclass
class NoticePlan:
    notices: list[OwnerNotice]
    unowned: list[Unnotified]


def concerns(record: CredentialRecord, now: datetime, settings: NoticeSettings) -> list[str]:
    now = utc(now)
    if is_expired(record, now):
        return [EXPIRED]
    found = []
    if record.end is not None:
        left = (utc(record.end).date() - now.date()).days
        within = [days for days in settings.days if left <= days]
        if within:
            found.append(f"expiring-{min(within)}")
    if is_unused(record, now, now - settings.unused_for):
        found.append(UNUSED)
    return found


def _urgency(item: NoticeItem) -> tuple:
    end = utc(item.record.end).timestamp() if item.record.end is not None else float("inf")
    return (item.concern != EXPIRED, end, item.record.principal_name.lower(), item.record.key_id, item.concern)


def _recipients(owners: Sequence[Owner], settings: NoticeSettings) -> tuple[list[Owner], str]:
    """The owners to tell, or none and the reason."""
    if not owners:
        return [], "it has no owner"
    users = [owner for owner in owners if owner.type == "user"]
    if not users:
        return [], "its owners are service principals or groups, not people"
    with_mail = [owner for owner in users if owner.mail]
    if not with_mail:
        return [], "no owner has a mailbox"
    allowed = [owner for owner in with_mail if settings.allows(owner.mail or "")]
    if not allowed:
        return [], f"no owner has a mailbox in an allowed domain ({', '.join(settings.domains or ())})"
    return allowed, ""


def plan_notices(records: Sequence[CredentialRecord], now: datetime, settings: NoticeSettings) -> NoticePlan:
    """Every concern in the inventory, by recipient, and the applications nobody can be told about."""
    notices: dict[str, OwnerNotice] = {}
    unowned: dict[str, Unnotified] = {}
    for record in owner_managed(records):
        items = [NoticeItem(record, concern) for concern in concerns(record, now, settings)]
        if not items:
            continue
        owners, reason = _recipients(record.owners, settings)
        for owner in owners:
            address = (owner.mail or "").lower()
            notices.setdefault(address, OwnerNotice(owner.mail or address, owner.name)).items.extend(items)
        if not owners:
            known = unowned.get(record.principal_id)
            unowned[record.principal_id] = Unnotified(record.principal_id, record.principal_name,
                                                      (known.credentials if known else 0) + 1, reason)
    for notice in notices.values():
        notice.items.sort(key=_urgency)
    return NoticePlan(sorted(notices.values(), key=lambda notice: notice.recipient.lower()),
                      sorted(unowned.values(), key=lambda app: app.principal_name.lower()))
