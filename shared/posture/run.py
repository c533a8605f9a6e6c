"""Run the posture checks as of one moment: read credential usage from the sign-in logs, build
the credential inventory from the directory snapshot, evaluate every check, and return Findings.

A posture finding belongs to the audit day that ends at midnight UTC on or before `now`:
window [floor(now, 1d) - 1d, floor(now, 1d)). Running again the same day lands on the same
occurrence (no duplicate); the next day's run records the next occurrence of the same finding.
The audit pipeline runs it as of each audit day's end (see `audit_days`), so a missed day is
judged the same way the missed run would have judged it, with the directory as it is now.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.audit.plan import floor_to, plan_windows
from shared.directory.context import DirectoryIndex
from shared.directory.model import DirectorySnapshot
from shared.findings import Finding
from shared.logsource.base import LogSource
from shared.posture.catalog import PostureCheck
from shared.posture.checks import CHECKS, Hit
from shared.posture.inventory import InventorySettings, build_inventory, utc
from shared.posture.model import CredentialRecord
from shared.posture.usage import COVERAGE_GRACE, SignInUsage, read_usage

DAY = timedelta(days=1)
POSTURE_CHECKPOINT = "posture"  # the store checkpoint: end of the last audit day judged
DEFAULT_USAGE_DAYS = 30


@dataclass
class PostureResult:
    findings: list[Finding]
    inventory: list[CredentialRecord]
    errors: dict[str, str] = field(default_factory=dict)  # check id -> why it failed (the others still ran)


def run_posture(checks: Iterable[PostureCheck], snapshot: DirectorySnapshot, source: LogSource, now: datetime,
                overrides: Mapping[str, Mapping[str, Any]] | None = None) -> PostureResult:
    """Every check as of `now`. `overrides`: check id -> parameter values. Raises LogQueryError when the
    sign-in logs cannot be read (then no check can tell use from disuse)."""
    checks = list(checks)
    params = {check.id: check.values((overrides or {}).get(check.id)) for check in checks}
    usage = read_usage(source, now, usage_lookback(checks, params))
    return evaluate(checks, snapshot, usage, now, params)


def evaluate(checks: list[PostureCheck], snapshot: DirectorySnapshot, usage: SignInUsage, now: datetime,
             params: Mapping[str, dict[str, Any]]) -> PostureResult:
    inventory = build_inventory(snapshot, usage, now, inventory_settings(checks, params))
    index = DirectoryIndex(snapshot)
    result = PostureResult([], inventory)
    for check in checks:
        try:
            hits = CHECKS[check.check](inventory, index, usage, params[check.id], now)
        except Exception as error:  # a broken check is recorded; the others still run
            result.errors[check.id] = f"{type(error).__name__}: {error}"
            continue
        result.findings += [to_finding(check, hit, now) for hit in hits]
    return result


def usage_lookback(checks: Iterable[PostureCheck], params: Mapping[str, dict[str, Any]]) -> timedelta:
    """As far back as the most demanding check needs sign-ins, plus the coverage grace."""
    days = [params[check.id][check.usageLookback] for check in checks if check.usageLookback]
    return timedelta(days=max([DEFAULT_USAGE_DAYS, *days])) + COVERAGE_GRACE


def inventory_settings(checks: Iterable[PostureCheck], params: Mapping[str, dict[str, Any]]) -> InventorySettings:
    """The inventory's `expiring` status and `usage_known` follow the checks' `expiring_days` and `unused_days`."""
    values: dict[str, int] = {}
    for check in checks:
        for name in ("expiring_days", "unused_days"):
            if name in params[check.id]:
                values.setdefault(name, params[check.id][name])
    return InventorySettings(**values)


def audit_window(now: datetime) -> tuple[datetime, datetime]:
    end = floor_to(utc(now), DAY)
    return end - DAY, end


def audit_days(checkpoint: datetime | None, now: datetime, ingestion_delay: timedelta,
               max_lookback: timedelta) -> list[datetime]:
    """The ends of the audit days to judge: those after the checkpoint whose logs have arrived (at most
    `max_lookback` back). A first run judges only the latest day, since a directory read today says
    little about last week; with nothing new, the latest day is judged again (the same occurrence)."""
    ends = [end for _, end in plan_windows(DAY, checkpoint, now, ingestion_delay, max_lookback)]
    if checkpoint is None:
        return ends[-1:] or [floor_to(now - ingestion_delay, DAY)]
    return ends or [checkpoint]


def to_finding(check: PostureCheck, hit: Hit, now: datetime) -> Finding:
    start, end = audit_window(now)
    entities = {"Account.AadUserId": hit.principal_id}
    if hit.key_id:
        entities["Credential.KeyId"] = hit.key_id
    entities.update(hit.entities)
    moment = utc(now).astimezone(UTC)
    return Finding(detection_id=check.id, detection_name=check.name, severity=hit.severity or check.severity,
                   principal_id=hit.principal_id, principal_name=hit.principal_name, entities=entities,
                   window_start=start, window_end=end, first_seen=moment, last_seen=moment, summary=hit.summary,
                   evidence=hit.evidence)
