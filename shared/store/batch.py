"""Entity group transactions: one partition and at most 100 operations each, counted.

Azure rejects a bigger batch; Azurite answers garbage (BadStatusLine), so the limit is
enforced here and never left to the service. Operations that belong together (a finding
row and its occurrence rows) are kept in the same transaction.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from azure.core.exceptions import HttpResponseError
from azure.data.tables import TableClient, TableTransactionError

MAX_OPERATIONS = 100
WRITE_THREADS = 8
Operation = tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], dict[str, Any]]
CONFLICT_STATUS = {409, 412}
T = TypeVar("T")


@dataclass(frozen=True)
class Transaction:
    table: str
    partition: str
    operations: int


class TransactionLog:
    """Every transaction a store submitted, so callers and tests can see how writes were batched."""

    def __init__(self) -> None:
        self.entries: list[Transaction] = []
        self._lock = threading.Lock()

    def add(self, entry: Transaction) -> None:
        with self._lock:
            self.entries.append(entry)

    def __len__(self) -> int:
        return len(self.entries)

    def sizes(self, table: str, partition: str) -> list[int]:
        return [entry.operations for entry in self.entries if entry.table == table and entry.partition == partition]


def _chunks(groups: Sequence[tuple[Hashable, list[Operation]]]) -> Iterable[list[tuple[Hashable, list[Operation]]]]:
    chunk: list[tuple[Hashable, list[Operation]]] = []
    size = 0
    for tag, operations in groups:
        for start in range(0, len(operations), MAX_OPERATIONS):  # a group over 100 has to be split
            part = operations[start:start + MAX_OPERATIONS]
            if size + len(part) > MAX_OPERATIONS:
                yield chunk
                chunk, size = [], 0
            chunk.append((tag, part))
            size += len(part)
    if chunk:
        yield chunk


def _send(table: TableClient, operations: list[Operation]) -> None:
    """One transaction; a lone operation goes as a plain request (same atomicity, a fraction of the cost)."""
    if len(operations) > 1:
        table.submit_transaction(operations)
        return
    kind, entity, *rest = operations[0]
    options = rest[0] if rest else {}
    if kind == "create":
        table.create_entity(entity)
    elif kind == "update":
        table.update_entity(entity, **options)
    elif kind == "upsert":
        table.upsert_entity(entity, **options)
    elif kind == "delete":
        table.delete_entity(entity["PartitionKey"], entity["RowKey"], **options)
    else:
        raise ValueError(f"unknown table operation {kind!r}")


def submit(table: TableClient, groups: Iterable[tuple[Hashable, list[Operation]]], log: TransactionLog,
           *, tolerate_conflicts: bool = False) -> tuple[int, set[Hashable]]:
    """Submit the operations batched per partition; returns (transactions, tags of groups that conflicted).

    Partitions are independent, so they are written in parallel; a partition's chunks go in order.
    A conflict (409 exists / 412 ETag changed) fails its whole transaction; with tolerate_conflicts the
    tags of that transaction come back for the caller to re-read and retry, otherwise it raises.
    """
    by_partition: dict[str, list[tuple[Hashable, list[Operation]]]] = defaultdict(list)
    for tag, operations in groups:
        if operations:
            by_partition[operations[0][1]["PartitionKey"]].append((tag, operations))

    def write_partition(partition: str) -> tuple[int, set[Hashable]]:
        transactions, conflicted = 0, set()
        for chunk in _chunks(by_partition[partition]):
            operations = [operation for _, part in chunk for operation in part]
            try:
                _send(table, operations)
            except HttpResponseError as error:
                if not (tolerate_conflicts and error.status_code in CONFLICT_STATUS):
                    raise
                conflicted.update(tag for tag, _ in chunk)
            finally:
                transactions += 1
                log.add(Transaction(table.table_name, partition, len(operations)))
        return transactions, conflicted

    results = _each_partition(write_partition, list(by_partition))
    return sum(count for count, _ in results), set().union(*(tags for _, tags in results))


def delete(table: TableClient, keys: Iterable[tuple[str, str]], log: TransactionLog) -> int:
    """Delete rows, batched per partition; rows already gone are fine (such a batch falls back to single deletes)."""
    by_partition: dict[str, list[str]] = defaultdict(list)
    for partition, row in sorted(set(keys)):
        by_partition[partition].append(row)

    def delete_partition(partition: str) -> int:
        rows = by_partition[partition]
        for start in range(0, len(rows), MAX_OPERATIONS):
            part = rows[start:start + MAX_OPERATIONS]
            log.add(Transaction(table.table_name, partition, len(part)))
            try:
                _send(table, [("delete", {"PartitionKey": partition, "RowKey": row}) for row in part])
            except TableTransactionError as error:
                if error.status_code != 404:
                    raise
                for row in part:
                    table.delete_entity(partition, row)  # a missing row is not an error here
        return (len(rows) + MAX_OPERATIONS - 1) // MAX_OPERATIONS

    return sum(_each_partition(delete_partition, list(by_partition)))


def _each_partition(work: Callable[[str], T], partitions: list[str]) -> list[T]:
    if len(partitions) <= 1:
        return [work(partition) for partition in partitions]
    with ThreadPoolExecutor(max_workers=min(WRITE_THREADS, len(partitions))) as pool:
        return list(pool.map(work, partitions))
