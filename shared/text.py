"""Human text: the one formatter for values people read in findings, the CLI, the Teams card and the email.

    join_list(["a", "b", "c"])        a, b and c
    moment(datetime)                  2026-03-13 14:25 UTC
    duration(timedelta(minutes=36))   36 min   (2 h, 3 days)
    plural(2, "time")                 2 times
    value_text(value)                 any query value: lists joined, times as above, null as "unknown"
    fill(template, row)               `{{Column}}` placeholders filled with value_text; a number followed by
                                      `word(s)` agrees with it ("1 time"), one followed by a unit (h, min,
                                      days) is a duration ("0.6 h" reads "36 min")
    safe_text(value, limit)           untrusted text made inert for display (see its docstring)
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

UNKNOWN = "unknown"
NONE = "none"
SHORT_ID = 8

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# A placeholder followed by a counted noun, maybe after a few words (`{{N}} directory change(s)`), or a unit
# (`{{N}} h`), in a template.
QUANTITY = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}(\s+(?:[A-Za-z-]+\s+){0,3})"
                      r"(?:([A-Za-z-]+)\(s\)|(h|min|days)\b)")
_UNITS = {"h": timedelta(hours=1), "min": timedelta(minutes=1), "days": timedelta(days=1)}
_ISO_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")

_CONTROL = re.compile(r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_SCHEME = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{1,20}):(//|\\\\)")
_WHITESPACE = re.compile(r"\s+")


def utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def moment(value: datetime | None, empty: str = UNKNOWN) -> str:
    """`2026-03-13 14:25 UTC`."""
    return f"{utc(value):%Y-%m-%d %H:%M} UTC" if value is not None else empty


def day(value: datetime | date | None, empty: str = "never") -> str:
    """`2026-03-13` (the UTC calendar day)."""
    if value is None:
        return empty
    return f"{utc(value) if isinstance(value, datetime) else value:%Y-%m-%d}"


def number(value: float) -> str:
    """`1,234`, `0.5`: thousands separated, at most one decimal, no trailing `.0`."""
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}".rstrip("0").rstrip(".") if abs(value) >= 0.05 else f"{value:.2g}"


def plural(count: float, word: str, many: str | None = None) -> str:
    """`1 time`, `2 times`, `1,204 findings`; `many` for an irregular plural."""
    return f"{number(count)} {word if count == 1 else many or word + 's'}"


def duration(span: timedelta) -> str:
    """`45 s`, `36 min`, `2 h`, `3 days`: the largest unit that keeps the number readable, rounded."""
    seconds = abs(span.total_seconds())
    sign = "-" if span.total_seconds() < 0 else ""
    if seconds < 60:
        return f"{sign}{round(seconds)} s"
    if seconds < 90 * 60:
        return f"{sign}{round(seconds / 60)} min"
    if seconds < 48 * 3600:
        return f"{sign}{round(seconds / 3600)} h"
    return sign + plural(round(seconds / 86400), "day")


def join_list(items: Iterable[Any], conjunction: str = "and") -> str:
    """`a`, `a and b`, `a, b and c`; each item through value_text, empty items left out."""
    parts = [text for item in items if (text := value_text(item, empty=""))]
    if not parts:
        return NONE
    if len(parts) == 1:
        return parts[0]
    return f"{', '.join(parts[:-1])} {conjunction} {parts[-1]}"


def short_id(value: str, length: int = SHORT_ID) -> str:
    """The first characters of an id, for a place where the full id is one click away."""
    return value if len(value) <= length + 1 else value[:length] + "…"


def value_text(value: Any, empty: str = UNKNOWN) -> str:
    """Any value a query or the directory returns, as a person reads it (never a Python repr)."""
    if value is None:
        return empty
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return number(value) if math.isfinite(value) else empty
    if isinstance(value, datetime):
        return moment(value)
    if isinstance(value, date):
        return day(value)
    if isinstance(value, timedelta):
        return duration(value)
    if isinstance(value, Mapping):
        return join_list(f"{key} {value_text(item)}" for key, item in value.items()) if value else NONE
    if isinstance(value, list | tuple | set | frozenset):
        return join_list(sorted(value, key=str) if isinstance(value, set | frozenset) else value)
    return _string_text(str(value), empty)


def _string_text(text: str, empty: str) -> str:
    """Strings that are really JSON arrays or ISO times (Log Analytics' dynamic and datetime text) read as such."""
    stripped = text.strip()
    if not stripped:
        return empty
    if stripped[0] in "[{" and stripped[-1] in "]}":
        try:
            parsed = json.loads(stripped)
        except ValueError:
            return stripped
        return value_text(parsed, empty)
    if _ISO_MOMENT.match(stripped):
        try:
            return moment(datetime.fromisoformat(stripped.replace("Z", "+00:00")))
        except ValueError:
            return stripped
    return stripped


def fill(template: str, row: Mapping[str, Any]) -> str:
    """A `{{Column}}` template (Sentinel's alertDetailsOverride) filled from a row, as human text."""

    def quantity(match: re.Match[str]) -> str:
        value = row.get(match.group(1))
        noun, unit = match.group(3), match.group(4)
        words = match.group(2)
        if not _is_number(value):
            return f"{value_text(value)}{words}{noun + 's' if noun else unit}"
        if noun:
            return f"{number(value)}{words}{noun if value == 1 else noun + 's'}"
        return duration(_UNITS[unit] * float(value))

    with_quantities = QUANTITY.sub(quantity, template)
    return _PLACEHOLDER.sub(lambda match: value_text(row.get(match.group(1))), with_quantities).strip()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def safe_text(value: object, limit: int) -> str:
    """Untrusted text made inert for display: one line, no control or bidi characters, URLs defanged, capped.

    Markup escaping is the renderer's job (HTML escaping in the email, TextRuns in the card); this
    removes what survives any escaping: newlines that fake extra lines, right-to-left overrides that
    disguise a name, links a client would make clickable on its own, and Adaptive Card date templates.
    """
    text = unicodedata.normalize("NFC", str(value if value is not None else ""))
    text = _CONTROL.sub("", text.replace("\n", " ").replace("\r", " ").replace("\t", " "))
    text = _WHITESPACE.sub(" ", text).strip()
    text = _SCHEME.sub(lambda m: f"{m.group(1)}[:]{m.group(2)}", text)
    text = text.replace("{{", "{ {")  # Adaptive Cards expand {{DATE(...)}} / {{TIME(...)}} even in TextRuns
    if len(text) > limit:
        text = text[: max(limit - 1, 0)].rstrip() + "…"
    return text
