"""Storing findings: idempotent upsert by fingerprint, recurrence, triage.

Write order (each step idempotent, so a crash part-way is repaired by re-running the window):
outbox rows for new findings -> index rows of the new state -> finding row + occurrence rows
(one transaction per partition chunk; conditional on the ETag read, so a concurrent triage is
never overwritten) -> deletion of index rows of the old state. Queries re-check every index
row against its finding, so a row left over by a crash is skipped, never returned.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.data.tables import TableEntity, UpdateMode

from shared.export.records import Change
from shared.findings import Finding
from shared.store.batch import Operation, delete, submit
from shared.store.codec import (
    etag_version,
    finding_entity,
    finding_from_entity,
    index_keys,
    index_rows,
    occurrence_key,
    shard,
)
from shared.store.exports import ChangeExports, change_of
from shared.store.history import apply_suppression, apply_triage, reopen_on_recurrence
from shared.store.keys import utc
from shared.store.model import FindingChanged, StoredFinding, Triage, UpsertResult
from shared.store.outbox import enqueue

MAX_ATTEMPTS = 5
BACKOFF = 0.2  # seconds before the second attempt at a conflicted finding, doubled for each one after
TRIAGE_ATTEMPTS = 20  # analysts and automations changing one finding at once each get through, one at a time
READ_THREADS = 8
_FACTS = ("detection_id", "detection_name", "severity", "principal_id", "principal_name", "entities",
          "window_start", "window_end", "summary", "evidence", "context")


@dataclass
class _State:
    """What the table holds for one finding id: its row (or None) and its occurrence row keys."""

    entity: TableEntity | None
    occurrences: set[str] = field(default_factory=set)


@dataclass
class _Plan:
    id: str
    kind: str  # new | reopened | recurring | unchanged
    stored: StoredFinding | None = None
    operations: list[Operation] = field(default_factory=list)
    old_index: set[tuple[str, str]] = field(default_factory=set)
    run_id: str = ""


# what a stored plan is, as a row of WorkloadIdentityFindings_CL says it (shared/export/records.py)
_CHANGES: dict[str, Change] = {"new": "new", "suppressed": "new", "reopened": "recurred", "recurring": "updated"}


def _min(*values: datetime | None) -> datetime | None:
    present = [utc(value) for value in values if value is not None]
    return min(present) if present else None


def _max(*values: datetime | None) -> datetime | None:
    present = [utc(value) for value in values if value is not None]
    return max(present) if present else None


class FindingWrites(ChangeExports):
    def get_finding(self, finding_id: str) -> StoredFinding | None:
        entity = self._get(self.findings, shard(finding_id), finding_id) if finding_id else None
        return finding_from_entity(entity) if entity is not None and entity.get("kind") == "finding" else None

    def _read_state(self, finding_id: str) -> _State:
        rows = self._query(self.findings, "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
                           {"pk": shard(finding_id), "lo": finding_id, "hi": f"{finding_id}`"})
        state = _State(None)
        for row in rows:
            if row["RowKey"] == finding_id:
                state.entity = row
            else:
                state.occurrences.add(row["RowKey"])
        return state

    def _read_states(self, ids: Sequence[str]) -> dict[str, _State]:
        with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
            return dict(zip(ids, pool.map(self._read_state, ids), strict=True))

    def upsert_findings(self, findings: Sequence[Finding], run_id: str, now: datetime) -> UpsertResult:
        """Store a run's findings: new ones created, recurring ones updated (triage kept), re-runs no-ops.

        A finding changed by someone else between read and write is read again and retried, with backoff; one
        that still conflicts after MAX_ATTEMPTS is left out and listed in `result.conflicted` (the others are
        stored), so the caller can keep its window for the next run."""
        windows: dict[str, dict[str, Finding]] = defaultdict(dict)
        for finding in findings:
            windows[finding.id][finding.occurrence_id] = finding
        now = utc(now)
        result = UpsertResult()
        pending = sorted(windows)
        for attempt in range(MAX_ATTEMPTS):
            if not pending:
                break
            if attempt:
                time.sleep(BACKOFF * 2 ** (attempt - 1) * random.uniform(0.5, 1.0))  # jitter: racers drift apart
            states = self._read_states(pending)
            plans = {fid: self._plan(fid, list(windows[fid].values()), states[fid], run_id, now) for fid in pending}
            conflicted, transactions = self._write(list(plans.values()))
            result.transactions += transactions
            for fid, plan in plans.items():
                if fid not in conflicted:
                    getattr(result, plan.kind).append(fid)
                    if plan.kind == "reopened":
                        result.new.append(fid)
            pending = sorted(conflicted)
        result.conflicted = pending
        return result

    def _plan(self, finding_id: str, windows: list[Finding], state: _State, run_id: str, now: datetime) -> _Plan:
        fresh = sorted((f for f in windows if occurrence_key(f) not in state.occurrences),
                       key=lambda f: utc(f.window_end))
        if not fresh:
            return _Plan(finding_id, "unchanged")
        latest = fresh[-1]
        facts = {name: getattr(latest, name) for name in _FACTS}
        first_seen = _min(*(f.first_seen for f in fresh))
        last_seen = _max(*(f.last_seen for f in fresh))
        operations: list[Operation] = []
        if state.entity is None:
            stored = StoredFinding(id=finding_id, **facts, first_seen=first_seen, last_seen=last_seen,
                                   first_detected=now, last_detected=now, occurrences=len(fresh))
            suppressed = apply_suppression(stored, latest.suppression, now)
            stored, kind = (suppressed, "suppressed") if suppressed else (stored, "new")
            old_index = set()
            entity, _ = finding_entity(stored)
            operations.append(("create", entity))
        else:
            previous = finding_from_entity(state.entity)
            newer = utc(latest.window_end) >= utc(previous.window_end)
            update: dict[str, Any] = dict(facts, evidence_trimmed=False) if newer else {}
            update.update(first_seen=_min(previous.first_seen, first_seen),
                          last_seen=_max(previous.last_seen, last_seen), last_detected=now,
                          occurrences=len(state.occurrences) + len(fresh))
            stored = previous.model_copy(update=update)
            kind, old_index = "recurring", index_keys(previous)
            changed = apply_suppression(stored, latest.suppression, now)
            if changed is None:
                changed = reopen_on_recurrence(stored, latest.window_start, latest.window_end, now)
            if changed is not None:
                stored, kind = changed, "reopened" if changed.status == "new" else "recurring"
            entity, _ = finding_entity(stored)
            operations.append(("update", entity, {"mode": UpdateMode.REPLACE, "etag": state.entity.metadata["etag"],
                                                  "match_condition": MatchConditions.IfNotModified}))
        stored.evidence_trimmed = entity["evidence_trimmed"]
        for finding in fresh:
            operations.append(("upsert", {
                "PartitionKey": shard(finding_id), "RowKey": occurrence_key(finding), "kind": "occurrence",
                "id": finding_id, "window_start": finding.window_start, "window_end": finding.window_end,
                "run_id": run_id, "detected": now}, {"mode": UpdateMode.REPLACE}))
        return _Plan(finding_id, kind, stored, operations, old_index, run_id)

    def _write(self, plans: list[_Plan]) -> tuple[set[str], int]:
        """Write the planned changes in the crash-safe order; returns (ids that hit a conflict, transactions)."""
        changed = [plan for plan in plans if plan.stored is not None]
        new = [plan.id for plan in changed if plan.kind in ("new", "reopened")]
        transactions = sum(enqueue(self.outbox, channel, new, self.transactions) for channel in self.channels)
        transactions += self.record_changes([change_of(plan.stored, _CHANGES[plan.kind], plan.stored.last_detected,
                                                       run_id=plan.run_id) for plan in changed])
        upserts = [(plan.id, [("upsert", row, {"mode": UpdateMode.REPLACE})]) for plan in changed
                   for row in index_rows(plan.stored)]
        transactions += submit(self.index, upserts, self.transactions)[0]
        count, conflicted = submit(self.findings, [(plan.id, plan.operations) for plan in changed],
                                   self.transactions, tolerate_conflicts=True)
        transactions += count
        stale = [key for plan in changed if plan.id not in conflicted
                 for key in plan.old_index - index_keys(plan.stored)]
        transactions += delete(self.index, stale, self.transactions)
        return {str(tag) for tag in conflicted}, transactions

    def triage(self, finding_id: str, change: Triage, now: datetime,
               expected_versions: frozenset[str] | None = None) -> StoredFinding:
        """Apply an analyst's change and append it to the history; returns the finding as stored.

        Only the fields the change gives are changed. With `expected_versions` the change applies only to one of
        those versions of the finding (FindingChanged otherwise); without, it applies to whatever is current, and a
        concurrent write makes it re-read and apply again, so both changes are kept. KeyError for an unknown id.
        """
        for attempt in range(TRIAGE_ATTEMPTS):
            if attempt:
                time.sleep(random.uniform(0, 0.02 * attempt))  # let the writer that won finish before re-reading
            entity = self._get(self.findings, shard(finding_id), finding_id) if finding_id else None
            if entity is None or entity.get("kind") != "finding":
                raise KeyError(finding_id)
            previous = finding_from_entity(entity)
            if expected_versions is not None and previous.version not in expected_versions:
                raise FindingChanged(previous)
            updated = apply_triage(previous, change, now)
            if updated is None:
                return previous
            self.record_changes([change_of(updated, "triage", now, by=change.by, comment=change.comment or "")])
            written = self._replace_finding(previous, updated, entity.metadata["etag"])
            if written is not None:
                return updated.model_copy(update={"version": etag_version(written["etag"])})
        raise RuntimeError(f"finding {finding_id} kept changing during triage, gave up")

