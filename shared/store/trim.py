"""Fit free-form data into Table Storage properties without ever failing the write.

Limits (Azure and Azurite alike): 64 KiB per property, i.e. 32K UTF-16 code units for a
string; 1 MiB per entity; 255 properties. Evidence, context and entities are stored as
JSON strings, ASCII-escaped (so the length in characters is the length in UTF-16 units
and lone surrogates cannot break the request). Too-big JSON is trimmed in steps: long
strings and lists cut with a marker, then deep nesting collapsed, then the largest
top-level members dropped, and as a last resort a stub that says what was there.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any

PROPERTY_UNITS = 30_000  # a safe margin under 32,768 UTF-16 units
TEXT_UNITS = 4_000  # plain text properties (names, summary)

# (longest string kept, longest list/dict kept, deepest nesting kept), gentlest first.
_STEPS = ((4000, 200, 32), (1000, 50, 16), (200, 20, 8), (60, 5, 4), (20, 2, 2))


MAX_DEPTH = 64


def jsonable(value: Any) -> Any:
    """The JSON form of a query row value: datetimes as ISO text, bytes as base64, sets as lists.

    Nesting deeper than MAX_DEPTH is replaced by a marker (see `nesting_cut`).
    """
    return _jsonable(value, 0, [])


def nesting_cut(value: Any) -> bool:
    """Whether `jsonable(value)` had to replace nesting deeper than MAX_DEPTH."""
    hit: list[bool] = []
    _jsonable(value, 0, hit)
    return bool(hit)


def _jsonable(value: Any, depth: int, hit: list[bool]) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, Mapping | list | tuple | set | frozenset) and depth >= MAX_DEPTH:
        hit.append(True)
        return "…[nested too deep]"
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item, depth + 1, hit) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(item, depth + 1, hit) for item in value]
    return str(value)


def to_json_property(value: Any, units: int = PROPERTY_UNITS) -> tuple[str, bool]:
    """JSON text of any value within `units` characters, and whether anything had to be cut."""
    hit: list[bool] = []
    text, trimmed = fit_json(_jsonable(value, 0, hit), units)
    return text, trimmed or bool(hit)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"))


def _cut(value: Any, max_str: int, max_items: int, max_depth: int, depth: int = 0) -> Any:
    if isinstance(value, str):
        return value if len(value) <= max_str else f"{value[:max_str]}…[{len(value) - max_str} more chars]"
    if isinstance(value, dict | list) and depth >= max_depth:
        return f"…[{type(value).__name__} nested too deep]"
    if isinstance(value, list):
        kept = [_cut(item, max_str, max_items, max_depth, depth + 1) for item in value[:max_items]]
        return [*kept, f"…[{len(value) - max_items} more items]"] if len(value) > max_items else kept
    if isinstance(value, dict):
        items = list(value.items())
        kept = {_cut(key, max_str, max_items, max_depth): _cut(item, max_str, max_items, max_depth, depth + 1)
                for key, item in items[:max_items]}
        if len(items) > max_items:
            kept["…"] = f"[{len(items) - max_items} more keys]"
        return kept
    return value


def fit_json(value: Any, units: int = PROPERTY_UNITS) -> tuple[str, bool]:
    """JSON text of `value` (already jsonable) within `units` characters, and whether it had to be trimmed."""
    text = dumps(value)
    if len(text) <= units:
        return text, False
    for max_str, max_items, max_depth in _STEPS:
        trimmed = _cut(value, max_str, max_items, max_depth)
        text = dumps(trimmed)
        if len(text) <= units:
            return text, True
    if isinstance(trimmed, dict):  # drop the biggest members until it fits
        sizes = sorted(trimmed, key=lambda key: len(dumps(trimmed[key])), reverse=True)
        for key in sizes:
            trimmed[key] = "…[dropped: too large]"
            text = dumps(trimmed)
            if len(text) <= units:
                return text, True
    return dumps({"…": f"[{type(value).__name__} of {len(dumps(value))} characters dropped: too large]"}), True


def fit_text(value: str, units: int = TEXT_UNITS) -> tuple[str, bool]:
    """Plain text within `units` UTF-16 units, lone surrogates replaced; and whether it was cut."""
    clean = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if len(clean.encode("utf-16-le")) // 2 <= units:
        return clean, clean != value
    cut = clean[: units // 2 - 20]  # at most 2 units per character
    return f"{cut}…[{len(clean) - len(cut)} more chars]", True
