"""What changed since the last delivered digest, and the trend of open findings over recent runs.

A channel's baseline is the set of findings that were open (new or acknowledged) when its last digest
was delivered. Against the findings' states now and the digest's pending findings:

    new         pending now, first stored after the baseline (per severity)
    reopened    open now, not open at the baseline, and not new (resolved or false positive, then fired again)
    resolved    open at the baseline, not open now (resolved, false positive, suppressed, or gone)
    still open  open at the baseline and now

Baselines keep ids shortened to ID_CHARS hex digits (64 bits: no collision among any realistic number of
findings) so that tens of thousands fit in one table entity.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime

from pydantic import BaseModel, Field

from shared.severity import SEVERITIES
from shared.store.model import ID_CHARS, DigestBaseline, FindingState, StoredFinding

OPEN_STATUSES = frozenset({"new", "acknowledged"})
TREND_RUNS = 7


class DigestChanges(BaseModel):
    since: datetime | None = Field(description="When the last digest was delivered; None: this is the first")
    new: dict[str, int] = Field(default_factory=dict, description="severity -> findings new since then")
    reopened: int = 0
    resolved: int = 0
    still_open: int = 0


class TrendPoint(BaseModel):
    run_id: str
    at: datetime
    open: dict[str, int] = Field(description="severity -> open findings at the end of the run")


def short(finding_id: str) -> str:
    return finding_id[:ID_CHARS]


def open_ids(states: Mapping[str, FindingState]) -> list[str]:
    return sorted(short(fid) for fid, state in states.items() if state.status in OPEN_STATUSES)


def open_counts(states: Mapping[str, FindingState]) -> dict[str, int]:
    """Open findings per severity, most severe first, every severity present."""
    counted = Counter(state.severity for state in states.values() if state.status in OPEN_STATUSES)
    return {severity: counted.get(severity, 0) for severity in reversed(SEVERITIES)}


def digest_changes(states: Mapping[str, FindingState], pending: Iterable[StoredFinding],
                   baseline: DigestBaseline | None) -> DigestChanges:
    """The headline numbers of a digest (see the module docstring)."""
    since = baseline.at if baseline else None
    new = [f for f in pending if since is None or f.first_detected >= since]
    counted = Counter(finding.severity for finding in new)
    changes = DigestChanges(since=since, new={s: counted.get(s, 0) for s in reversed(SEVERITIES)})
    if baseline is None or not baseline.complete:
        return changes
    now_open = set(open_ids(states))
    before = set(baseline.open_ids)
    new_ids = {short(finding.id) for finding in new}
    changes.reopened = len(now_open - before - new_ids)
    changes.resolved = len(before - now_open)
    changes.still_open = len(before & now_open)
    return changes
