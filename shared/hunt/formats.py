"""Hunt rows as text: cells for a table, JSON and CSV values (times in ISO 8601 UTC with Z, dynamic values as
JSON, null as empty)."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

from shared.logsource.base import Row
from shared.text import utc


def plain(value: Any) -> Any:
    """A JSON-ready value."""
    if isinstance(value, datetime):
        return utc(value).isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def cell(value: Any) -> str:
    """One table or CSV cell."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return f"{utc(value):%Y-%m-%d %H:%M:%S}" + (f".{utc(value):%f}".rstrip("0").rstrip(".")) + " UTC"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(plain(value), ensure_ascii=False)
    return str(value)


def columns_of(rows: list[Row]) -> list[str]:
    return list(dict.fromkeys(name for row in rows for name in row))


def to_csv(rows: list[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names = columns_of(rows)
    writer.writerow(names)
    for row in rows:
        writer.writerow([_csv_value(row.get(name)) for name in names])
    return out.getvalue()


def _csv_value(value: Any) -> str:
    if isinstance(value, datetime):
        return plain(value)
    return cell(value)
