"""Deliver the changes of findings that Log Analytics has not accepted yet.

Pending until accepted: each change stays in the store's outbox (shared/store/exports.py) until the chunk that
carried it was accepted, and only then is removed. Never doubled by a retry: a change whose upload failed is sent
again with the same ChangeId and TimeGenerated; only when the service took a chunk but its answer was lost (a
timeout) can a row arrive twice, and then both copies carry the same ChangeId (see records.py).

One deliverer at a time: the audit delivers under its own lease (shared/audit/lease.py), and `deliver_unless_audit`
(a triage's delivery, outside any audit: shared/export/after_triage.py) takes that same lease, without waiting, for as
long as one delivery lasts; an audit that starts meanwhile waits for it (lease.py). So two deliverers never send the
same pending change at once, and no delivery reads a finding an audit is still writing (a change is queued just
before its finding is written; a delivery in between would take a new finding's change for a lost one and drop it).
When an audit holds the lease, the changes stay queued for it: its delivery sends all that is pending, and reads
the outbox again after each upload, so a change queued meanwhile goes too.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from shared.audit.lease import DELIVERY_OWNER, LEASE, wall_clock
from shared.export.records import change_record

if TYPE_CHECKING:
    from shared.export.ingestion import LogsIngestionSink
    from shared.store.exports import ChangeExports, PendingChange
    from shared.store.tables import TableFindingStore

DELIVERY_LEASE = timedelta(minutes=10)  # longer than one delivery with azure-core's retries; frees a killed one


@dataclass(frozen=True)
class ExportReport:
    sent: int
    pending: int  # still waiting after this delivery
    reason: str = ""  # why some are still waiting


def deliver_changes(store: ChangeExports, sink: LogsIngestionSink) -> ExportReport:
    """Send every pending change once; changes queued while it sends (a triage during an audit's delivery) go
    with it too, and a change that failed is not tried again before the next delivery."""
    tried: set[str] = set()
    sent, failed, reasons = 0, 0, []
    while changes := [change for change in store.pending_changes() if change.id not in tried]:
        tried.update(change.id for change in changes)
        accepted, not_accepted, why = _send(store, sink, changes)
        sent, failed, reasons = sent + accepted, failed + not_accepted, reasons + why
    return ExportReport(sent, failed, "; ".join(dict.fromkeys(reasons)))


def _send(store: ChangeExports, sink: LogsIngestionSink,
          changes: list[PendingChange]) -> tuple[int, int, list[str]]:
    """One upload of these changes: how many were accepted, how many not, and why."""
    rows, gone = [], []
    for change in changes:
        finding = store.get_finding(change.finding_id)  # type: ignore[attr-defined]
        if finding is None:  # the change was queued but its finding never stored (a lost write race)
            gone.append(change.id)
            continue
        rows.append(change_record(finding.model_copy(update={"status": change.status}), change.change, change.at,
                                  run_id=change.run_id, by=change.by, comment=change.comment))
    store.changes_exported(gone)
    if not rows:
        return 0, 0, []
    outcome = sink.upload(rows)
    accepted = [row["ChangeId"] for row in rows if row["ChangeId"] not in outcome.failed]
    store.changes_exported(accepted)
    return len(accepted), len(outcome.failed), outcome.reasons


def deliver_unless_audit(store: TableFindingStore, sink: LogsIngestionSink,
                         clock: Callable[[], datetime] = wall_clock) -> ExportReport | None:
    """Deliver the pending changes under the audit lease, taken without waiting; None when an audit (or another
    delivery) holds it, and then the changes stay queued for the holder."""
    owner = f"{DELIVERY_OWNER}{secrets.token_hex(6)}"
    if not store.acquire_lease(LEASE, owner, DELIVERY_LEASE, clock()):
        return None
    try:
        return deliver_changes(store, sink)
    finally:
        store.release_lease(LEASE, owner)
