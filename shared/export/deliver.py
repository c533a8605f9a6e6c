"""Deliver the changes of findings that Log Analytics has not accepted yet.

Pending until accepted: each change stays in the store's outbox (shared/store/exports.py) until the chunk that
carried it was accepted, and only then is removed. Never doubled by a retry: a change whose upload failed is sent
again with the same ChangeId and TimeGenerated; only when the service took a chunk but its answer was lost (a
timeout) can a row arrive twice, and then both copies carry the same ChangeId (see records.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.export.records import change_record

if TYPE_CHECKING:
    from shared.export.ingestion import LogsIngestionSink
    from shared.store.exports import ChangeExports


@dataclass(frozen=True)
class ExportReport:
    sent: int
    pending: int  # still waiting after this delivery
    reason: str = ""  # why some are still waiting


def deliver_changes(store: ChangeExports, sink: LogsIngestionSink) -> ExportReport:
    changes = store.pending_changes()
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
        return ExportReport(0, 0)
    outcome = sink.upload(rows)
    accepted = [row["ChangeId"] for row in rows if row["ChangeId"] not in outcome.failed]
    store.changes_exported(accepted)
    return ExportReport(len(accepted), len(outcome.failed), "; ".join(dict.fromkeys(outcome.reasons)))
