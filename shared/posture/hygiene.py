"""Credential hygiene: the digest's summary of what in the credential inventory needs attention.

Four groups, each a count and its most urgent few credentials (privileged identities first):

- expiring in use: not yet expired, ends within `expiring_within`, and signed in within `unused_for`
  (letting it lapse breaks something: rotate it);
- expired: past its end date and still on the identity (remove it);
- unused: not expired, and no sign-in with it for `unused_for` - either a last use older than that,
  or none at all when the logs read reach back over the whole horizon (`usage_known`); remove it;
- usage unknown: not expired, older than `unused_for`, never seen in logs that do not reach back over
  the horizon (what the "Unused credential" check reports as usage unknown): nobody can say yet;
- over-long lifetime: a secret or certificate valid for longer than the policy allows, or with no
  end date (federated credentials have no lifetime and never count).

Managed identities' own certificates are counted (`credentials` is the whole inventory, as
`wiaudit credentials` lists it) but kept out of the groups (`managed_by_azure`): Azure creates and
rotates them, and no sign-in names them. `hygiene_counts` is the one list of numbers every reader
shows (digest, CLI). Everything is relative to `now`: the time the inventory describes. "Never used" is only
claimed for records with `usage_known`, which the inventory judges against its own unused horizon:
keep `unused_for` no longer than that (both default to 30 days).

`parse_span` reads the spans the reports take (`30d`, `P30D`): `wiaudit credentials` and
`GET /api/credentials` share it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from shared.posture.model import CredentialRecord
from shared.timespan import parse_timespan

GROUPS = ("expiring_in_use", "expired", "unused", "usage_unknown", "over_long")
MAX_SPAN = timedelta(days=36_525)  # a century: any longer is a typo, and stays clear of datetime's range
_ISO_DURATION = re.compile(r"P(?:(\d{1,9})W)?(?:(\d{1,9})D)?"
                           r"(?:T(?:(\d{1,9})H)?(?:(\d{1,9})M)?(?:(\d{1,9}(?:\.\d+)?)S)?)?", re.IGNORECASE)
TITLES = {"expiring_in_use": "Expiring and in use", "expired": "Expired", "unused": "Unused",
          "usage_unknown": "Usage unknown", "over_long": "Over-long lifetime"}


@dataclass(frozen=True)
class HygieneThresholds:
    expiring_within: timedelta = timedelta(days=30)
    unused_for: timedelta = timedelta(days=30)  # the inventory's default horizon for usage_known
    max_secret_lifetime: timedelta = timedelta(days=180)  # the Entra portal's recommended secret lifetime
    max_certificate_lifetime: timedelta = timedelta(days=365)
    top: int = 5


class HygieneGroup(BaseModel):
    count: int = 0
    top: list[CredentialRecord] = Field(default_factory=list, description="The most urgent first")


class CredentialHygiene(BaseModel):
    taken_at: datetime = Field(description="The time the inventory describes")
    credentials: int = Field(description="Credentials in the inventory, managed identities' own included")
    managed_by_azure: int = Field(0, description="Managed identities' own certificates (Azure rotates them)")
    expiring_within_days: int
    unused_days: int
    max_secret_lifetime_days: int
    max_certificate_lifetime_days: int
    expiring_in_use: HygieneGroup = Field(default_factory=HygieneGroup)
    expired: HygieneGroup = Field(default_factory=HygieneGroup)
    unused: HygieneGroup = Field(default_factory=HygieneGroup)
    usage_unknown: HygieneGroup = Field(default_factory=HygieneGroup)
    over_long: HygieneGroup = Field(default_factory=HygieneGroup)

    def groups(self) -> list[tuple[str, str, HygieneGroup]]:
        """(key, title, group) in reading order."""
        return [(key, TITLES[key], getattr(self, key)) for key in GROUPS]

    def describe(self, key: str) -> str:
        """What the group means, with its thresholds: `ends within 30 days, used in the last 90 days`."""
        return {
            "expiring_in_use": f"ends within {self.expiring_within_days} days and used in the last "
                               f"{self.unused_days} days: rotate",
            "expired": "past its end date but still present: remove",
            "unused": f"no sign-in for {self.unused_days} days: remove",
            "usage_unknown": f"never seen, but the logs read do not reach back {self.unused_days} days",
            "over_long": f"valid for more than {self.max_secret_lifetime_days} days (secret) or "
                         f"{self.max_certificate_lifetime_days} days (certificate), or no end date",
        }[key]

    @property
    def total(self) -> int:
        return sum(group.count for _, _, group in self.groups())


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _days(span: timedelta) -> int:
    return int(span.total_seconds() // 86400)


def _lifetime(record: CredentialRecord) -> timedelta | None:
    """The validity period; None when it has no end (unbounded)."""
    if record.end is None:
        return None
    if record.start is not None:
        return _utc(record.end) - _utc(record.start)
    return timedelta(days=record.lifetime_days) if record.lifetime_days is not None else timedelta(0)


def is_expired(record: CredentialRecord, now: datetime) -> bool:
    """Past its end date and still on the identity."""
    return record.end is not None and _utc(record.end) <= now


def used_since(record: CredentialRecord, moment: datetime) -> bool:
    return record.last_used is not None and _utc(record.last_used) >= moment


def is_unused(record: CredentialRecord, now: datetime, horizon: datetime) -> bool:
    """Not expired, and no sign-in with it since `horizon` (none at all counts only when usage is known)."""
    if is_expired(record, now):
        return False
    if record.last_used is not None:
        return _utc(record.last_used) < horizon
    return record.usage_known


def _usage_unknown(record: CredentialRecord, now: datetime, horizon: datetime) -> bool:
    old_enough = record.start is not None and _utc(record.start) <= horizon
    return old_enough and not is_expired(record, now) and record.last_used is None and not record.usage_known


def owner_managed(records: Iterable[CredentialRecord]) -> list[CredentialRecord]:
    """The credentials owners look after: all but managed identities' own certificates, which Azure creates and
    rotates (a federated credential on a user-assigned identity is someone's, not Azure's)."""
    return [record for record in records if record.principal_type != "managed identity" or record.type == "federated"]


def _over_long(record: CredentialRecord, thresholds: HygieneThresholds) -> bool:
    if record.type == "federated":
        return False
    limit = thresholds.max_secret_lifetime if record.type == "secret" else thresholds.max_certificate_lifetime
    lifetime = _lifetime(record)
    return lifetime is None or lifetime > limit


def _far(value: datetime | None, default: datetime) -> float:
    return (_utc(value) if value is not None else default).timestamp()


def _group(records: Iterable[CredentialRecord], top: int, order: Callable[[CredentialRecord], Any]) -> HygieneGroup:
    matched = list(records)
    ranked = sorted(matched, key=lambda record: (not record.privileged, order(record), record.principal_name,
                                                 record.key_id))
    return HygieneGroup(count=len(matched), top=ranked[:max(top, 0)])


def credential_hygiene(records: Sequence[CredentialRecord], now: datetime,
                       thresholds: HygieneThresholds = HygieneThresholds()) -> CredentialHygiene:
    """Counts and the most urgent credentials of each hygiene group (see the module docstring)."""
    now = _utc(now)
    total = len(records)
    records = owner_managed(records)
    horizon = now - thresholds.unused_for
    soon = now + thresholds.expiring_within
    top = thresholds.top
    early, late = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    return CredentialHygiene(
        taken_at=now, credentials=total, managed_by_azure=total - len(records),
        expiring_within_days=_days(thresholds.expiring_within),
        unused_days=_days(thresholds.unused_for), max_secret_lifetime_days=_days(thresholds.max_secret_lifetime),
        max_certificate_lifetime_days=_days(thresholds.max_certificate_lifetime),
        expiring_in_use=_group((r for r in records if r.end is not None and now < _utc(r.end) < soon
                                and used_since(r, horizon)), top, lambda r: _far(r.end, late)),
        expired=_group((r for r in records if is_expired(r, now)), top, lambda r: -_far(r.last_used, early)),
        unused=_group((r for r in records if is_unused(r, now, horizon)), top, lambda r: _far(r.last_used, early)),
        usage_unknown=_group((r for r in records if _usage_unknown(r, now, horizon)), top,
                             lambda r: _far(r.start, early)),
        over_long=_group((r for r in records if _over_long(r, thresholds)), top,
                         lambda r: -(_lifetime(r) or timedelta.max).total_seconds()),
    )


def hygiene_counts(hygiene: CredentialHygiene) -> list[tuple[str, int]]:
    """(title, count) of every group, then the managed identities' own: the numbers every reader shows."""
    return [(title, group.count) for _, title, group in hygiene.groups()] + [
        ("Managed by Azure", hygiene.managed_by_azure)]


def parse_span(text: str) -> timedelta:
    """`30d`/`12h`/`90m`/`45s` or an ISO 8601 duration (weeks to seconds) as a timedelta; ValueError otherwise."""
    value = text.strip()
    iso = _ISO_DURATION.fullmatch(value)
    if iso and value.upper() not in ("P", "PT") and not value.upper().endswith("T"):
        weeks, days, hours, minutes, seconds = (float(part) if part else 0.0 for part in iso.groups())
        try:
            span = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
        except OverflowError:
            span = MAX_SPAN * 2
    else:
        try:
            span = parse_timespan(value)
        except ValueError:
            raise ValueError(f"{text[:40]!r} is not a span such as 30d, 12h, P30D, P2W or PT36H") from None
        except OverflowError:
            span = MAX_SPAN * 2
    if span > MAX_SPAN:
        raise ValueError(f"{text[:40]!r} is longer than {MAX_SPAN.days:,} days")
    return span
