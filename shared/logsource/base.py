"""The LogSource port: run one KQL query over a time window and return its rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

Row = dict[str, Any]


class LogQueryError(RuntimeError):
    """A query could not be answered completely; the message says why."""


class IncompleteResult(LogQueryError):
    """The service cut the result at its size or row limit; a shorter detection window may fit."""


class LogSource(Protocol):
    def query(self, kql: str, start: datetime, end: datetime) -> list[Row]:
        """Rows of `kql`, which reads logs from `start` (lookback included) up to `end`."""
        ...
