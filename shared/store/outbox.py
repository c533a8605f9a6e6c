"""Notification outbox: which stored findings each channel still has to announce, and the digests in flight.

Table `<prefix>outbox`:

- PartitionKey `o~<channel>`, RowKey `f~<finding id>`: one row per pending finding. Rows are written before
  the finding itself (see findings.py) and deleted once a digest carrying them is delivered: a failed post
  leaves them pending, a delivered one is never sent again. A row being sent carries the digest's id.
- PartitionKey `d~<channel>`, RowKey `g~<digest id>`: the delivery intent of one digest, written before it
  is sent (state `sending`), then `delivered` (its findings leave the outbox, then the row goes) or
  `uncertain`. A digest left `sending` by a crash, or that a channel may have received without saying so,
  cannot be checked (Teams webhooks and Graph sendMail have no idempotency key): its findings count as
  announced and the row stays `uncertain` until a later digest has told its readers so.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from azure.data.tables import TableClient, UpdateMode

from shared.severity import severity_rank
from shared.store.base import StoreBase
from shared.store.batch import TransactionLog, delete, submit
from shared.store.keys import key_part, utc
from shared.store.model import PendingDelivery, StoredFinding


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

    # --- digests in flight -----------------------------------------------------------------------------

    def begin_delivery(self, channel: str, delivery: PendingDelivery, finding_ids: Sequence[str]) -> None:
        """Record that `delivery` is about to be sent with these findings: first each outbox row names it,
        then the intent row (a crash between the two leaves the findings plainly pending)."""
        partition = key_part("o", channel)
        tagged = [(fid, [("upsert", {"PartitionKey": partition, "RowKey": key_part("f", fid), "digest": delivery.id},
                          {"mode": UpdateMode.MERGE})]) for fid in sorted(set(finding_ids))]
        submit(self.outbox, tagged, self.transactions)
        self.outbox.upsert_entity(self._intent_entity(channel, delivery.model_copy(update={"state": "sending"})),
                                  mode=UpdateMode.REPLACE)

    def delivered(self, channel: str, delivery: PendingDelivery) -> None:
        """The channel accepted the digest: its findings leave the outbox, and so do the uncertain deliveries
        it told its readers about."""
        self.outbox.upsert_entity(self._intent_entity(channel, delivery.model_copy(update={"state": "delivered"})),
                                  mode=UpdateMode.REPLACE)
        self._drop_tagged(channel, delivery.id)
        self._forget(channel, [*delivery.reports, delivery.id])

    def failed(self, channel: str, delivery: PendingDelivery) -> None:
        """The channel certainly did not take the digest: its findings stay pending for the next one."""
        self._forget(channel, [delivery.id])

    def uncertain(self, channel: str, delivery: PendingDelivery, reason: str) -> PendingDelivery:
        """The channel may have taken the digest without saying so: its findings count as announced (never
        sent twice) and the delivery waits to be reported by a later digest."""
        delivery = delivery.model_copy(update={"state": "uncertain", "reason": reason[:1000]})
        self.outbox.upsert_entity(self._intent_entity(channel, delivery), mode=UpdateMode.REPLACE)
        self._drop_tagged(channel, delivery.id)
        return delivery

    def settle_deliveries(self, channel: str, interrupted: str) -> list[PendingDelivery]:
        """Finish the bookkeeping an interrupted run left; returns the deliveries a digest still has to report.

        `delivered`: its findings leave the outbox. `sending` (the run stopped between recording the intent
        and recording the outcome): it may or may not have gone out, so it becomes uncertain for `interrupted`.
        """
        open_deliveries = self.deliveries(channel)
        settled: set[str] = set()
        for delivery in open_deliveries:
            if delivery.state == "delivered":
                self._drop_tagged(channel, delivery.id)
                self._forget(channel, [*delivery.reports, delivery.id])
                settled.update([*delivery.reports, delivery.id])
        return [delivery if delivery.state == "uncertain" else self.uncertain(channel, delivery, interrupted)
                for delivery in open_deliveries if delivery.id not in settled]

    def deliveries(self, channel: str) -> list[PendingDelivery]:
        """The channel's digests whose delivery is not settled, oldest first."""
        rows = self._query(self.outbox, "PartitionKey eq @pk", {"pk": key_part("d", channel)})
        found = [PendingDelivery(id=row["id"], state=row["state"], attempted_at=utc(row["attempted_at"]),
                                 findings=row["findings"], reason=row.get("reason") or "",
                                 reports=json.loads(row.get("reports") or "[]")) for row in rows]
        return sorted(found, key=lambda delivery: delivery.attempted_at)

    def _drop_tagged(self, channel: str, delivery_id: str) -> None:
        """Take the findings the delivery carried out of the outbox."""
        partition = key_part("o", channel)
        rows = self._query(self.outbox, "PartitionKey eq @pk and digest eq @digest",
                           {"pk": partition, "digest": delivery_id}, select=["RowKey"])
        delete(self.outbox, [(partition, row["RowKey"]) for row in rows], self.transactions)

    def _forget(self, channel: str, delivery_ids: Iterable[str]) -> None:
        partition = key_part("d", channel)
        delete(self.outbox, [(partition, key_part("g", did)) for did in delivery_ids], self.transactions)

    @staticmethod
    def _intent_entity(channel: str, delivery: PendingDelivery) -> dict:
        return {"PartitionKey": key_part("d", channel), "RowKey": key_part("g", delivery.id), "id": delivery.id,
                "state": delivery.state, "attempted_at": utc(delivery.attempted_at), "findings": delivery.findings,
                "reason": delivery.reason[:1000], "reports": json.dumps(delivery.reports)}
