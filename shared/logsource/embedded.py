"""The embedded LogSource: KQL over local log files, run by duckdb-kql with a fixed clock."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.kql.rewrite import rewrite
from shared.logsource.base import LogQueryError, Row
from shared.logsource.database import LoadReport, LogDatabase
from shared.logsource.values import parse_datetime

_WINDOW_HEADER = re.compile(r"^let WindowStart = datetime\(([^)]*)\); let WindowEnd = datetime\(([^)]*)\);")
_WINDOW_DECLARATION = "declare query_parameters(WindowStart:datetime, WindowEnd:datetime);"


class EmbeddedLogSource:
    """Answers queries from a LogDatabase; `now` stands in for the clock Kusto would read.

    Translating KQL to SQL (an ANTLR parse in Python) costs far more than running it, and a
    detection runs the same text window after window. So the window header is turned into
    query parameters and each distinct text is translated once; only the values change.
    """

    def __init__(self, database: LogDatabase, now: datetime, *, rewriting: bool = True) -> None:
        self.database = database
        self.now = now
        self.rewriting = rewriting  # off only to measure what the rewrite layer adds (benchmarks/reach.py)
        self._translations: dict[tuple[str, int], Any] = {}

    @classmethod
    def from_folder(cls, folder: Path, now: datetime) -> tuple[EmbeddedLogSource, LoadReport]:
        database = LogDatabase()
        report = database.load_folder(folder)
        return cls(database, now), report

    def query(self, kql: str, start: datetime, end: datetime) -> list[Row]:
        try:
            relation = self._relation(rewrite(kql, columns=self._columns_of) if self.rewriting else kql)
        except Exception as error:  # duckdb-kql raises KqlError and duckdb errors alike
            raise LogQueryError(f"{type(error).__name__}: {error}") from error
        return rows_of(relation)

    def _columns_of(self, kql: str) -> list[str]:
        """The output columns of a query, without running it: what a rewrite of project-reorder needs."""
        return list(self._relation(kql).columns)

    def _relation(self, kql: str) -> Any:
        text, window = _parameterise_window(kql)
        translated = self._translate(text, window)
        values = {**translated.parameters,  # the pinned clock of ago()/now(), when the query reads it
                  **{d.slot: window[d.name] for d in translated.declarations if d.slot in translated.slots}}
        return self.database.connection.sql(str(translated), params=values or None)

    def _translate(self, text: str, window: dict[str, datetime]) -> Any:
        key = (text, self.database.schema_version)
        if key not in self._translations:
            import duckdb_kql  # here, not at import: loading its parser costs commands that run no query
            from duckdb_kql.engine import schema

            connection = self.database.connection
            connection.execute("SET TimeZone='UTC'")
            self._translations[key] = duckdb_kql.to_sql(text, schema=schema(connection), parameters=window,
                                                        query_now=self.now)
        return self._translations[key]


def _parameterise_window(kql: str) -> tuple[str, dict[str, datetime]]:
    """The query with its `let WindowStart/WindowEnd = datetime(...)` header as declared parameters."""
    match = _WINDOW_HEADER.match(kql)
    if match is None:
        return kql, {}
    window = {"WindowStart": parse_datetime(match.group(1)).replace(tzinfo=None),
              "WindowEnd": parse_datetime(match.group(2)).replace(tzinfo=None)}
    return _WINDOW_DECLARATION + kql[match.end():], window


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
