"""Check every catalog query with Microsoft's Kusto parser against the table schemas."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.catalog.loader import Catalog
from shared.catalog.render import header
from shared.kql.validator import validate_queries

_START = datetime(2026, 1, 1, tzinfo=UTC)
_END = datetime(2026, 1, 2, tzinfo=UTC)


def validate_catalog(catalog: Catalog) -> dict[str, list[str]]:
    """Problems per detection id (empty list: valid). Parser errors, deprecated functions, and
    entity mappings that name a column the Kusto parser does not see in the output."""
    checks = validate_queries(
        [(detection.id, detection.query) for detection in catalog],
        headers={detection.id: header(detection, _START, _END) for detection in catalog},
    )
    problems: dict[str, list[str]] = {}
    for detection in catalog:
        check = checks[detection.id]
        found = [f"query line {d.line}, column {d.column}: {d.code} {d.message}" for d in check.errors]
        found += [f"entity mapping {key} names {column!r}, which the query does not output"
                  for key, column in detection.entity_columns().items() if column not in check.columns]
        problems[detection.id] = found
    return problems
