"""Changes of findings waiting to go to Log Analytics (WorkloadIdentityFindings_CL), in the outbox table.

PartitionKey `x~loganalytics`, RowKey `c~<change id>`: one row per change (new, recurred, updated, triage) with who,
when, the status it left and the run. A row is written before the change itself (the intent first, as the
notification outbox does), so a crash in between leaves it pending, and deleted once Log Analytics accepted the
upload that carried it; an upload that failed leaves it for the next delivery. The finding's facts are read when
the row is sent, so a row stays small whatever the evidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from azure.data.tables import UpdateMode

from shared.export.records import Change, change_id
from shared.store.base import StoreBase
from shared.store.batch import delete, submit
from shared.store.keys import key_part, utc
from shared.store.model import StoredFinding

PARTITION = key_part("x", "loganalytics")


@dataclass(frozen=True)
class PendingChange:
    finding_id: str
    change: Change
    at: datetime
    status: str
    by: str = ""
    comment: str = ""
    run_id: str = ""

    @property
    def id(self) -> str:
        return change_id(self.finding_id, self.change, self.at, self.by)


def change_of(finding: StoredFinding, change: Change, at: datetime, *, by: str = "", comment: str = "",
              run_id: str = "") -> PendingChange:
    return PendingChange(finding.id, change, utc(at), finding.status, by, comment, run_id)


class ChangeExports(StoreBase):
    def record_changes(self, changes: Sequence[PendingChange]) -> int:
        """Queue changes for Log Analytics (idempotent by change id); returns the transactions. Nothing is queued
        unless the store exports changes."""
        if not self.export_changes or not changes:
            return 0
        rows = [(change.id, [("upsert", {"PartitionKey": PARTITION, "RowKey": key_part("c", change.id),
                                         "finding_id": change.finding_id, "change": change.change,
                                         "at": change.at, "status": change.status, "by": change.by,
                                         "comment": change.comment[:4000], "run_id": change.run_id},
                              {"mode": UpdateMode.REPLACE})]) for change in changes]
        return submit(self.outbox, rows, self.transactions)[0]

    def pending_changes(self) -> list[PendingChange]:
        """Changes not yet accepted by Log Analytics, oldest first."""
        rows = self._query(self.outbox, "PartitionKey eq @pk", {"pk": PARTITION})
        found = [PendingChange(row["finding_id"], row["change"], utc(row["at"]), row["status"], row.get("by") or "",
                               row.get("comment") or "", row.get("run_id") or "") for row in rows]
        return sorted(found, key=lambda change: change.at)

    def changes_exported(self, change_ids: Iterable[str]) -> None:
        delete(self.outbox, [(PARTITION, key_part("c", cid)) for cid in change_ids], self.transactions)
