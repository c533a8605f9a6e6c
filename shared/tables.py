"""The Log Analytics column schemas the detections read (the project's copy, in shared/schemas)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SCHEMA_DIR = Path(__file__).parent / "schemas"


@dataclass(frozen=True)
class TableSchema:
    name: str
    columns: dict[str, str]  # column name -> Log Analytics type (String, DateTime, Dynamic, ...)


@cache
def table_schemas() -> dict[str, TableSchema]:
    """Every known table by name, read once."""
    schemas = {}
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        doc = json.loads(path.read_text())
        columns = {prop["Name"]: prop["Type"] for prop in doc["Properties"]}
        columns.setdefault("Type", "String")
        schemas[doc["Name"]] = TableSchema(doc["Name"], columns)
    return schemas
