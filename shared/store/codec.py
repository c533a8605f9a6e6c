"""StoredFinding <-> table entities: the finding row, its occurrence rows and its index rows.

Finding row   table `<prefix>findings`, PartitionKey = shard (first hex digit of the id),
              RowKey = id. Evidence/context/entities as JSON strings (see trim.py); the triage
              history as JSON split over `history_0` .. `history_<n>` (a property holds 32K
              characters), oldest entries dropped first if even those are full.
Occurrence    same table and partition, RowKey = `<id>_<occurrence id>`: one per window,
              written in the same transaction as the finding row.
Index rows    table `<prefix>index`, PartitionKey = `s~<status>`, `v~<severity>`,
              `d~<detection>`, `p~<principal id or name, lower case>` (hashed if unsafe),
              RowKey = `<inverted last_detected>_<id>` (newest first), with the few fields
              the remaining filters need.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from shared.findings import Finding
from shared.severity import severity_rank
from shared.store.keys import key_part, newest_first_key
from shared.store.model import COMMENT_MAX, HistoryEntry, StoredFinding
from shared.store.trim import PROPERTY_UNITS, TEXT_UNITS, dumps, fit_text, to_json_property

SHARDS = "0123456789abcdef"
_JSON_UNITS = {"entities": 8_000, "evidence": PROPERTY_UNITS, "context": PROPERTY_UNITS}
_TEXT_UNITS = {"detection_id": 1_000, "detection_name": 1_000, "principal_id": 1_000, "principal_name": 1_000,
               "summary": TEXT_UNITS, "comment": COMMENT_MAX, "triaged_by": 256}
HISTORY_PROPERTIES = 8  # 240K characters: room for hundreds of entries, well inside an entity's 1 MiB
_DATETIMES = ("window_start", "window_end", "first_seen", "last_seen", "triaged_at", "first_detected",
              "last_detected")


def shard(finding_id: str) -> str:
    return finding_id[:1] if finding_id[:1] in SHARDS else "x"


def occurrence_key(finding: Finding) -> str:
    return f"{finding.id}_{finding.occurrence_id}"


def plain_datetime(value: datetime | None) -> datetime | None:
    """The SDK's TablesEntityDatetime as a plain datetime (it would otherwise leak into models)."""
    return None if value is None else datetime.fromisoformat(value.isoformat())


def finding_entity(finding: StoredFinding) -> tuple[dict[str, Any], bool]:
    """The finding row and whether anything had to be trimmed to fit."""
    trimmed = False
    entity: dict[str, Any] = {
        "PartitionKey": shard(finding.id), "RowKey": finding.id, "kind": "finding", "id": finding.id,
        "severity": finding.severity, "severity_rank": severity_rank(finding.severity), "status": finding.status,
        "occurrences": finding.occurrences, "sort_key": newest_first_key(finding.last_detected, finding.id),
    }
    for name, units in _TEXT_UNITS.items():
        value = getattr(finding, name)
        if value is not None:
            entity[name], cut = fit_text(value, units)
            trimmed |= cut
    for name, units in _JSON_UNITS.items():
        value = getattr(finding, name)
        if value is not None:
            entity[name], cut = to_json_property(value, units)
            trimmed |= cut
    for name in _DATETIMES:
        value = getattr(finding, name)
        if value is not None:
            entity[name] = value
    if finding.suppression is not None:
        entity["suppression"] = to_json_property(finding.suppression.model_dump(mode="json"), 8_000)[0]
    entity["evidence_trimmed"] = finding.evidence_trimmed or trimmed
    entity.update(history_properties(finding.history))
    return entity, entity["evidence_trimmed"]


def history_properties(history: list[HistoryEntry]) -> dict[str, str]:
    """The history as JSON in chunks of at most PROPERTY_UNITS characters; the oldest entries go if it is
    longer than HISTORY_PROPERTIES chunks (the newest always stay)."""
    entries = [entry.model_dump(mode="json", by_alias=True) for entry in history]
    text = dumps(entries)
    while len(text) > PROPERTY_UNITS * HISTORY_PROPERTIES and len(entries) > 1:
        entries = entries[1:]
        text = dumps(entries)
    return {f"history_{n}": text[start:start + PROPERTY_UNITS]
            for n, start in enumerate(range(0, len(text), PROPERTY_UNITS))}


def _history(entity: dict[str, Any]) -> list[HistoryEntry]:
    text = "".join(entity.get(f"history_{n}", "") for n in range(HISTORY_PROPERTIES))
    return [HistoryEntry.model_validate(entry) for entry in json.loads(text)] if text else []


def etag_version(etag: str) -> str:
    """A short opaque version of a table row, from the ETag Table Storage gives it on every write."""
    return hashlib.sha256(etag.encode()).hexdigest()[:20]


def finding_from_entity(entity: dict[str, Any]) -> StoredFinding:
    data: dict[str, Any] = {name: entity.get(name) for name in StoredFinding.model_fields if name in entity}
    for name in _JSON_UNITS:
        if name in entity:
            data[name] = json.loads(entity[name])
    for name in _DATETIMES:
        data[name] = plain_datetime(entity.get(name))
    data["suppression"] = json.loads(entity["suppression"]) if entity.get("suppression") else None
    data["history"] = _history(entity)
    etag = getattr(entity, "metadata", {}).get("etag")
    data["version"] = etag_version(etag) if etag else None
    return StoredFinding.model_validate(data)


def index_partitions(finding: StoredFinding) -> set[str]:
    """Every index partition the finding belongs in (one row in each)."""
    partitions = {f"s~{finding.status}", f"v~{finding.severity}", key_part("d", finding.detection_id)}
    for principal in {finding.principal_id.lower(), finding.principal_name.lower()} - {""}:
        partitions.add(key_part("p", principal))
    return partitions


def index_rows(finding: StoredFinding) -> list[dict[str, Any]]:
    row_key = newest_first_key(finding.last_detected, finding.id)
    fields = {
        "RowKey": row_key, "id": finding.id, "last_detected": finding.last_detected,
        "severity_rank": severity_rank(finding.severity), "status": finding.status,
        "detection_id": fit_text(finding.detection_id, 1_000)[0],
        "principal_id": fit_text(finding.principal_id.lower(), 1_000)[0],
        "principal_name": fit_text(finding.principal_name.lower(), 1_000)[0],
    }
    return [{"PartitionKey": partition, **fields} for partition in sorted(index_partitions(finding))]


def index_keys(finding: StoredFinding) -> set[tuple[str, str]]:
    row_key = newest_first_key(finding.last_detected, finding.id)
    return {(partition, row_key) for partition in index_partitions(finding)}
