"""Log values as the Log Analytics column types, converted in SQL: a value that cannot be its column's type is a
problem in words, never a traceback, and the record's other values are not guessed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

DUCKDB_TYPES = {
    "String": "VARCHAR", "Guid": "VARCHAR", "DateTime": "TIMESTAMP", "Dynamic": "JSON",
    "Int": "BIGINT", "Long": "BIGINT", "Real": "DOUBLE", "Bool": "BOOLEAN",
}
MAX_NESTING = 500  # deeper JSON than this cannot come back out of a query (Python's parser stops near 1,000)
NUMERIC_CODES = {"ResultType"}  # codes Log Analytics writes as "7000215", which a float export writes "7000215.0"

_FRACTION = re.compile(r"(\.\d{6})\d+")
_PORTAL_FORMATS = ("%m/%d/%Y, %I:%M:%S.%f %p", "%m/%d/%Y, %I:%M:%S %p", "%m/%d/%Y %I:%M:%S %p")
_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"')
_NOT_BRACKETS = re.compile(r"[^\[\]{}]")
_PORTAL_SQL = "['%m/%d/%Y, %I:%M:%S.%g %p', '%m/%d/%Y, %I:%M:%S %p', '%m/%d/%Y %I:%M:%S %p']"


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


@dataclass(frozen=True)
class Conversion:
    typed: str  # SQL: the value parsed as the column's type, before range checks (computed once, named by the caller)
    value: str  # SQL: the value as the column's type, NULL when empty or unusable
    problem: str  # SQL: why a given value is unusable, NULL when it is fine


def convert(column: str, la_type: str, json_value: str, text: str, typed: str) -> Conversion:
    """SQL converting `json_value` (a JSON expression, NULL when absent) whose text is `text` (`json ->> '$'`) to
    `la_type`. `value` and `problem` read `json_value`, `text` and `typed` as names of columns the caller computed
    before (so each value is parsed once). None and "" (a CSV's empty cell) stay empty."""
    given = f"({text} IS NOT NULL AND {text} <> '')"
    shown = (f"'column {_sql(column)}: ' || chr(39) || left({text}, 80) || CASE WHEN length({text}) > 80 "
             "THEN '...' ELSE '' END || chr(39)")
    if la_type in ("String", "Guid"):
        return Conversion("NULL", _string(column, json_value, text), "NULL")
    if la_type == "DateTime":
        return Conversion(
            f"CASE WHEN {given} THEN coalesce(CAST(try_cast({text} AS TIMESTAMPTZ) AS TIMESTAMP), "
            f"try_strptime({text}, {_PORTAL_SQL})) END",
            f"CASE WHEN year({typed}) BETWEEN 1 AND 9999 THEN {typed} END",
            f"CASE WHEN {given} AND {typed} IS NULL THEN {shown} || ' is not a date and time' "
            f"WHEN NOT year({typed}) BETWEEN 1 AND 9999 THEN {shown} || ' is out of range (years 1 to 9999)' END")
    if la_type in ("Int", "Long"):
        number = f"try_cast({text} AS DOUBLE)"
        return Conversion(
            f"CASE WHEN NOT {given} THEN NULL WHEN contains({text}, '.') OR contains(lower({text}), 'e') "
            f"THEN try_cast(trunc({number}) AS BIGINT) ELSE try_cast({text} AS BIGINT) END",
            typed,
            f"CASE WHEN {given} AND {typed} IS NULL THEN {shown} || CASE WHEN {number} IS NULL "
            f"THEN ' is not a number' WHEN NOT isfinite({number}) THEN ' is not a finite number' "
            "ELSE ' is out of range (a 64-bit integer)' END END")
    if la_type == "Real":
        return Conversion(f"CASE WHEN {given} THEN try_cast({text} AS DOUBLE) END", typed,
                          f"CASE WHEN {given} AND {typed} IS NULL THEN {shown} || ' is not a number' END")
    if la_type == "Bool":
        return Conversion(f"CASE WHEN {given} THEN (CASE lower(trim({text})) WHEN 'true' THEN true WHEN '1' THEN true "
                          "WHEN 'false' THEN false WHEN '0' THEN false END) END", typed,
                          f"CASE WHEN {given} AND {typed} IS NULL THEN {shown} || ' is not a boolean' END")
    if la_type == "Dynamic":
        return Conversion(
            "NULL",
            f"CASE WHEN {given} THEN (CASE WHEN {_is_string(json_value)} AND json_valid({text}) "
            f"THEN json({text}) ELSE {json_value} END) END", "NULL")
    raise ValueError(f"column {column}: unknown Log Analytics type {la_type}")


def _string(column: str, json_value: str, text: str) -> str:
    """Numbers as Log Analytics writes them: 7000215.0 (a float export of an error code) is "7000215"."""
    integral = (f"(CASE WHEN NOT {_is_string(json_value)} AND json_type({json_value}) = 'DOUBLE' "
                f"AND try_cast({text} AS DOUBLE) = "
                f"trunc(try_cast({text} AS DOUBLE)) AND abs(try_cast({text} AS DOUBLE)) < 1e15 "
                f"THEN CAST(CAST(try_cast({text} AS DOUBLE) AS BIGINT) AS VARCHAR) ELSE {text} END)")
    if column in NUMERIC_CODES:
        return f"regexp_replace({integral}, '^(-?[0-9]+)\\.0+$', '\\1')"
    return integral


def _is_string(json_value: str) -> str:
    """SQL: whether a JSON value (as json_extract writes it) is a string, read from its first character: it spares
    parsing the value (a whole object, for a Dynamic column) only to learn its type."""
    return f"coalesce(starts_with({json_value}::VARCHAR, '\"'), false)"


def _sql(text: str) -> str:
    return text.replace("'", "''")


def nesting(text: str) -> int:
    """How deep a JSON text nests (brackets inside strings do not count)."""
    depth = deepest = 0
    for bracket in _NOT_BRACKETS.sub("", _STRINGS.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif bracket in "]}":
            depth -= 1
    return deepest
