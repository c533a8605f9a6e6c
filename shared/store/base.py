"""State shared by the store's parts: the five tables, the transaction log, the token secret."""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Sequence
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, TableEntity, TableServiceClient, UpdateMode

from shared.store.batch import TransactionLog, delete, submit
from shared.store.codec import finding_entity, index_keys, index_rows
from shared.store.model import StoredFinding

TABLE_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9]{1,50}")
SECRET_KEY = ("secret", "continuation")


class StoreBase:
    """Table clients and helpers; see tables.TableFindingStore for the whole store."""

    def __init__(self, service: TableServiceClient, prefix: str = "wiaudit", channels: Sequence[str] = (),
                 export_changes: bool = False) -> None:
        if not TABLE_PREFIX.fullmatch(prefix):
            raise ValueError(f"table prefix {prefix!r} must be 2-51 letters/digits starting with a letter")
        self.service = service
        self.prefix = prefix
        self.channels = tuple(channels)
        self.export_changes = export_changes  # queue every change of a finding for Log Analytics (exports.py)
        self.transactions = TransactionLog()
        self.findings = service.get_table_client(f"{prefix}findings")
        self.index = service.get_table_client(f"{prefix}index")
        self.outbox = service.get_table_client(f"{prefix}outbox")
        self.runs = service.get_table_client(f"{prefix}runs")
        self.meta = service.get_table_client(f"{prefix}meta")
        self._secret_value: bytes | None = None

    @property
    def tables(self) -> tuple[TableClient, ...]:
        return (self.findings, self.index, self.outbox, self.runs, self.meta)

    def ensure_tables(self) -> None:
        """Create the tables and the per-store token secret if missing; safe to call on every start."""
        for table in self.tables:
            self.service.create_table_if_not_exists(table.table_name)
        self._secret()

    @staticmethod
    def _get(table: TableClient, partition: str, row: str) -> TableEntity | None:
        try:
            return table.get_entity(partition, row)
        except ResourceNotFoundError:
            return None

    def _secret(self) -> bytes:
        """The HMAC key for continuation tokens: random, created once, kept in the meta table."""
        if self._secret_value is None:
            partition, row = SECRET_KEY
            entity = self._get(self.meta, partition, row)
            if entity is None:
                with contextlib.suppress(ResourceExistsError):  # else another instance made it first: use theirs
                    self.meta.create_entity({"PartitionKey": partition, "RowKey": row, "key": secrets.token_hex(32)})
                entity = self.meta.get_entity(partition, row)
            self._secret_value = bytes.fromhex(entity["key"])
        return self._secret_value

    def _replace_finding(self, previous: StoredFinding, updated: StoredFinding, etag: str) -> dict[str, Any] | None:
        """Write a changed finding in the crash-safe order: index rows of the new state, the finding row only if
        it still has the ETag read (None when another writer changed it first: read again), the old index rows
        removed. Returns the write's metadata (its new ETag)."""
        row, _ = finding_entity(updated)
        submit(self.index, [(updated.id, [("upsert", index_row, {"mode": UpdateMode.REPLACE})])
                            for index_row in index_rows(updated)], self.transactions)
        try:
            written = self.findings.update_entity(row, mode=UpdateMode.REPLACE, etag=etag,
                                                  match_condition=MatchConditions.IfNotModified)
        except HttpResponseError as error:
            if error.status_code == 412:
                return None
            raise
        delete(self.index, index_keys(previous) - index_keys(updated), self.transactions)
        return written

    def _query(self, table: TableClient, query_filter: str, parameters: dict[str, Any], **kwargs: Any):
        """Parameterised query; the SDK quotes the values, user text never becomes filter syntax."""
        return table.query_entities(query_filter, parameters=parameters, **kwargs)
