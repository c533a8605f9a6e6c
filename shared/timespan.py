"""KQL timespan literals (`15m`, `1d`, `14d`, `1.5h`) to and from timedelta."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds", "ms": "milliseconds"}
_LITERAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(d|h|ms|m|s)\s*$")


def parse_timespan(text: str) -> timedelta:
    match = _LITERAL.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a timespan such as 15m, 1h or 14d")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


def format_timespan(span: timedelta) -> str:
    """The shortest exact KQL literal: 1d, 36h, 90m, 45s."""
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
