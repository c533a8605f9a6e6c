"""The embedded LogSource: KQL over local log files, run by duckdb-kql with a fixed clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb_kql

from shared.logsource.base import LogQueryError, Row
from shared.logsource.database import LoadReport, LogDatabase


class EmbeddedLogSource:
    """Answers queries from a LogDatabase; `now` stands in for the clock Kusto would read."""

    def __init__(self, database: LogDatabase, now: datetime) -> None:
        self.database = database
        self.now = now

    @classmethod
    def from_folder(cls, folder: Path, now: datetime) -> tuple[EmbeddedLogSource, LoadReport]:
        database = LogDatabase()
        report = database.load_folder(folder)
        return cls(database, now), report

    def query(self, kql: str, start: datetime, end: datetime) -> list[Row]:
        try:
            relation = duckdb_kql.query(self.database.connection, kql, query_now=self.now)
        except Exception as error:  # duckdb-kql raises KqlError and duckdb errors alike
            raise LogQueryError(f"{type(error).__name__}: {error}") from error
        return rows_of(relation)


def rows_of(relation: Any) -> list[Row]:
    """Rows as dicts: timestamps as UTC datetimes, dynamic values parsed from JSON."""
    names = relation.columns
    converters = [_converter(str(kind)) for kind in relation.types]
    return [{name: convert(value) for name, convert, value in zip(names, converters, values, strict=True)}
            for values in relation.fetchall()]


def _converter(kind: str):
    if kind == "JSON":
        return lambda value: None if value is None else json.loads(value)
    if kind.startswith("TIMESTAMP"):
        return lambda value: None if value is None else (
            value if value.tzinfo else value.replace(tzinfo=UTC))
    return lambda value: value
