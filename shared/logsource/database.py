"""A DuckDB database holding log tables with the Log Analytics column types.

Every known table exists from the start (empty until loaded), so a query over a table
that a folder lacks returns no rows instead of failing, as in a workspace.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from shared.logsource.raw_records import CATEGORY_TABLES, UnknownCategory, is_raw_record, map_raw_record
from shared.logsource.readers import SUFFIXES, Location, read_records
from shared.logsource.values import DUCKDB_TYPES, coerce
from shared.tables import table_schemas

Row = dict[str, Any]
_OPEN_SCHEMAS = {"AzureDiagnostics"}  # Log Analytics adds a column per new field


@dataclass(frozen=True)
class LoadProblem:
    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


@dataclass
class LoadReport:
    rows: Counter[str] = field(default_factory=Counter)
    files: int = 0
    problems: list[LoadProblem] = field(default_factory=list)
    unmatched: list[Path] = field(default_factory=list)  # files that gave no row of a known table


class LogDatabase:
    def __init__(self) -> None:
        import duckdb_kql  # here, not at import: loading its parser costs commands that run no query

        self.connection = duckdb_kql.connect()
        self._columns: dict[str, dict[str, str]] = {}
        for schema in table_schemas().values():
            self._create(schema.name, dict(schema.columns))

    def _create(self, table: str, columns: dict[str, str]) -> None:
        columns = _case_distinct(columns)
        ddl = ", ".join(f'"{name}" {DUCKDB_TYPES[kind]}' for name, kind in columns.items())
        self.connection.execute(f'CREATE TABLE "{table}" ({ddl})')
        self._columns[table] = columns

    @property
    def schema_version(self) -> int:
        """Changes whenever a table or column is added, so cached translations know to redo joins."""
        return len(self._columns) + sum(len(columns) for columns in self._columns.values())

    def columns(self, table: str) -> dict[str, str]:
        return dict(self._columns[table])

    def insert(self, table: str, rows: Iterable[tuple[Location | None, Row]]) -> list[LoadProblem]:
        """Coerce and insert rows; a row that cannot be coerced is a problem, the others load."""
        spools = _Spools(self)
        problems = [problem for location, row in rows if (problem := spools.add(table, location, row))]
        spools.copy_in()
        return problems

    def _known_name(self, table: str) -> str:
        for known in self._columns:
            if known.lower() == table.lower():
                return known
        self._create(table, {"TimeGenerated": "DateTime", "Type": "String"})
        return table

    def _coerce_row(self, table: str, row: Row) -> Row:
        columns = self._columns[table]
        clean: Row = {"Type": table}
        for given, value in row.items():
            name = self._column_name(table, given)
            if name is None:
                continue
            try:
                clean[name] = coerce(value, columns[name])
            except (ValueError, TypeError) as error:
                raise ValueError(f"column {name}: {error}") from None
        clean["Type"] = table
        return clean

    def _column_name(self, table: str, name: str) -> str | None:
        """The table's column for `name`, added as a string column when the table lacks it; None (the value is
        dropped) when the table has a fixed Log Analytics schema, as a workspace drops it.

        Only AzureDiagnostics and tables without a schema (custom logs) grow columns. An export's own extra columns
        (an `extend` of whoever exported it, e.g. `targetId`) must not land in AuditLogs: DuckDB folds case, so they
        would collide with a detection's `extend TargetId = ...`.
        DuckDB names are case-insensitive, so `clientIP_s` and `clientIp_s` share one column.
        """
        columns = self._columns[table]
        if name in columns:
            return name
        for known in columns:
            if known.lower() == name.lower():
                return known
        if table in table_schemas() and table not in _OPEN_SCHEMAS:
            return None
        self.connection.execute(f'ALTER TABLE "{table}" ADD COLUMN "{name}" VARCHAR')
        columns[name] = "String"
        return name

    def _copy_in(self, table: str, spool: Path) -> None:
        if spool.stat().st_size == 0:
            return
        types = {name: DUCKDB_TYPES[kind] for name, kind in self._columns[table].items()}
        self.connection.execute(
            f'INSERT INTO "{table}" BY NAME SELECT * FROM read_json(?, format=\'newline_delimited\', '
            f"columns={types!r})",
            [str(spool)],
        )

    def count(self, table: str) -> int:
        return self.connection.execute(f'SELECT count(*) FROM "{self._known_name(table)}"').fetchone()[0]

    def load_folder(self, folder: Path, progress: Callable[[Path], None] | None = None) -> LoadReport:
        """Load every log file below `folder`: one table per top-level file or sub-folder,
        raw diagnostic records by their category wherever they lie."""
        if not folder.is_dir():
            raise FileNotFoundError(f"log folder {folder} does not exist")
        report = LoadReport()
        spools = _Spools(self)
        log_files = _log_files(folder)
        for path, hint in log_files:
            if progress:
                progress(path)
            report.files += 1
            known_rows = 0
            for record in read_records(path):
                if record.data is None:
                    report.problems.append(LoadProblem(record.location, record.error))
                    continue
                try:
                    table, row = _route(record.data, hint)
                except UnknownCategory as error:
                    report.problems.append(LoadProblem(record.location, str(error)))
                    continue
                problem = spools.add(table, record.location, row)
                if problem:
                    report.problems.append(problem)
                else:
                    report.rows[self._known_name(table)] += 1
                    known_rows += self._known_name(table) in table_schemas()
            if not known_rows:
                report.unmatched.append(path)
        spools.copy_in()
        listed = {path for path, _ in log_files}
        report.unmatched += [path for path in sorted(folder.rglob("*")) if path.is_file() and path not in listed]
        report.unmatched.sort()
        return report


class _Spools:
    """One JSON-lines spool file per table, copied into DuckDB in one statement per table."""

    def __init__(self, database: LogDatabase) -> None:
        self.database = database
        self.files: dict[str, IO[str]] = {}

    def add(self, table: str, location: Location | None, row: Row) -> LoadProblem | None:
        table = self.database._known_name(table)
        try:
            clean = self.database._coerce_row(table, row)
        except ValueError as error:
            return LoadProblem(location or Location(Path("<rows>"), 0), str(error))
        if table not in self.files:
            self.files[table] = tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False)  # noqa: SIM115
        self.files[table].write(json.dumps(clean, separators=(",", ":"), default=str) + "\n")
        return None

    def copy_in(self) -> None:
        for table, handle in self.files.items():
            handle.close()
            try:
                self.database._copy_in(table, Path(handle.name))
            finally:
                Path(handle.name).unlink()
        self.files.clear()


def _case_distinct(columns: dict[str, str]) -> dict[str, str]:
    seen: set[str] = set()
    distinct = {}
    for name, kind in columns.items():
        if name.lower() not in seen:
            seen.add(name.lower())
            distinct[name] = kind
    return distinct


def _route(record: Row, hint: str) -> tuple[str, Row]:
    if is_raw_record(record):
        return map_raw_record(record)
    return hint, record


def _log_files(folder: Path) -> list[tuple[Path, str]]:
    """(file, table hint) for each log file: a top-level file's stem, or its top-level folder's name."""
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and entry.suffix.lower() in SUFFIXES:
            found.append((entry, _table_hint(entry.stem)))
        elif entry.is_dir():
            found.extend((path, _table_hint(entry.name)) for path in sorted(entry.rglob("*"))
                         if path.is_file() and path.suffix.lower() in SUFFIXES)
    return found


def _table_hint(name: str) -> str:
    """`insights-logs-serviceprincipalsigninlogs` (a Storage container) -> its table; else the name."""
    if name.lower().startswith("insights-logs-"):
        category = name[len("insights-logs-"):].lower()
        for known, table in CATEGORY_TABLES.items():
            if known.lower() == category:
                return table
    return name
