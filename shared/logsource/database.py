"""A DuckDB database holding log tables with the Log Analytics column types.

Every known table exists from the start (empty until loaded), so a query over a table that a folder lacks returns
no rows instead of failing, as in a workspace. Loading is DuckDB's work: files are staged as JSON records
(readers.py), routed to their tables and converted to the column types in SQL (raw_records.py, values.py);
Python only writes the SQL and words the problems.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.logsource import raw_records
from shared.logsource.readers import STAGING, Location, add_problems, csv_lines, log_format, stage_files
from shared.logsource.values import DUCKDB_TYPES, MAX_NESTING, convert, nesting
from shared.tables import table_schemas

Row = dict[str, Any]
Progress = Callable[[Path, int], None]  # called after each file with its path and size in bytes
_OPEN_SCHEMAS = {"AzureDiagnostics"}  # Log Analytics adds a column per new field
_LA_TYPES = {"TIMESTAMP": "DateTime", "JSON": "Dynamic", "BIGINT": "Long", "DOUBLE": "Real", "BOOLEAN": "Bool"}
_SHAPES = 100  # record shapes of AzureDiagnostics read by json_extract; records of rarer ones are walked one by one
BATCH_BYTES = 256 * 2**20  # of log files staged at once (a compressed file counts its compressed size)
_NO_TIME = "no TimeGenerated (nor a time it could be taken from): no detection could see it"


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
    unreadable: list[Path] = field(default_factory=list)  # files skipped whole (named among the problems)


class LogDatabase:
    def __init__(self, path: Path | None = None) -> None:
        """A new database, in memory or in the file `path` (which must not exist yet)."""
        self.connection = _connect(path)
        self._columns: dict[str, dict[str, str]] = {}
        for schema in table_schemas().values():
            self._create(schema.name, dict(schema.columns))

    @classmethod
    def reopen(cls, path: Path) -> LogDatabase:
        """A database loaded earlier into `path`, read-only: its tables with their Log Analytics types."""
        database = cls.__new__(cls)
        database.connection = _connect(path, read_only=True)
        database._columns = {}
        for table, column, kind in database.connection.execute(
                "SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE schema_name = 'main' "
                "AND database_name = current_database() ORDER BY table_name, column_index").fetchall():
            known = table_schemas()[table].columns if table in table_schemas() else {}
            database._columns.setdefault(table, {})[column] = known.get(column) or _LA_TYPES.get(kind, "String")
        return database

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

    def count(self, table: str) -> int:
        return self.connection.execute(f'SELECT count(*) FROM "{self._known_name(table)}"').fetchone()[0]

    def _resolve(self, table: str) -> str:
        return next((known for known in self._columns if known.lower() == table.lower()), table)

    def _known_name(self, table: str) -> str:
        """The table's name as created; a table without a schema (a custom log) is created on first use."""
        table = self._resolve(table)
        if table not in self._columns:
            self._create(table, {"TimeGenerated": "DateTime", "Type": "String"})
        return table

    def insert(self, table: str, rows: Iterable[tuple[Location | None, Row]]) -> list[LoadProblem]:
        """Convert and insert rows given in Python (a detection's test case); a row that cannot be converted is a
        problem, the others load."""
        located = list(rows)
        self.connection.execute(STAGING)
        self.connection.execute("INSERT INTO _items SELECT 0, unnest(range(1, len($1) + 1)), unnest($1::JSON[])",
                                [[json.dumps(row, default=str) for _, row in located]])
        table = self._known_name(table)
        source = "(SELECT rowid AS _id, file AS _file, line AS _line, item FROM _items)"
        paths = raw_records.Paths()
        self._insert_converted(table, source, paths, self._export_columns(table, source, paths), require_time=False)
        where = [location or Location(Path("<rows>"), line) for line, (location, _) in enumerate(located, start=1)]
        problems = [LoadProblem(where[line - 1], message)
                    for _, line, message in self.connection.execute("SELECT * FROM _problems ORDER BY line").fetchall()]
        self._drop_staging()
        return problems

    def _drop_staging(self) -> None:
        """The staged copies of the records go once they are in their tables: only log tables stay."""
        for (table,) in self.connection.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall():
            self.connection.execute(f'DROP TABLE "{table}"')

    def load_folder(self, folder: Path, progress: Progress | None = None) -> LoadReport:
        """Load every log file below `folder`: one table per top-level file or sub-folder, raw diagnostic records
        by their category wherever they lie."""
        if not folder.is_dir():
            raise FileNotFoundError(f"log folder {folder} does not exist")
        log_files = log_files_of(folder)
        report = self.load_files(log_files, progress)
        listed = {path for path, _ in log_files}
        report.unmatched += [path for path in sorted(folder.rglob("*")) if path.is_file() and path not in listed]
        report.unmatched.sort()
        return report

    def load_files(self, files: list[tuple[Path, str]], progress: Progress | None = None) -> LoadReport:
        """Load (file, table hint) pairs: the hint names the table of records that are not raw diagnostic ones.
        Files go through staging in batches of about BATCH_BYTES, so the loader's memory follows a batch, not the
        whole folder (staging holds each record's text two or three times over)."""
        report = LoadReport(files=len(files))
        for batch in _batches(files, BATCH_BYTES):
            self._load_batch(batch, report, progress)
        return report

    def _load_batch(self, files: list[tuple[Path, str]], report: LoadReport, progress: Progress | None) -> None:
        self.connection.execute(STAGING)
        for number, message in sorted(stage_files(self.connection, [path for path, _ in files], progress).items()):
            report.problems.append(LoadProblem(Location(files[number][0]), message))
            report.unreadable.append(files[number][0])
        self._route([self._resolve(hint) for _, hint in files])
        loaded = self._load_routed()
        for (_, table), count in loaded.items():
            report.rows[table] += count
        known = {file for (file, table), count in loaded.items() if table in table_schemas()}
        report.unmatched += [path for number, (path, _) in enumerate(files)
                             if number not in known and path not in report.unreadable]
        report.problems += self._problems(files)
        self._drop_staging()

    def _route(self, hints: list[str]) -> None:
        """`_routed`: each staged record with its table (NULL: a raw record of an unknown category, a problem);
        `hints[file]` is the table of the file's records that are not raw ones."""
        paths = ", ".join(f"'{path}'" for path in raw_records.ROUTING_PATHS)
        self.connection.execute(f"""
            CREATE OR REPLACE TEMP TABLE _routed AS
            SELECT _id, _file, _line, item, {raw_records.is_raw('f')} AS raw,
                   {raw_records.route('f', '$1[_file + 1]')} AS route, {raw_records.category_of('f')} AS category
            FROM (SELECT rowid AS _id, file AS _file, line AS _line, item, json_extract(item, [{paths}]) AS f
                  FROM _items)""", [hints])
        self.connection.execute("""
            INSERT INTO _problems SELECT _file, _line, 'no Log Analytics table for category '
                || chr(39) || coalesce(category, '') || chr(39) FROM _routed WHERE route IS NULL""")
        self._drop_deep_records()

    def _drop_deep_records(self) -> None:
        """Records nested deeper than a query could return are problems (DuckDB reads them; Python could not)."""
        candidates = self.connection.execute(f"""
            SELECT _id, _file, _line, item FROM _routed WHERE length(item) >= {2 * MAX_NESTING}
            AND length(item) - length(replace(replace(item, '[', ''), '{{', '')) >= {MAX_NESTING}""").fetchall()
        deep = [(record, file, line) for record, file, line, item in candidates if nesting(item) > MAX_NESTING]
        if deep:
            add_problems(self.connection, [(file, line, f"nested deeper than {MAX_NESTING} levels")
                                           for _, file, line in deep])
            self.connection.execute(f"DELETE FROM _routed WHERE _id IN ({', '.join(str(r) for r, _, _ in deep)})")

    def _load_routed(self) -> Counter[tuple[int, str]]:
        """Convert and insert every routed record; rows loaded per (file, table)."""
        loaded: Counter[tuple[int, str]] = Counter()
        for table, raw in self.connection.execute(
                "SELECT DISTINCT route, raw FROM _routed WHERE route IS NOT NULL ORDER BY ALL").fetchall():
            source = (f"(SELECT _id, _file, _line, item FROM _routed WHERE route = '{_sql(table)}' "
                      f"AND raw = {str(raw).lower()})")
            table = self._known_name(table)
            paths = raw_records.Paths()
            if not raw:
                expressions = self._export_columns(table, source, paths)
            elif table == "AzureActivity":
                expressions = raw_records.activity_columns(paths)
            elif table == "AzureDiagnostics":
                source, expressions = self._diagnostics(source, paths)
            else:
                keys = self._keys(source, "$.properties")
                expressions = raw_records.entra_columns(table, keys, paths)
            loaded.update(self._insert_converted(table, source, paths, expressions, require_time=True))
        return loaded

    def _keys(self, source: str, path: str) -> list[str]:
        return [key for (key,) in self.connection.execute(
            f"SELECT DISTINCT unnest(json_keys(item, '{path}')) AS key FROM {source} ORDER BY key").fetchall()]

    def _export_columns(self, table: str, source: str, paths: raw_records.Paths) -> dict[str, str]:
        """Column -> JSON expression for rows in Log Analytics shape (an export): keys matched case-insensitively.
        Only AzureDiagnostics and tables without a schema (custom logs) grow columns: an export's own extra columns
        (an `extend` of whoever exported it, e.g. `targetId`) must not land in AuditLogs, where DuckDB's folded case
        would collide with a detection's `extend TargetId = ...`."""
        expressions: dict[str, list[str]] = {}
        for key in self._keys(source, "$"):
            column = self._column_name(table, key)
            if column is not None:
                expressions.setdefault(column, []).append(paths(raw_records.key_path("$", key)))
        return {column: f"coalesce({', '.join(values)})" for column, values in expressions.items()}

    def _column_name(self, table: str, name: str) -> str | None:
        columns = self._columns[table]
        for known in columns:
            if known.lower() == name.lower():
                return known
        if table in table_schemas() and table not in _OPEN_SCHEMAS:
            return None
        self.connection.execute(f'ALTER TABLE "{table}" ADD COLUMN "{_name(name)}" VARCHAR')
        columns[name] = "String"
        return name

    def _diagnostics(self, source: str, paths: raw_records.Paths) -> tuple[str, dict[str, str]]:
        """AzureDiagnostics records flattened: one column per field (added when new), beside the envelope's."""
        self._flatten_diagnostics(source)
        envelope = raw_records.diagnostics_columns(paths)
        names = [name for (name,) in self.connection.execute(
            "SELECT DISTINCT name FROM _leaves ORDER BY name").fetchall()]
        fields: dict[str, list[str]] = {}
        for name in names:
            column = self._column_name("AzureDiagnostics", name)
            if column and column.lower() not in {known.lower() for known in envelope}:
                fields.setdefault(column, []).append(name)
        lookups = "".join(f", any_value(value) FILTER (WHERE name IN ({', '.join(_text(n) for n in names)})) AS _f{k}"
                          for k, names in enumerate(fields.values()))
        flattened = (f"(SELECT s.*, f.* EXCLUDE (_id) FROM {source} s LEFT JOIN (SELECT _id{lookups} FROM _leaves "
                     "GROUP BY _id) f USING (_id))")
        expressions = {column: f"_f{k}" for k, column in enumerate(fields)}
        return flattened, {**expressions, **envelope}

    def _flatten_diagnostics(self, source: str) -> None:
        """`_leaves` (_id, name, value): every field of the AzureDiagnostics records in `source`; the fields of a
        record shape are found on one record of it (json_tree walks only the records of rare shapes)."""
        self.connection.execute(f"CREATE OR REPLACE TEMP TABLE _shaped AS {raw_records.diagnostics_shapes(source)}")
        examples = ("(SELECT shape, item FROM (SELECT shape, arg_min(item, _id) AS item, count(*) AS records "
                    f"FROM _shaped WHERE shape IS NOT NULL GROUP BY shape ORDER BY records DESC LIMIT {_SHAPES}))")
        shapes: dict[str, list[tuple[str, str, str]]] = {}
        for shape, path, base, kind in self.connection.execute(raw_records.diagnostics_fields(examples)).fetchall():
            shapes.setdefault(shape, []).append((path, base, kind))
        self.connection.execute(f"CREATE OR REPLACE TEMP TABLE _leaves AS "
                                f"{raw_records.diagnostics_leaves('_shaped', shapes)}")

    def _insert_converted(self, table: str, source: str, paths: raw_records.Paths, expressions: dict[str, str],
                          require_time: bool) -> Counter[tuple[int, str]]:
        """Insert the rows whose values all convert; the others' first problem goes to `_problems`."""
        self.connection.execute(f"CREATE OR REPLACE TEMP TABLE _converted AS "
                                f"{self._conversion(table, source, paths, expressions, require_time)}")
        self.connection.execute("INSERT INTO _problems SELECT _file, _line, _problem FROM _converted "
                                "WHERE _problem IS NOT NULL")
        self.connection.execute(f'INSERT INTO "{table}" BY NAME SELECT * EXCLUDE (_file, _line, _problem) '
                                "FROM _converted WHERE _problem IS NULL")
        counts = self.connection.execute("SELECT _file, count(*) FROM _converted WHERE _problem IS NULL "
                                         "GROUP BY _file").fetchall()
        self.connection.execute("DROP TABLE _converted")
        return Counter({(file, table): count for file, count in counts})

    def _conversion(self, table: str, source: str, paths: raw_records.Paths, expressions: dict[str, str],
                    require_time: bool) -> str:
        """SQL: (_file, _line, the table's columns, _problem), parsing each record once and each value once."""
        columns = self._columns[table]
        entries = [(column, expression) for column, expression in expressions.items()
                   if column in columns and column != "Type"]
        conversions = [convert(column, columns[column], f"j{i}", f"s{i}", f"t{i}")
                       for i, (column, _) in enumerate(entries)]
        problems = [conversion.problem for conversion in conversions if conversion.problem != "NULL"]
        if require_time and "TimeGenerated" in columns:
            timed = [conversion for (column, _), conversion in zip(entries, conversions, strict=True)
                     if column == "TimeGenerated"]
            missing = f"({timed[0].value}) IS NULL AND ({timed[0].problem}) IS NULL" if timed else "true"
            problems.append(f"CASE WHEN {missing} THEN '{_NO_TIME}' END")
        extracted = f"SELECT *, {paths.extract()} AS _v FROM {source}"
        given = ", ".join(["_file", "_line", *(f"{expression} AS j{i}" for i, (_, expression) in enumerate(entries))])
        texts = ", ".join(["*", *(f"j{i} ->> '$' AS s{i}" for i in range(len(entries)))])
        typed = ", ".join(["*", *(f"{conversion.typed} AS t{i}" for i, conversion in enumerate(conversions))])
        converted = ", ".join(["_file", "_line", f"{_text(table)} AS \"Type\"",
                               *(f'{conversion.value} AS "{_name(column)}"'
                                 for (column, _), conversion in zip(entries, conversions, strict=True)),
                               f"coalesce({', '.join([*problems, 'NULL'])}) AS _problem"])
        return (f"SELECT {converted} FROM (SELECT {typed} FROM (SELECT {texts} FROM (SELECT {given} "
                f"FROM ({extracted}))))")

    def _problems(self, files: list[tuple[Path, str]]) -> list[LoadProblem]:
        """Staged and conversion problems by file and line; a CSV row's position becomes its line."""
        rows = self.connection.execute("SELECT file, line, message FROM _problems ORDER BY file, line").fetchall()
        csv_problem_files = {file for file, _, message in rows if log_format(files[file][0]) == "csv"
                             and not message.startswith("expected ")}
        numbering = {file: csv_lines(files[file][0]) for file in csv_problem_files}
        located = [(file, numbering[file].get(line, line) if file in numbering and not message.startswith("expected ")
                    else line, message) for file, line, message in rows]
        return [LoadProblem(Location(files[file][0], line), message)
                for file, line, message in sorted(located, key=lambda problem: (problem[0], problem[1] or 0))]


def _connect(path: Path | None, read_only: bool = False) -> Any:
    import duckdb_kql  # here, not at import: loading its parser costs commands that run no query

    connection = duckdb_kql.connect(str(path) if path else ":memory:", read_only=read_only)
    connection.execute("SET enable_progress_bar = false")  # the CLI shows its own, on stderr
    return connection


def _case_distinct(columns: dict[str, str]) -> dict[str, str]:
    seen: set[str] = set()
    distinct = {}
    for name, kind in columns.items():
        if name.lower() not in seen:
            seen.add(name.lower())
            distinct[name] = kind
    return distinct


def _sql(text: str) -> str:
    return text.replace("'", "''")


def _text(text: str) -> str:
    return "'" + _sql(text) + "'"


def _name(text: str) -> str:
    return text.replace('"', '""')


def _batches(files: list[tuple[Path, str]], limit: int) -> Iterator[list[tuple[Path, str]]]:
    """The files in order, cut into runs of at most `limit` bytes (a bigger file is a run of its own)."""
    batch: list[tuple[Path, str]] = []
    size = 0
    for file in files:
        try:
            file_size = file[0].stat().st_size
        except OSError:
            file_size = 0  # staging names the file it cannot read
        if batch and size + file_size > limit:
            yield batch
            batch, size = [], 0
        batch.append(file)
        size += file_size
    if batch:
        yield batch


def log_files_of(folder: Path) -> list[tuple[Path, str]]:
    """(file, table hint) for each log file: a top-level file's stem, or its top-level folder's name."""
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and log_format(entry):
            found.append((entry, _table_hint(_stem(entry))))
        elif entry.is_dir():
            found.extend((path, _table_hint(entry.name)) for path in sorted(entry.rglob("*"))
                         if path.is_file() and log_format(path))
    return found


def _stem(path: Path) -> str:
    """`AuditLogs.json.gz` -> `AuditLogs`."""
    name = path.name[:-3] if path.name.lower().endswith(".gz") else path.name
    return name.rsplit(".", 1)[0]


def _table_hint(name: str) -> str:
    """`insights-logs-serviceprincipalsigninlogs` (a Storage container) -> its table; else the name."""
    if name.lower().startswith("insights-logs-"):
        category = name[len("insights-logs-"):].lower()
        for known, table in raw_records.CATEGORY_TABLES.items():
            if known.lower() == category:
                return table
    return name
