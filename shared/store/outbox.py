"""Notification outbox: which stored findings each channel still has to announce.

Table `<prefix>outbox`, PartitionKey `o~<channel>`, one row per pending finding. Rows are
written before the finding itself (see findings.py), and deleted only by mark_notified after a
successful post: a failed post leaves them pending, a delivered one is never sent again.
"""

from __future__ import annotations

from collections.abc import Iterable

from azure.data.tables import TableClient, UpdateMode

from shared.severity import severity_rank
from shared.store.base import StoreBase
from shared.store.batch import TransactionLog, delete, submit
from shared.store.keys import key_part
from shared.store.model import StoredFinding


def enqueue(outbox: TableClient, channel: str, finding_ids: Iterable[str], log: TransactionLog) -> int:
    """Put the ids in the channel's outbox (idempotent); returns the number of transactions."""
    partition = key_part("o", channel)
    rows = [(fid, [("upsert", {"PartitionKey": partition, "RowKey": key_part("f", fid), "id": fid,
                               "channel": channel}, {"mode": UpdateMode.REPLACE})]) for fid in sorted(set(finding_ids))]
    return submit(outbox, rows, log)[0]


class Outbox(StoreBase):
    def enqueue_notifications(self, channel: str, finding_ids: Iterable[str]) -> None:
        enqueue(self.outbox, channel, finding_ids, self.transactions)

    def pending_notifications(self, channel: str) -> list[StoredFinding]:
        """Findings waiting for this channel, most severe and newest first.

        An id whose finding is not stored (yet) stays pending and is not returned; a finding suppressed since it
        was queued is not returned either (a suppressed finding is never announced).
        """
        rows = self._query(self.outbox, "PartitionKey eq @pk", {"pk": key_part("o", channel)},
                           select=["id", "channel"])
        found = []
        for row in rows:
            if row.get("channel") == channel:
                finding = self.get_finding(row["id"])  # type: ignore[attr-defined]
                if finding is not None and finding.status != "suppressed":
                    found.append(finding)
        found.sort(key=lambda f: f.last_detected, reverse=True)
        found.sort(key=lambda f: severity_rank(f.severity), reverse=True)
        return found

    def mark_notified(self, channel: str, finding_ids: Iterable[str]) -> None:
        """Remove delivered findings from the channel's outbox (ids not pending are ignored)."""
        partition = key_part("o", channel)
        delete(self.outbox, [(partition, key_part("f", fid)) for fid in finding_ids], self.transactions)
