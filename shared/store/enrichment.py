"""Findings stored while the directory could not be read, until a run with a good inventory enriches them.

Table `<prefix>meta`, PartitionKey `unenriched`, RowKey = finding id: written before the finding itself, so a
crash in between leaves a marker for a finding that is not there (skipped and removed), never a finding without
its marker. A run with a good inventory gives each marked finding its directory context (and through it the
privileged-severity raise), in the same crash-safe order as any change of a finding: index rows of the new state,
the finding row conditional on the ETag read, the old index rows removed; then the marker goes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from azure.data.tables import UpdateMode

from shared.store.base import StoreBase
from shared.store.batch import delete, submit
from shared.store.codec import finding_from_entity, shard
from shared.store.model import StoredFinding

PARTITION = "unenriched"
ATTEMPTS = 5


class LateEnrichment(StoreBase):
    def mark_unenriched(self, finding_ids: Iterable[str]) -> None:
        """Remember findings about to be stored without directory context."""
        rows = [(finding_id, [("upsert", {"PartitionKey": PARTITION, "RowKey": finding_id},
                               {"mode": UpdateMode.REPLACE})]) for finding_id in sorted(set(finding_ids))]
        submit(self.meta, rows, self.transactions)

    def unenriched(self) -> list[str]:
        """Ids of the findings stored without directory context and not enriched since."""
        return [row["RowKey"] for row in self._query(self.meta, "PartitionKey eq @pk", {"pk": PARTITION},
                                                     select=["RowKey"])]

    def enrich_stored(self, finding_id: str, enrich: Callable[[StoredFinding], StoredFinding]) -> bool:
        """Apply `enrich` to the stored finding and drop its marker; False if it kept changing (the marker stays
        for the next run). A marker without its finding is dropped."""
        for _ in range(ATTEMPTS):
            entity = self._get(self.findings, shard(finding_id), finding_id)
            if entity is None or entity.get("kind") != "finding":
                break
            previous = finding_from_entity(entity)
            if self._replace_finding(previous, enrich(previous), entity.metadata["etag"]) is not None:
                break
        else:
            return False
        delete(self.meta, [(PARTITION, finding_id)], self.transactions)
        return True
