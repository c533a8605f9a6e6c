"""Finding queries for the HTTP API, each served by an index partition and a row-key range.

Every index row key is `<inverted last_detected>_<id>`, so inside any index partition rows are
newest first and a since/until filter is a row-key range. The query picks the most selective
index the filters allow — principal, else detection, else status, else the severity partitions
at or above min_severity, else all four status partitions — and merges the chosen partitions
by row key (every finding is in exactly one partition of the severity and status indexes, so
the merge is complete and duplicate-free). The other filters are checked on the small index
rows; each surviving candidate is read by id and checked again, which also skips index rows
left stale by a crash, and deletes those that are provably stale: not among the finding's index
rows now, and written before the finding's last write (a write puts the index rows of its new state
down before the finding, so a row of a state being written is never older than the finding).
The position is the last row key returned, carried in an HMAC-signed continuation token bound
to the store's secret and to the query's filters.
"""

from __future__ import annotations

import contextlib
import heapq
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from itertools import islice
from operator import itemgetter
from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.data.tables import TableEntity

from shared.severity import SEVERITIES, severity_rank
from shared.store.base import StoreBase
from shared.store.batch import delete
from shared.store.codec import SHARDS, finding_from_entity, index_keys, shard
from shared.store.findings import FindingWrites
from shared.store.keys import (
    at_or_after,
    before,
    decode_continuation,
    encode_continuation,
    key_part,
    newest_first_key,
    query_digest,
    utc,
)
from shared.store.model import STATUSES, StoredFinding, check_status

MAX_LIMIT = 1000
FETCH_THREADS = 8
_INDEX_COLUMNS = ["PartitionKey", "RowKey", "Timestamp", "id", "last_detected", "severity_rank", "status",
                  "detection_id", "principal_id", "principal_name"]


class _Filters:
    def __init__(self, since: datetime | None, until: datetime | None, min_severity: str | None,
                 detection: str | None, principal: str | None, status: str | None) -> None:
        self.since = utc(since) if since else None
        self.until = utc(until) if until else None
        self.rank = severity_rank(min_severity) if min_severity else None
        self.detection = detection or None
        self.principal = principal.lower() if principal else None
        self.status = check_status(status) if status else None

    def digest(self) -> str:
        return query_digest("findings", since=self.since, until=self.until, rank=self.rank,
                            detection=self.detection, principal=self.principal, status=self.status)

    def partitions(self) -> list[str]:
        """The index partitions to read: the most selective index the filters allow."""
        if self.principal:
            return [key_part("p", self.principal)]
        if self.detection:
            return [key_part("d", self.detection)]
        if self.status:
            return [f"s~{self.status}"]
        if self.rank is not None:
            return [f"v~{name}" for name in SEVERITIES if severity_rank(name) >= self.rank]
        return [f"s~{name}" for name in STATUSES]

    def matches(self, status: str, rank: int, detection: str, principals: set[str], last_detected: datetime) -> bool:
        return ((self.status is None or status == self.status)
                and (self.rank is None or rank >= self.rank)
                and (self.detection is None or detection == self.detection)
                and (self.principal is None or self.principal in principals)
                and (self.since is None or utc(last_detected) >= self.since)
                and (self.until is None or utc(last_detected) < self.until))


class FindingQueries(FindingWrites, StoreBase):
    def query_findings(self, since: datetime | None = None, until: datetime | None = None,
                       min_severity: str | None = None, detection: str | None = None, principal: str | None = None,
                       status: str | None = None, limit: int = 100,
                       continuation: str | None = None) -> tuple[list[StoredFinding], str | None]:
        """Findings newest first (by last_detected) and a token for the next page, or None on the last page.

        since is inclusive, until exclusive. ValueError for a bad severity/status/limit;
        InvalidContinuation (a ValueError) for a token this store did not issue for these filters.
        """
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
        filters = _Filters(since, until, min_severity, detection, principal, status)
        digest = filters.digest()
        after = decode_continuation(self._secret(), digest, continuation) if continuation else ""
        lower = max(after, before(filters.until) if filters.until else "")
        upper = at_or_after(filters.since) if filters.since else "~"
        streams = [self._index_rows(partition, lower, upper, limit) for partition in filters.partitions()]
        candidates = (row for row in heapq.merge(*streams, key=itemgetter("RowKey"))
                      if filters.matches(row["status"], row["severity_rank"], row["detection_id"],
                                         {row["principal_id"], row["principal_name"]}, row["last_detected"]))
        page: list[tuple[str, StoredFinding]] = []
        stale: list[tuple[str, str]] = []
        token = None
        with ThreadPoolExecutor(max_workers=FETCH_THREADS) as pool:
            while token is None and (chunk := list(islice(candidates, limit + 1 - len(page)))):
                for row, entity in zip(chunk, pool.map(self._finding_row, [row["id"] for row in chunk]), strict=True):
                    finding = finding_from_entity(entity) if entity is not None else None
                    if finding is None or not self._current(row, finding, filters):
                        if finding is not None and _orphan(row, entity, finding):
                            stale.append((row["PartitionKey"], row["RowKey"]))
                        continue  # a stale index row (crash between writes): the finding has moved on
                    if len(page) == limit:
                        token = encode_continuation(self._secret(), digest, page[-1][0])
                        break
                    page.append((row["RowKey"], finding))
        self._drop_orphans(stale)
        return [found for _, found in page], token

    def _finding_row(self, finding_id: str) -> TableEntity | None:
        entity = self._get(self.findings, shard(finding_id), finding_id) if finding_id else None
        return entity if entity is not None and entity.get("kind") == "finding" else None

    def _drop_orphans(self, keys: list[tuple[str, str]]) -> None:
        """Delete index rows a crash left behind; a failure here is not the reader's: the next read tries again."""
        with contextlib.suppress(HttpResponseError):
            delete(self.index, keys, self.transactions)

    def findings_by_prefix(self, prefix: str, limit: int = 10) -> list[StoredFinding]:
        """Findings whose id starts with `prefix` (any case), at most `limit`; one partition, a row-key range."""
        prefix = prefix.strip().lower()
        if not prefix or not all(char in SHARDS for char in prefix):
            return []
        rows = self._query(self.findings, "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi and kind eq @kind",
                           {"pk": shard(prefix), "lo": prefix, "hi": f"{prefix}~", "kind": "finding"},
                           results_per_page=limit)
        return [finding_from_entity(row) for row in islice(rows, limit)]

    def _index_rows(self, partition: str, lower: str, upper: str, limit: int) -> Iterator[dict[str, Any]]:
        return iter(self._query(self.index, "PartitionKey eq @pk and RowKey gt @lo and RowKey lt @hi",
                                {"pk": partition, "lo": lower, "hi": upper}, select=_INDEX_COLUMNS,
                                results_per_page=min(MAX_LIMIT, max(limit + 1, 50))))

    @staticmethod
    def _current(row: dict[str, Any], finding: StoredFinding, filters: _Filters) -> bool:
        """The index row describes the finding as it is now, and the finding itself passes the filters."""
        return (newest_first_key(finding.last_detected, finding.id) == row["RowKey"]
                and finding.status == row["status"]
                and filters.matches(finding.status, severity_rank(finding.severity), finding.detection_id,
                                    {finding.principal_id.lower(), finding.principal_name.lower()},
                                    finding.last_detected))


def _orphan(row: TableEntity, entity: TableEntity, finding: StoredFinding) -> bool:
    """An index row of an older state of the finding: not one of its rows now, and older than its last write."""
    return ((row["PartitionKey"], row["RowKey"]) not in index_keys(finding)
            and row.metadata["timestamp"] < entity.metadata["timestamp"])
