"""The FindingStore: findings, runs, checkpoints, leases and the outbox in Azure Table Storage."""

from shared.store.keys import InvalidContinuation
from shared.store.model import (
           STATUSES,
           FindingChanged,
           HistoryEntry,
           RunRecord,
           Status,
           StoredFinding,
           Triage,
           UpsertResult,
)
from shared.store.tables import TableFindingStore

__all__ = ["STATUSES", "FindingChanged", "HistoryEntry", "InvalidContinuation", "RunRecord", "Status",
           "StoredFinding", "TableFindingStore", "Triage", "UpsertResult"]
