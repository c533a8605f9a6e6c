"""What the digests need from the store: every finding's state, and each channel's last delivered digest.

States come from the status index partitions (`s~<status>`: id and severity rank, no finding reads);
an id left in two status partitions by a crash between index writes is settled by reading the finding.
Baselines live in the meta table, partition `digest`, one row per channel, the JSON split over
`record_0..record_n` properties (64 KiB each).
"""

from __future__ import annotations

from azure.data.tables import UpdateMode

from shared.severity import SEVERITIES
from shared.store.base import StoreBase
from shared.store.keys import key_part
from shared.store.model import STATUSES, DigestBaseline, FindingState

CHUNK = 30_000
MAX_CHUNKS = 14


class DigestRecords(StoreBase):
    def finding_states(self) -> dict[str, FindingState]:
        """id -> status and severity of every stored finding."""
        states: dict[str, FindingState] = {}
        doubtful: set[str] = set()
        for status in STATUSES:
            for row in self._query(self.index, "PartitionKey eq @pk", {"pk": f"s~{status}"},
                                   select=["id", "status", "severity_rank"], results_per_page=1000):
                if row["id"] in states and states[row["id"]].status != row["status"]:
                    doubtful.add(row["id"])
                states[row["id"]] = FindingState(status=row["status"], severity=SEVERITIES[row["severity_rank"]])
        for finding_id in doubtful:
            finding = self.get_finding(finding_id)  # type: ignore[attr-defined]
            if finding is None:
                del states[finding_id]
            else:
                states[finding_id] = FindingState(status=finding.status, severity=finding.severity)
        return states

    def last_digest(self, channel: str) -> DigestBaseline | None:
        entity = self._get(self.meta, "digest", key_part("g", channel))
        if entity is None or entity.get("channel") != channel:
            return None
        chunks = []
        while f"record_{len(chunks)}" in entity:
            chunks.append(entity[f"record_{len(chunks)}"])
        return DigestBaseline.model_validate_json("".join(chunks))

    def record_digest(self, channel: str, baseline: DigestBaseline) -> None:
        """Remember what the channel's delivered digest saw; the next digest's changes are counted from it."""
        text = baseline.model_dump_json()
        if len(text) > CHUNK * MAX_CHUNKS:  # more open findings than fit: keep when, lose what (counts only)
            text = baseline.model_copy(update={"open_ids": [], "complete": False}).model_dump_json()
        entity = {"PartitionKey": "digest", "RowKey": key_part("g", channel), "channel": channel}
        for number, start in enumerate(range(0, len(text), CHUNK)):
            entity[f"record_{number}"] = text[start:start + CHUNK]
        self.meta.upsert_entity(entity, mode=UpdateMode.REPLACE)
