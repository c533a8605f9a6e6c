"""The embedded LogSource: KQL over local log files, run by duckdb-kql with a fixed clock."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.kql.rewrite import rewrite
from shared.logsource.base import LogQueryError, Row
from shared.logsource.compiled import CompiledQuery, Schema, compile_query, remember, remembered
from shared.logsource.database import LoadReport, LogDatabase
from shared.logsource.values import parse_datetime

_WINDOW_HEADER = re.compile(r"^let WindowStart = datetime\(([^)]*)\); let WindowEnd = datetime\(([^)]*)\);")
_WINDOW_DECLARATION = "declare query_parameters(WindowStart:datetime, WindowEnd:datetime);"


class EmbeddedLogSource:
    """Answers queries from a LogDatabase; `now` stands in for the clock Kusto would read.

    Translating KQL to SQL (an ANTLR parse in Python) costs far more than running it, and a
    detection runs the same text window after window. So the window header is turned into
    query parameters and each distinct text is compiled once (and kept on disk, see
    shared/logsource/compiled.py); only the values change.
    """

    def __init__(self, database: LogDatabase, now: datetime, *, rewriting: bool = True) -> None:
        self.database = database
        self.now = now
        self.rewriting = rewriting  # off only to measure what the rewrite layer adds (benchmarks/reach.py)
        self._compiled: dict[tuple[str, int], CompiledQuery] = {}
        self._schema: tuple[int, Schema] | None = None

    @classmethod
    def from_folder(cls, folder: Path, now: datetime) -> tuple[EmbeddedLogSource, LoadReport]:
        database = LogDatabase()
        report = database.load_folder(folder)
        return cls(database, now), report

    def query(self, kql: str, start: datetime, end: datetime) -> list[Row]:
        text, window = parameterise_window(kql)
        with _as_query_error():
            cursor = self.execute(text, window)
        return rows_of(cursor)

    def windows_with_rows(self, kql: str, ranges: Sequence[tuple[datetime, datetime]]) -> list[bool]:
        """For each [start, end): whether a table the query reads has a row with TimeGenerated in it. One cheap
        statement for all ranges; a query that reads no table counts as having rows everywhere. LogQueryError
        when the query cannot be translated or the statement fails."""
        text, window = parameterise_window(kql)
        with _as_query_error():
            sql = self._compile(text, window).sql
        schema = self._current_schema()
        tables = [table for table in schema if "." not in table and f'"{table}"' in sql]
        if not tables or not ranges or any("TimeGenerated" not in schema[table] for table in tables):
            return [True] * len(ranges)
        bounds = ", ".join(f"({i}, ?::TIMESTAMP, ?::TIMESTAMP)" for i in range(len(ranges)))
        present = " OR ".join(f'EXISTS (SELECT 1 FROM "{table}" WHERE "TimeGenerated" >= r.s '
                              'AND "TimeGenerated" < r.e)' for table in tables)
        values = [_naive_utc(moment) for start, end in ranges for moment in (start, end)]
        with _as_query_error():
            busy = {i for (i,) in self.database.connection.execute(
                f"SELECT i FROM (VALUES {bounds}) AS r(i, s, e) WHERE {present}", values).fetchall()}
        return [i in busy for i in range(len(ranges))]

    def silent_on_empty_tables(self, kql: str) -> bool:
        """Whether the query gives no rows when its tables hold nothing: run once per compiled query on an empty
        copy of the database's tables, then kept on disk beside the translation. LogQueryError as `query`."""
        text, window = parameterise_window(kql)
        with _as_query_error():
            compiled = self._compile(text, window)
        silent = remembered("silent", compiled.sql, {})
        if silent is None:
            import duckdb_kql

            with _as_query_error(), closing(duckdb_kql.connect()) as empty:
                for (ddl,) in self.database.connection.execute("SELECT sql FROM duckdb_tables()").fetchall():
                    empty.execute(ddl)
                silent = not empty.execute(compiled.sql, compiled.values(window, self.now) or None).fetchall()
            remember("silent", compiled.sql, {}, silent)
        return silent

    def execute(self, text: str, parameters: dict[str, datetime]) -> Any:
        """The DuckDB cursor of a query with declared parameters; duckdb-kql and DuckDB errors propagate."""
        compiled = self._compile(text, parameters)
        return self.database.connection.execute(compiled.sql, compiled.values(parameters, self.now) or None)

    def _compile(self, text: str, parameters: dict[str, datetime]) -> CompiledQuery:
        key = (text, self.database.schema_version)
        if key not in self._compiled:
            rewritten = (rewrite(text, columns=lambda prefix: self._columns_of(prefix, parameters)) if self.rewriting
                         else text)
            self._compiled[key] = compile_query(rewritten, self._current_schema(), parameters, self.now)
        return self._compiled[key]

    def _columns_of(self, text: str, parameters: dict[str, datetime]) -> list[str]:
        """The output columns of a query, planned but not run: what a rewrite of project-reorder needs."""
        compiled = self._compile(text, parameters)
        return self.database.connection.sql(compiled.sql, params=compiled.values(parameters, self.now) or None).columns

    def _current_schema(self) -> Schema:
        version = self.database.schema_version
        if self._schema is None or self._schema[0] != version:
            from duckdb_kql.engine import schema

            self._schema = (version, schema(self.database.connection))
        return self._schema[1]


@contextmanager
def _as_query_error() -> Iterator[None]:
    """duckdb-kql raises KqlError and DuckDB its own errors: both reach callers as LogQueryError."""
    try:
        yield
    except LogQueryError:
        raise
    except Exception as error:
        raise LogQueryError(f"{type(error).__name__}: {error}") from error


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def parameterise_window(kql: str) -> tuple[str, dict[str, datetime]]:
    """The query with its `let WindowStart/WindowEnd = datetime(...)` header as declared parameters."""
    match = _WINDOW_HEADER.match(kql)
    if match is None:
        return kql, {}
    window = {"WindowStart": parse_datetime(match.group(1)).replace(tzinfo=None),
              "WindowEnd": parse_datetime(match.group(2)).replace(tzinfo=None)}
    return _WINDOW_DECLARATION + kql[match.end():], window


def rows_of(cursor: Any) -> list[Row]:
    """Rows of an executed statement as dicts: timestamps as UTC datetimes, dynamic values parsed from JSON.

    Read from the cursor, not a relation: `connection.sql()` plans the statement and fetching plans it again.
    """
    names = [column[0] for column in cursor.description]
    converters = [_converter(str(column[1])) for column in cursor.description]
    return [{name: convert(value) for name, convert, value in zip(names, converters, values, strict=True)}
            for values in cursor.fetchall()]


def _converter(kind: str):
    if kind == "JSON":
        return lambda value: None if value is None else json.loads(value)
    if kind.startswith("TIMESTAMP"):
        return lambda value: None if value is None else (
            value if value.tzinfo else value.replace(tzinfo=UTC))
    return lambda value: value
