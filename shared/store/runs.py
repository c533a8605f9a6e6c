"""Audit runs, per-detection checkpoints and the single-audit lease.

Runs: table `<prefix>runs`, each record twice — PartitionKey `id` (RowKey from the run id,
for get_run) and PartitionKey `started` (RowKey `<inverted started>_<run key>`, for
list_runs newest first). The record is JSON split over `record_0..record_n` properties
(64 KiB each); a record too big even for that keeps the first and last planned window per
detection and shortens error messages (`trimmed` is set).
Checkpoints and leases: table `<prefix>meta`, partitions `checkpoint` and `lease`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.data.tables import UpdateMode

from shared.store.base import StoreBase
from shared.store.codec import plain_datetime
from shared.store.keys import decode_continuation, encode_continuation, key_part, newest_first_key, query_digest, utc
from shared.store.model import RunRecord

CHUNK = 30_000
MAX_CHUNKS = 14  # 14 x 64 KiB stays under the 1 MiB entity limit with room for the other columns


def _fit_record(run: RunRecord) -> tuple[str, bool]:
    text = run.model_dump_json()
    if len(text) <= CHUNK * MAX_CHUNKS:
        return text, False
    for message_chars, ends_only in ((2000, False), (2000, True), (200, True), (40, True)):
        errors = {key: value[:message_chars] for key, value in run.errors.items()}
        windows = {key: ([w[0], w[-1]] if ends_only and len(w) > 2 else w) for key, w in run.windows.items()}
        text = run.model_copy(update={"errors": errors, "windows": windows}).model_dump_json()
        if len(text) <= CHUNK * MAX_CHUNKS:
            return text, True
    return run.model_copy(update={"errors": {}, "windows": {}, "counts": {}}).model_dump_json(), True


class RunsAndLeases(StoreBase):
    def _run_entities(self, run: RunRecord) -> list[dict[str, Any]]:
        text, trimmed = _fit_record(run)
        columns: dict[str, Any] = {"id": run.id, "status": run.status, "started": utc(run.started),
                                   "trigger": run.trigger[:1000], "trimmed": trimmed}
        if run.ended:
            columns["ended"] = utc(run.ended)
        for number, start in enumerate(range(0, len(text), CHUNK)):
            columns[f"record_{number}"] = text[start:start + CHUNK]
        run_key = key_part("r", run.id)
        return [{"PartitionKey": "id", "RowKey": run_key, **columns},
                {"PartitionKey": "started", "RowKey": newest_first_key(run.started, run_key), **columns}]

    @staticmethod
    def _run_from_entity(entity: dict[str, Any]) -> RunRecord:
        chunks = []
        while f"record_{len(chunks)}" in entity:
            chunks.append(entity[f"record_{len(chunks)}"])
        return RunRecord.model_validate_json("".join(chunks))

    def start_run(self, run: RunRecord) -> None:
        self._save_run(run)

    def update_run(self, run: RunRecord) -> None:
        """Save a running run's progress, so that if it is killed its record says how far it got."""
        self._save_run(run)

    def finish_run(self, run: RunRecord) -> None:
        self._save_run(run)

    def abandon_runs(self, found_by: str) -> list[str]:
        """Close every other run still marked `running`: it was killed or crashed, since `found_by` holds the
        audit lease. Each becomes `abandoned` with its record as last saved; returns their ids."""
        rows = self._query(self.runs, "PartitionKey eq @pk and status eq @status", {"pk": "id", "status": "running"},
                           select=["id"])
        abandoned = []
        for row in rows:
            run = self.get_run(row["id"]) if row["id"] != found_by else None
            if run is None or run.status != "running":
                continue
            run.status = "abandoned"
            run.errors["abandoned"] = (f"the run stopped without closing (killed or crashed); run {found_by} "
                                       "found it after its lease expired")
            self._save_run(run)
            abandoned.append(run.id)
        return abandoned

    def _save_run(self, run: RunRecord) -> None:
        by_id, by_time = self._run_entities(run)
        previous = self._get(self.runs, by_id["PartitionKey"], by_id["RowKey"])
        self.runs.upsert_entity(by_time, mode=UpdateMode.REPLACE)
        self.runs.upsert_entity(by_id, mode=UpdateMode.REPLACE)
        if previous is not None and previous.get("id") == run.id and utc(previous["started"]) != utc(run.started):
            self.runs.delete_entity("started", newest_first_key(previous["started"], by_id["RowKey"]))

    def get_run(self, run_id: str) -> RunRecord | None:
        entity = self._get(self.runs, "id", key_part("r", run_id))
        return self._run_from_entity(entity) if entity is not None and entity.get("id") == run_id else None

    def list_runs(self, limit: int = 20, continuation: str | None = None) -> tuple[list[RunRecord], str | None]:
        """Runs newest first (by start) and a token for the next page, or None on the last page."""
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be between 1 and 1000")
        digest = query_digest("runs")
        after = decode_continuation(self._secret(), digest, continuation) if continuation else ""
        rows = self._query(self.runs, "PartitionKey eq @pk and RowKey gt @after", {"pk": "started", "after": after},
                           results_per_page=limit + 1)
        page: list[tuple[str, RunRecord]] = []
        for row in rows:
            if len(page) == limit:
                return [run for _, run in page], encode_continuation(self._secret(), digest, page[-1][0])
            page.append((row["RowKey"], self._run_from_entity(row)))
        return [run for _, run in page], None

    def get_checkpoint(self, detection_id: str) -> datetime | None:
        entity = self._get(self.meta, "checkpoint", key_part("c", detection_id))
        if entity is None or entity.get("detection_id") != detection_id:
            return None
        return plain_datetime(entity["end"])

    def set_checkpoint(self, detection_id: str, end: datetime) -> None:
        """Where the next window of this detection starts; call only after its findings are stored."""
        self.meta.upsert_entity({"PartitionKey": "checkpoint", "RowKey": key_part("c", detection_id),
                                 "detection_id": detection_id, "end": utc(end)}, mode=UpdateMode.REPLACE)

    def acquire_lease(self, name: str, owner: str, duration: timedelta, now: datetime) -> bool:
        """Take the named lease (or renew one's own) unless someone else holds an unexpired one.

        Insert-if-absent or an ETag-conditional replace: of two racing acquirers exactly one wins.
        """
        entity = {"PartitionKey": "lease", "RowKey": key_part("l", name), "name": name, "owner": owner,
                  "expires": utc(now) + duration}
        current = self._get(self.meta, "lease", entity["RowKey"])
        if current is None:
            try:
                self.meta.create_entity(entity)
                return True
            except ResourceExistsError:
                return False
        if current["owner"] != owner and utc(current["expires"]) > utc(now):
            return False
        try:
            self.meta.update_entity(entity, mode=UpdateMode.REPLACE, etag=current.metadata["etag"],
                                    match_condition=MatchConditions.IfNotModified)
            return True
        except HttpResponseError as error:
            if error.status_code in (404, 412):
                return False
            raise

    def lease_holder(self, name: str) -> tuple[str, datetime] | None:
        """Who holds the named lease and until when (it may have expired), or None if nobody does."""
        current = self._get(self.meta, "lease", key_part("l", name))
        return None if current is None else (current["owner"], utc(current["expires"]))

    def release_lease(self, name: str, owner: str) -> bool:
        """Give the lease up if `owner` holds it; False if it was not theirs (or already gone)."""
        current = self._get(self.meta, "lease", key_part("l", name))
        if current is None or current["owner"] != owner:
            return False
        try:
            self.meta.delete_entity("lease", current["RowKey"], etag=current.metadata["etag"],
                                    match_condition=MatchConditions.IfNotModified)
            return True
        except HttpResponseError as error:
            if error.status_code == 412:
                return False
            raise
