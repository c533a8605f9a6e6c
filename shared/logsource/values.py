"""Coerce log values to the Log Analytics column types, whatever format they arrived in."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

DUCKDB_TYPES = {
    "String": "VARCHAR", "Guid": "VARCHAR", "DateTime": "TIMESTAMP", "Dynamic": "JSON",
    "Int": "BIGINT", "Long": "BIGINT", "Real": "DOUBLE", "Bool": "BOOLEAN",
}

_FRACTION = re.compile(r"(\.\d{6})\d+")
_PORTAL_FORMATS = ("%m/%d/%Y, %I:%M:%S.%f %p", "%m/%d/%Y, %I:%M:%S %p", "%m/%d/%Y %I:%M:%S %p")


def parse_datetime(value: Any) -> datetime:
    """ISO 8601 (with Log Analytics' seven fractional digits) or the portal's CSV format, as UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = _FRACTION.sub(r"\1", str(value).strip()).replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = _parse_portal(text)
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_portal(text: str) -> datetime:
    for fmt in _PORTAL_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ValueError(f"{text!r} is not a date and time")


def _dynamic(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _string(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        if value.strip().lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"{value!r} is not a boolean")
        return value.strip().lower() in ("true", "1")
    return bool(value)


def _datetime_text(value: Any) -> str:
    return parse_datetime(value).replace(tzinfo=None).isoformat()


_COERCE = {
    "String": _string, "Guid": _string, "DateTime": _datetime_text, "Dynamic": _dynamic,
    "Int": lambda v: int(float(v)), "Long": lambda v: int(float(v)), "Real": float, "Bool": _bool,
}


def coerce(value: Any, la_type: str) -> Any:
    """The value as the column type wants it; None and "" (a CSV's empty cell) stay empty.

    Raises ValueError when the value cannot be that type.
    """
    if value is None or (value == "" and la_type != "String"):
        return None
    return _COERCE[la_type](value)
